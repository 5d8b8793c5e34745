"""The CLI through Typer's test runner, on the tiny model."""

import json

import pytest
from typer.testing import CliRunner

from disclosure_nlp.cli import app
from disclosure_nlp.layers import LAYERS

runner = CliRunner()


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """predict exports the model to ONNX (--backend auto): into a test cache, never the user's."""
    monkeypatch.setenv("DISCLOSURE_NLP_CACHE", str(tmp_path_factory.getbasetemp() / "cli-cache"))


def test_predict_prints_layer_confidence_and_depth(tiny_model):
    result = runner.invoke(app, ["predict", "--model", str(tiny_model), "I've been so stressed"])
    assert result.exit_code == 0, result.output
    first = result.output.split()[0]
    assert first in LAYERS
    assert "confidence=" in result.output and "depth=" in result.output


def test_predict_json_reads_stdin(tiny_model):
    result = runner.invoke(app, ["predict", "--model", str(tiny_model), "--json", "-"], input="hi there\nI'm a nurse\n")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [r["text"] for r in rows] == ["hi there", "I'm a nurse"]
    assert all(r["layer"] in LAYERS and 0.0 <= r["depth"] <= 3.0 for r in rows)


def test_predict_without_text_is_a_clear_error(tiny_model):
    result = runner.invoke(app, ["predict", "--model", str(tiny_model)])
    assert result.exit_code == 2
    assert "give at least one message" in result.output


