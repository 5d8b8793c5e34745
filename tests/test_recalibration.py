"""disclosure calibrate: refit a model's calibration on real-dev and write a model that loads as
before, with the new map folded in and recorded."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from disclosure_nlp.errors import DisclosureError

from .conftest import TINY

HEADER = ["sentenceid", "id", "full_text", "Information_disclosure", "Emotional_disclosure", "subreddit"]


def _real(tmp_path: Path) -> tuple[Path, Path]:
    """A CL-Aff-shaped CSV of the tiny messages and labels putting them all in real-dev."""
    csv_path, labels = tmp_path / "claff.csv", tmp_path / "labels.jsonl"
    with csv_path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for i, (text, _) in enumerate(TINY * 3):
            writer.writerow([str(100 + i), f"p{i}", text, "1", "0", "x"])
    labels.write_text("".join(
        json.dumps({"sentenceid": str(100 + i), "post": f"p{i}", "layer": layer, "split": "dev"}) + "\n"
        for i, (_, layer) in enumerate(TINY * 3)), encoding="utf-8")
    return csv_path, labels


def _logits(model_dir: Path, texts: list[str]) -> np.ndarray:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    with torch.no_grad():
        return model(**tokenizer(texts, padding=True, return_tensors="pt")).logits.numpy()


def test_calibrate_folds_the_fitted_map_and_records_it(tiny_model: Path, tmp_path: Path) -> None:
    from disclosure_nlp.cli import app

    csv_path, labels = _real(tmp_path)
    out = tmp_path / "recalibrated"
    result = CliRunner().invoke(app, ["calibrate", str(tiny_model), "-o", str(out), "--real-csv", str(csv_path),
                                      "--real-labels", str(labels)])
    assert result.exit_code == 0, result.output
    assert "vector calibration fitted on 24 real-dev sentences" in result.output

    record = json.loads((out / "training.json").read_text())["calibration"]
    assert record["method"] == "vector" and record["n"] == 24 and record["after"]["method"] == "vector"
    assert record["labels"] == str(labels)  # the labels file as named, so the fit can be redone
    texts = [t for t, _ in TINY]
    before, after = _logits(tiny_model, texts), _logits(out, texts)
    expected = before * np.array(record["scales"]) + np.array(record["biases"])
    assert np.allclose(after, expected, atol=2e-3)  # the record is rounded to 4 digits
    assert "vector scaling" in (out / "README.md").read_text()
    assert json.loads((out / "metrics.json").read_text())["real_dev"]["n"] == 24

    again = CliRunner().invoke(app, ["calibrate", str(tiny_model), "-o", str(out), "--real-csv", str(csv_path),
                                     "--real-labels", str(labels)])
    assert again.exit_code != 0 and "--force" in again.output


def test_calibrate_refuses_its_own_input_and_an_empty_dev_split(tiny_model: Path, tmp_path: Path) -> None:
    from disclosure_nlp.model.recalibration import recalibrate

    csv_path, labels = _real(tmp_path)
    with pytest.raises(DisclosureError, match="is the model being recalibrated"):
        recalibrate(tiny_model, tiny_model, real_csv=csv_path, real_labels=labels, force=True)
    labels.write_text(labels.read_text().replace('"dev"', '"train"'))
    with pytest.raises(DisclosureError, match="no sentences in the dev split"):
        recalibrate(tiny_model, tmp_path / "x", real_csv=csv_path, real_labels=labels)
