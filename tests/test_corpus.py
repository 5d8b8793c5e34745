"""The shipped corpus keeps the properties the project promises (size, balance, clean splits)."""

import importlib.util
import json
from collections import Counter
from pathlib import Path

from disclosure_nlp.data import load_labeled

ROOT = Path(__file__).resolve().parents[1]


def _splits_module():
    spec = importlib.util.spec_from_file_location("make_splits", ROOT / "scripts" / "make_splits.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_corpus_size_balance_and_registers():
    rows = [json.loads(line) for path in sorted((ROOT / "data" / "raw").glob("*.jsonl")) for line in path.open()]
    assert len({r["text"] for r in rows}) >= 3000
    layers = Counter(r["layer"] for r in rows)
    assert all(0.20 <= layers[name] / len(rows) <= 0.30 for name in ("none", "surface", "intermediate", "core"))
    assert len({r["register"] for r in rows}) >= 8


def test_splits_have_no_near_duplicates_across_them_and_cover_the_corpus():
    module = _splits_module()
    assert module.check(ROOT / "data") == []
    raw = sum(1 for path in (ROOT / "data" / "raw").glob("*.jsonl") for _ in path.open())
    split_sizes = {name: len(load_labeled(ROOT / "data" / f"{name}.jsonl")) for name in ("train", "dev", "test")}
    assert sum(split_sizes.values()) == raw
    assert 0.75 <= split_sizes["train"] / raw <= 0.85


def test_check_finds_a_leaked_rewording(tmp_path):
    module = _splits_module()
    row = {"text": "honestly I have been so stressed about money since the move", "layer": "intermediate"}
    leaked = {"text": "Honestly, I have been SO stressed about money since the move!!", "layer": "intermediate"}
    for name, rows in (("train", [row]), ("dev", [leaked]), ("test", [{"text": "hi", "layer": "none"}])):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    problems = module.check(tmp_path)
    assert any("near-duplicate across train and dev" in p for p in problems)
