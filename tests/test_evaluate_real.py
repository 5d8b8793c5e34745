"""``disclosure evaluate --real-csv``: the project's labeled CL-Aff split, text joined at run time."""

import json
import shutil

import pytest
from typer.testing import CliRunner

from disclosure_nlp.cli import app
from disclosure_nlp.model.evaluation import evaluate_real

from .conftest import TINY

runner = CliRunner()


@pytest.fixture
def real_trained_copy(tiny_model, tmp_path):
    """The tiny model, its record saying it trained on real-train twice per epoch (as a real run writes)."""
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    record = json.loads((model / "training.json").read_text())
    record["real"] = {"csv": "labeled_training_set.csv", "labels": "labels.jsonl", "train": len(TINY) * 2, "dev": 0,
                      "weight": 2, "views_per_epoch": len(TINY) * 4, "layer_weights": {}}
    (model / "training.json").write_text(json.dumps(record))
    return model


def test_only_the_named_split_is_scored(tiny_model, tmp_path, fake_claff):
    csv_path, labels = fake_claff(tmp_path / "claff")
    result = evaluate_real(tiny_model, csv_path, split="test", labels_path=labels, with_baseline=False)
    assert result.model.n == len(TINY)  # the fixture's test third, not its train two thirds
    train = evaluate_real(tiny_model, csv_path, split="train", labels_path=labels, with_baseline=False)
    assert train.model.n == 2 * len(TINY)
    assert "real-test" in result.data and str(labels) in result.data


def test_the_baseline_fits_on_real_train_only_when_the_model_did(tiny_model, real_trained_copy, tmp_path, fake_claff):
    csv_path, labels = fake_claff(tmp_path / "claff")
    plain = evaluate_real(tiny_model, csv_path, labels_path=labels)
    assert "real-train" not in plain.baseline_train  # the model saw no real sentence: neither does its rival
    real = evaluate_real(real_trained_copy, csv_path, labels_path=labels)
    # two thirds of the fixture are real-train, repeated as often as the record says
    assert real.baseline_train.endswith(f"+ {2 * len(TINY) * 2} real-train sentences")
    assert real.baseline.n == len(TINY)


def test_a_split_with_no_labels_is_an_error_naming_the_labels_file(tiny_model, tmp_path, fake_claff):
    csv_path, labels = fake_claff(tmp_path / "claff")  # the fixture labels train and test, no dev
    result = runner.invoke(app, ["evaluate", "--model", str(tiny_model), "--real-csv", str(csv_path),
                                 "--real-labels", str(labels), "--real-split", "dev", "--no-baseline"])
    assert result.exit_code == 2
    assert str(labels) in result.output and "'dev'" in result.output


def test_cli_records_real_test_in_the_card_with_its_interval_and_calibration(real_trained_copy, tmp_path, fake_claff):
    csv_path, labels = fake_claff(tmp_path / "claff")
    out = tmp_path / "real.json"
    result = runner.invoke(app, ["evaluate", "--model", str(real_trained_copy), "--real-csv", str(csv_path),
                                 "--real-labels", str(labels), "--record", "real-test", "-o", str(out)])
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text())
    assert payload["model"]["n"] == len(TINY)
    metrics = json.loads((real_trained_copy / "metrics.json").read_text())
    assert metrics["evaluations"]["real-test"]["model"] == payload["model"]
    card = (real_trained_copy / "README.md").read_text()
    section = card.split("### real-test", 1)[1].split("###", 1)[0].split("## Limits", 1)[0]
    interval = payload["macro_f1_interval"]
    assert f"bootstrap interval {interval['low']:.3f}-{interval['high']:.3f}" in section
    assert f"expected calibration error {payload['calibration']['ece']:.3f}" in section
    assert "real-train sentences" in section  # what the baseline was fitted on


@pytest.mark.parametrize("extra, message", [
    ([], "exactly one of --data"),
    (["--data", "x.jsonl", "--real-csv", "y.csv"], "exactly one of --data"),
    (["--data", "x.jsonl", "--real-split", "dev"], "go with --real-csv"),
])
def test_data_and_real_csv_are_one_choice(tiny_model, extra, message):
    result = runner.invoke(app, ["evaluate", "--model", str(tiny_model), *extra])
    assert result.exit_code == 2
    assert message in result.output


def test_a_recorded_evaluation_does_not_name_this_machine(real_trained_copy, tmp_path, fake_claff):
    """metrics.json ships inside model folders: the folder it lives in is not worth an absolute path."""
    csv_path, labels = fake_claff(tmp_path / "claff")
    result = runner.invoke(app, ["evaluate", "--model", str(real_trained_copy), "--real-csv", str(csv_path),
                                 "--real-labels", str(labels), "--no-baseline", "--record", "real-test"])
    assert result.exit_code == 0, result.output
    recorded = json.loads((real_trained_copy / "metrics.json").read_text())["evaluations"]["real-test"]
    assert "model_dir" not in recorded
    assert str(real_trained_copy) not in json.dumps(recorded)
