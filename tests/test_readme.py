"""The README's integration examples, run as written, so that they cannot silently rot.

Each test takes the code blocks of one README section and runs them. The model is replaced
where speed needs it (the hash classifier of tests/fakes.py for the pandas example, a one-epoch
training run on eight messages for the datasets example): what is checked is that the example's
calls, argument names and printed columns still exist and do what the text says.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from .conftest import TINY, write_jsonl

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def blocks(heading: str, language: str) -> list[str]:
    """The ``language`` code blocks of the README section whose heading starts with ``heading``
    (up to the next heading of the same or a higher level; ``#`` lines inside code are not
    headings)."""
    found: list[str] = []
    level = None
    fence: str | None = None
    current: list[str] = []
    for line in README.read_text(encoding="utf-8").splitlines():
        if fence is None and line.startswith("```"):
            fence = line[3:].strip()
            current = []
            continue
        if fence is not None:
            if line.startswith("```"):
                if level is not None and fence == language:
                    found.append("\n".join(current) + "\n")
                fence = None
            else:
                current.append(line)
            continue
        if line.startswith("#"):
            depth = len(line) - len(line.lstrip("#"))
            if level is not None and depth <= level:
                break
            if line.lstrip("#").strip().startswith(heading):
                level = depth
    assert found, f"README.md has no {language} block under a heading starting with {heading!r}"
    return found


def test_the_block_finder_keeps_to_its_section():
    assert any("analyze_frame(" in block for block in blocks("pandas:", "python"))
    assert not any("DisclosureTransformer" in block for block in blocks("pandas:", "python"))
    with pytest.raises(AssertionError, match="no python block"):
        blocks("No such section", "python")


def test_pandas_example_runs(monkeypatch, capsys):
    pytest.importorskip("pandas")
    from disclosure_nlp.annotate import ANNOTATION_FIELDS
    from disclosure_nlp.model.classifier import DisclosureClassifier

    from .fakes import HashClassifier

    monkeypatch.setattr(DisclosureClassifier, "load", classmethod(lambda cls, *a, **k: HashClassifier()))
    monkeypatch.chdir(ROOT)
    namespace: dict = {}
    for code in blocks("pandas:", "python"):
        exec(compile(code, f"{README}:pandas", "exec"), namespace)
    out, conversations = namespace["out"], namespace["result"].conversations
    assert len(out) == 243 and list(out.columns[-len(ANNOTATION_FIELDS):]) == list(ANNOTATION_FIELDS)
    assert len(conversations) == 24
    printed = capsys.readouterr().out
    assert "prompt_turn" in printed and "most_disclosing" in printed  # pandas elides middle columns


def test_datasets_example_runs(tmp_path, monkeypatch):
    datasets_config = pytest.importorskip("datasets.config")
    from disclosure_nlp.cli import app

    # The example reads data/{train,dev,test}.jsonl from the working directory: tiny copies here.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(datasets_config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    (tmp_path / "data").mkdir()
    rows = [{"text": t, "layer": l, "register": "test"} for t, l in TINY]
    for name in ("train", "dev", "test"):
        write_jsonl(tmp_path / "data" / f"{name}.jsonl", rows)

    (code,) = blocks("datasets:", "python")
    exec(compile(code, f"{README}:datasets", "exec"), {})

    (script,) = blocks("datasets:", "bash")
    commands = [shlex.split(line) for line in script.splitlines() if line.startswith("disclosure ")]
    assert [c[1] for c in commands] == ["train", "evaluate"]
    runner = CliRunner()
    for command in commands:
        args = command[1:]
        if args[0] == "train":
            args += ["--epochs", "1", "--batch-size", "4", "--max-length", "24"]  # seconds, not minutes
        result = runner.invoke(app, args)
        assert result.exit_code == 0, (args, result.output)
    assert "macro-F1" in result.output
    model = Path(commands[0][commands[0].index("--output") + 1])
    training = json.loads((model / "training.json").read_text())
    assert (training["train"]["split"], training["dev"]["split"]) == ("train", "validation")
