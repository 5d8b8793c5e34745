"""Shared fixtures: tiny labeled files and a tiny trained model (seconds, not minutes)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

TINY = [
    ("hey! how was your weekend?", "none"),
    ("thanks so much, see you at 6", "none"),
    ("I'm a nurse and I live in Leeds with two cats", "surface"),
    ("big fan of hiking, I go most sundays", "surface"),
    ("honestly I've been so stressed about money since the move", "intermediate"),
    ("I think the death penalty is morally wrong and it upsets me", "intermediate"),
    ("I've never told anyone but I was abused as a kid", "core"),
    ("some nights I think everyone would be better off without me", "core"),
]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory):
    """The default model rebuilt from its compact form and the ONNX exports that ``annotate``
    (``--backend auto``) and ``predict`` make go to this session's folder, never the user's
    cache: a test run must not leave an export of every tiny model it trained behind."""
    patch = pytest.MonkeyPatch()
    patch.setenv("DISCLOSURE_NLP_CACHE", str(tmp_path_factory.mktemp("cache")))
    yield
    patch.undo()


@pytest.fixture(scope="session")
def load_script():
    """Scripts under ``scripts/`` are not a package, so tests load them by path. The module goes
    into ``sys.modules`` first because dataclasses look their module up while a class is built."""
    import importlib.util
    import sys

    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        return module

    return load


@pytest.fixture
def tiny_file(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "tiny.jsonl", [{"text": t, "layer": l, "register": "test"} for t, l in TINY])


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A model fine-tuned for two epochs on eight messages: real code path, tiny cost."""
    from disclosure_nlp.model.training import TrainConfig, train

    root = tmp_path_factory.mktemp("tiny-model")
    data = write_jsonl(root / "train.jsonl", [{"text": t, "layer": l} for t, l in TINY])
    result = train(
        data, data, root / "model",
        TrainConfig(epochs=2, batch_size=4, max_length=32, learning_rate=1e-4, patience=5, seed=3),
        progress=False,
    )
    return result.output_dir


ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_codebook() -> str:
    path = ROOT.parent / "shared" / "CODEBOOK.md"
    if not path.exists():
        pytest.skip("../shared/CODEBOOK.md is not beside this checkout")
    return path.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def project_codebook() -> str:
    return (ROOT / "data" / "CODEBOOK.md").read_text(encoding="utf-8")


class CountingRaw(io.RawIOBase):
    """A file that counts the bytes handed to the reader."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("rb", buffering=0)
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        read = self._file.readinto(buffer)
        self.count += read or 0
        return read  # type: ignore[return-value]

    def close(self) -> None:
        self._file.close()
        super().close()


@pytest.fixture
def opened_files(monkeypatch) -> list[CountingRaw]:
    """Every file a transcript reader opens from now on, each counting the bytes read from it."""
    from disclosure_nlp.io import transcripts

    opened: list[CountingRaw] = []

    def counting_open(file: Path):
        raw = CountingRaw(file)
        opened.append(raw)
        return io.BufferedReader(raw)

    monkeypatch.setattr(transcripts, "_open_raw", counting_open)
    return opened


CLAFF_COLUMNS = ["sentenceid", "author", "nchar", "created_utc", "score", "subreddit", "label", "full_text", "wordcount",
                 "id", "Emotional_disclosure", "Information_disclosure", "Support", "General_support", "Info_support",
                 "Emo_support"]


@pytest.fixture
def fake_claff():
    """A made-up CL-Aff CSV (TINY's messages three times, crowd labels from the layer) and the
    project's labels of it: two thirds real-train, one third real-test. Returns (CSV, labels)."""
    import csv

    def make(folder: Path) -> tuple[Path, Path]:
        folder.mkdir(parents=True, exist_ok=True)
        rows, labels = [], []
        for i, (text, layer) in enumerate(TINY * 3):
            post, split = ("train-post", "train") if i < len(TINY) * 2 else ("test-post", "test")
            crowd = str(int(layer != "none"))
            rows.append({**dict.fromkeys(CLAFF_COLUMNS, "0"), "sentenceid": str(i), "full_text": f"{text} ({i})",
                         "id": post, "Emotional_disclosure": crowd, "Information_disclosure": crowd})
            labels.append({"sentenceid": str(i), "post": post, "layer": layer, "split": split})
        csv_path = folder / "labeled_training_set.csv"
        with csv_path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, CLAFF_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        return csv_path, write_jsonl(folder / "labels.jsonl", labels)

    return make
