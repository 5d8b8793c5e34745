"""The CLI through Typer's test runner, on the tiny model."""

import json

from typer.testing import CliRunner

from disclosure_nlp.cli import app
from disclosure_nlp.layers import LAYERS

runner = CliRunner()


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
    for command in ("predict", "evaluate", "annotate", "export"):
        assert "'disclosure-nlp[onnx]'" in _help(command), command
    assert "'disclosure-nlp[ray]'" in _help("annotate")


def test_every_bracketed_word_of_every_help_text_is_shown_as_written():
    import re

    import typer.main

    group = typer.main.get_command(app)
    for name, command in group.commands.items():
        shown = _help(name)
        texts = [command.help or ""] + [getattr(param, "help", None) or "" for param in command.params]
        for word in (w for text in texts for w in re.findall(r"\S*\[[^\]\s]*\]\S*", text)):
            assert word in shown, (name, word)
