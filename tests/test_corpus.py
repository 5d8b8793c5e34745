"""The shipped corpus keeps the properties the project promises (size, balance, clean splits)."""

import json
from collections import Counter
from pathlib import Path

from disclosure_nlp.model.data import load_labeled

ROOT = Path(__file__).resolve().parents[1]


def test_corpus_size_balance_and_registers():
    rows = [json.loads(line) for path in sorted((ROOT / "data" / "raw").glob("*.jsonl")) for line in path.open()]
    assert len({r["text"] for r in rows}) >= 3000
    layers = Counter(r["layer"] for r in rows)
    assert all(0.20 <= layers[name] / len(rows) <= 0.30 for name in ("none", "surface", "intermediate", "core"))
    assert len({r["register"] for r in rows}) >= 8


def test_splits_have_no_near_duplicates_across_them_and_cover_the_corpus(load_script):
    module = load_script("make_splits")
    assert module.check(ROOT / "data") == []
    built, dropped = module.build_splits(ROOT / "data" / "raw", seed=13)
    main_corpus = sum(1 for path in (ROOT / "data" / "raw").glob("*.jsonl") for _ in path.open())
    train_only = sum(1 for path in (ROOT / "data" / "raw" / "train_only").glob("*.jsonl") for _ in path.open())
    split_sizes = {name: len(load_labeled(ROOT / "data" / f"{name}.jsonl")) for name in ("train", "dev", "test")}
    assert sum(split_sizes.values()) == main_corpus + train_only - len(dropped)
    # dev and test are a tenth of the main corpus each; train-only waves never reach them.
    assert all(0.09 <= split_sizes[name] / main_corpus <= 0.11 for name in ("dev", "test"))
    for name in ("train", "dev", "test"):
        on_disk = [json.loads(line)["text"] for line in (ROOT / "data" / f"{name}.jsonl").open()]
        assert on_disk == [row["text"] for row in built[name]], f"data/{name}.jsonl is stale: rerun make_splits.py"


def test_train_only_rows_join_train_unless_they_reword_a_held_out_message(tmp_path, load_script):
    module = load_script("make_splits")
    splits = {
        "train": [{"text": "I'm a nurse on nights", "layer": "surface"}],
        "dev": [{"text": "honestly I have been so stressed about money since the move", "layer": "intermediate"}],
        "test": [{"text": "nobody knows I spent two weeks on a psych ward last year", "layer": "core"}],
    }
    extra = [
        {"text": "Honestly I have been SO stressed about money since the move!!", "layer": "intermediate"},
        {"text": "my brother has no idea I still gamble every night after work", "layer": "core"},
    ]
    dev_before, test_before = list(splits["dev"]), list(splits["test"])
    dropped = module.add_train_only(splits, extra, seed=13)
    assert dropped == [extra[0]]
    assert extra[1] in splits["train"] and len(splits["train"]) == 2
    assert splits["dev"] == dev_before and splits["test"] == test_before


def test_check_finds_a_leaked_rewording(tmp_path, load_script):
    module = load_script("make_splits")
    row = {"text": "honestly I have been so stressed about money since the move", "layer": "intermediate"}
    leaked = {"text": "Honestly, I have been SO stressed about money since the move!!", "layer": "intermediate"}
    for name, rows in (("train", [row]), ("dev", [leaked]), ("test", [{"text": "hi", "layer": "none"}])):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    problems = module.check(tmp_path)
    assert any("near-duplicate across train and dev" in p for p in problems)
