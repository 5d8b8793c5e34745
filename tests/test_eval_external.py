"""scripts/eval_external.py end to end on a made-up CL-Aff file (the real one is not needed)."""

import json

import pytest

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


def test_selection_figures_score_real_dev_and_the_team_test_split(tmp_path, tiny_model, load_script, fake_claff):
    """Real-dev and team test are what a rule choosing between models reads; they must come from
    the dev-split sentences and the named test file, with the dev gap measured against the first model."""
    module = load_script("eval_external")
    csv_path, label_file = fake_claff(tmp_path / "data" / "claff-offmychest")
    records = [json.loads(line) for line in label_file.read_text().splitlines()]
    for record in records[len(TINY): 2 * len(TINY)]:  # the second copy of TINY becomes real-dev
        record["split"] = "dev"
    label_file.write_text("".join(json.dumps(r) + "\n" for r in records))
    team = write_jsonl(tmp_path / "team.jsonl", [{"text": t, "layer": l} for t, l in TINY])
    out = tmp_path / "external.json"

    assert module.main(["--data", str(csv_path.parents[1]), "--model", str(tiny_model), "--labels", str(label_file),
                        "--train", str(team), "--test", str(team), "--real-weight", "1", "--json", str(out)]) == 0
    payload = json.loads(out.read_text())
    assert payload["real_dev_n"] == len(TINY)
    model, tfidf = payload["systems"][str(tiny_model)], payload["systems"]["tfidf"]
    # real-dev and team test hold TINY's messages (real-dev with a suffix), so each figure is a real score in [0, 1]
    for figures in (model, tfidf):
        assert 0.0 <= figures["real_dev_macro_f1"] <= 1.0
        assert 0.0 <= figures["team_test_macro_f1"] <= 1.0
    # TF-IDF was fit on the team file it is then scored on: it reproduces its own training labels
    assert tfidf["team_test_macro_f1"] == 1.0
    assert "real_dev_vs_first_low" not in model
    gap = tfidf["real_dev_macro_f1"] - model["real_dev_macro_f1"]
    assert tfidf["real_dev_vs_first_low"] <= gap <= tfidf["real_dev_vs_first_high"]


def test_a_named_team_test_file_that_is_missing_is_an_error_not_a_skipped_figure(tmp_path, tiny_model, load_script,
                                                                                  fake_claff):
    from disclosure_nlp.errors import DataError

    module = load_script("eval_external")
    csv_path, label_file = fake_claff(tmp_path / "data" / "claff-offmychest")
    team = write_jsonl(tmp_path / "team.jsonl", [{"text": t, "layer": l} for t, l in TINY])
    missing = tmp_path / "no-such-test.jsonl"
    with pytest.raises(DataError, match="no-such-test.jsonl"):
        module.main(["--data", str(csv_path.parents[1]), "--model", str(tiny_model), "--labels", str(label_file),
                     "--train", str(team), "--test", str(missing), "--real-weight", "1"])
