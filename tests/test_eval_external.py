"""scripts/eval_external.py end to end on a made-up CL-Aff file (the real one is not needed)."""

import csv
import json

from .conftest import TINY, write_jsonl

COLUMNS = ["sentenceid", "author", "nchar", "created_utc", "score", "subreddit", "label", "full_text", "wordcount",
           "id", "Emotional_disclosure", "Information_disclosure", "Support", "General_support", "Info_support",
           "Emo_support"]


def test_real_test_macro_f1_comes_with_its_interval_and_the_gap_to_the_first_system(tmp_path, tiny_model, load_script):
    module = load_script("eval_external")
    data = tmp_path / "data"
    (data / "claff-offmychest").mkdir(parents=True)
    rows, labels = [], []
    for i, (text, layer) in enumerate(TINY * 3):
        post, split = ("train-post", "train") if i < len(TINY) * 2 else ("test-post", "test")
        crowd = int(layer != "none")
        rows.append({**dict.fromkeys(COLUMNS, "0"), "sentenceid": str(i), "full_text": f"{text} ({i})", "id": post,
                     "Emotional_disclosure": str(crowd), "Information_disclosure": str(crowd)})
        labels.append({"sentenceid": str(i), "post": post, "layer": layer, "split": split})
    with (data / "claff-offmychest" / "labeled_training_set.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    label_file = write_jsonl(tmp_path / "labels.jsonl", labels)
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
