"""scripts/eval_external.py end to end on a made-up CL-Aff file (the real one is not needed)."""

import json

from .conftest import TINY, write_jsonl


def test_real_test_macro_f1_comes_with_its_interval_and_the_gap_to_the_first_system(tmp_path, tiny_model, load_script,
                                                                                   fake_claff):
    module = load_script("eval_external")
    csv_path, label_file = fake_claff(tmp_path / "data" / "claff-offmychest")
    data = csv_path.parents[1]
    team = write_jsonl(tmp_path / "team.jsonl", [{"text": t, "layer": l} for t, l in TINY])
    out = tmp_path / "external.json"

    assert module.main(["--data", str(data), "--model", str(tiny_model), "--labels", str(label_file),
                        "--train", str(team), "--real-weight", "1", "--json", str(out)]) == 0
    payload = json.loads(out.read_text())
    assert payload["real_test_n"] == len(TINY)
    model, tfidf = payload["systems"][str(tiny_model)], payload["systems"]["tfidf"]
    for figures in (model, tfidf):
        assert figures["real_test_macro_f1_low"] <= figures["real_test_macro_f1"] <= figures["real_test_macro_f1_high"]
    assert "real_test_vs_first_low" not in model  # the first system is the reference
    gap = tfidf["real_test_macro_f1"] - model["real_test_macro_f1"]
    assert tfidf["real_test_vs_first_low"] <= gap <= tfidf["real_test_vs_first_high"]