def test_evaluate_reports_model_and_baseline(tiny_model, tiny_file, tmp_path):
    out = tmp_path / "eval.json"
    result = runner.invoke(app, ["evaluate", "--model", str(tiny_model), "--data", str(tiny_file), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "macro-F1" in result.output and "tfidf-baseline" in result.output
    payload = json.loads(out.read_text())
    assert payload["model"]["n"] == 8 and payload["baseline"]["n"] == 8
    assert sum(map(sum, payload["model"]["confusion"])) == 8
    # how uncertain the figures are on 8 messages: wide intervals around them, in the output and the JSON
    interval, gain = payload["macro_f1_interval"], payload["gain_interval"]
    assert interval["low"] <= payload["model"]["macro_f1"] <= interval["high"] and interval["level"] == 0.9
    assert gain["low"] <= payload["model"]["macro_f1"] - payload["baseline"]["macro_f1"] <= gain["high"]
    assert f"90% bootstrap interval {interval['low']:.3f}-{interval['high']:.3f} (8 messages)" in result.output
    again = runner.invoke(app, ["evaluate", "--model", str(tiny_model), "--data", str(tiny_file), "-o", str(out)])
    assert again.exit_code == 2 and "--force" in again.output


def test_evaluate_json_and_bad_data_file(tiny_model, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "hello", "layer": "none"}\n{"text": "x", "layer": "medium"}\n')
    result = runner.invoke(app, ["evaluate", "--model", str(tiny_model), "--data", str(bad), "--no-baseline"])
    assert result.exit_code == 2
    assert "bad.jsonl, line 2, field 'layer'" in result.output


def test_train_command_writes_a_model(tiny_file, tmp_path):
    out = tmp_path / "m"
    args = ["train", "--train", str(tiny_file), "--dev", str(tiny_file), "--output", str(out),
            "--epochs", "1", "--batch-size", "4", "--max-length", "24"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "epoch 1:" in result.output and (out / "model.safetensors").exists()
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2 and "already exists" in refused.output


def _help(command: str) -> str:
    result = runner.invoke(app, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.output


def test_help_shows_the_extras_in_square_brackets():
    # Rich markup used to take "[onnx]" for a style tag and drop it from the help.
    assert "'disclosure-nlp[ray]'" in _help("annotate")
    # ONNX Runtime is part of the plain install (README): no help text may say to add an extra.
    for command in ("predict", "evaluate", "annotate", "export"):
        shown = _help(command)
        assert "[onnx]" not in shown and "part of the plain install" in shown, command


def test_every_bracketed_word_of_every_help_text_is_shown_as_written():
    import re

    import typer.main

    group = typer.main.get_command(app)
    for name, command in group.commands.items():
        shown = _help(name)
        texts = [command.help or ""] + [getattr(param, "help", None) or "" for param in command.params]
        for word in (w for text in texts for w in re.findall(r"\S*\[[^\]\s]*\]\S*", text)):
            assert word in shown, (name, word)


def _tiny_datasetdict(path, splits=("train", "validation", "test")):
    """The eight tiny messages as a DatasetDict saved with the real datasets library."""
    from datasets import Dataset, DatasetDict

    from .conftest import TINY

    rows = {"text": [t for t, _ in TINY], "layer": [l for _, l in TINY]}
    DatasetDict({name: Dataset.from_dict(rows) for name in splits}).save_to_disk(path)
    return path


def test_train_and_evaluate_read_a_saved_datasetdict(tmp_path):
    dd = _tiny_datasetdict(tmp_path / "dd")
    out = tmp_path / "m"
    result = runner.invoke(app, ["train", "--train", str(dd), "--output", str(out), "--epochs", "1",
                                 "--batch-size", "4", "--max-length", "24", "--data-seed", "5"])
    assert result.exit_code == 0, result.output
    training = json.loads((out / "training.json").read_text())
    assert (training["config"]["seed"], training["config"]["data_seed"]) == (13, 5)
    assert "seed 13 (data seed 5)" in (out / "README.md").read_text()
    assert (training["train"]["split"], training["dev"]["split"]) == ("train", "validation")
    assert training["train"]["path"] == training["dev"]["path"] == str(dd)
    assert training["train"]["rows"] == training["dev"]["rows"] == 8
    assert f"`{dd}` (split `validation`)" in (out / "README.md").read_text()

    # The baseline trains on the split the model was trained on, found through training.json.
    scored = runner.invoke(app, ["evaluate", "--model", str(out), "--data", str(dd), "--split", "test", "--json"])
    assert scored.exit_code == 0, scored.output
    payload = json.loads(scored.output)
    assert payload["model"]["n"] == 8 and payload["baseline"]["n"] == 8
    assert payload["baseline_train"] == f"{dd} (split 'train')"


def test_evaluate_baseline_trains_on_a_named_split_of_a_datasetdict(tiny_model, tiny_file, tmp_path):
    dd = _tiny_datasetdict(tmp_path / "dd", splits=("fit", "held_out"))
    base = ["evaluate", "--model", str(tiny_model), "--data", str(tiny_file), "--baseline-train", str(dd)]
    unnamed = runner.invoke(app, base)
    assert unnamed.exit_code == 2
    assert f"{dd}: is a DatasetDict with splits fit, held_out; choose one with --baseline-split" in unnamed.output
    named = runner.invoke(app, base + ["--baseline-split", "fit", "--json"])
    assert named.exit_code == 0, named.output
    assert json.loads(named.output)["baseline_train"] == f"{dd} (split 'fit')"
    alone = runner.invoke(app, ["evaluate", "--model", str(tiny_model), "--data", str(tiny_file), "--baseline-split", "fit"])
    assert alone.exit_code == 2 and "--baseline-split names a split of --baseline-train" in alone.output


def test_train_with_named_splits_and_split_errors(tmp_path, tiny_file):
    dd = _tiny_datasetdict(tmp_path / "dd", splits=("fit", "held_out"))
    base = ["train", "--output", str(tmp_path / "m"), "--epochs", "1", "--batch-size", "4", "--max-length", "24"]

    missing = runner.invoke(app, base + ["--train", str(dd)])
    assert missing.exit_code == 2
    assert f"{dd}: is a DatasetDict with no 'train' split (its splits: fit, held_out); choose one with --train-split" in missing.output
    no_dev = runner.invoke(app, base + ["--train", str(dd), "--train-split", "fit"])
    assert no_dev.exit_code == 2
    assert "no 'validation' or 'dev' split (its splits: fit, held_out); give --dev" in no_dev.output
    typo = runner.invoke(app, base + ["--train", str(tiny_file), "--dev", str(dd), "--dev-split", "heldout"])
    assert typo.exit_code == 2
    assert f"{dd}: has no split 'heldout' (its splits: fit, held_out); choose one with --dev-split" in typo.output
    assert not (tmp_path / "m").exists()

    ok = runner.invoke(app, base + ["--train", str(dd), "--train-split", "fit", "--dev", str(dd), "--dev-split", "held_out"])
    assert ok.exit_code == 0, ok.output
    training = json.loads((tmp_path / "m" / "training.json").read_text())
    assert (training["train"]["split"], training["dev"]["split"]) == ("fit", "held_out")


def test_annotate_with_an_unknown_format_is_a_clear_error(tmp_path):
    source = tmp_path / "chat.jsonl"
    source.write_text('{"text": "hi"}\n')
    result = runner.invoke(app, ["annotate", str(source), "-o", str(tmp_path / "o.jsonl"), "--format", "xlsx", "-q"])
    assert result.exit_code == 2, result.output
    assert "unknown format 'xlsx'; expected one of jsonl, csv, tsv" in result.output
