"""`disclosure export`: model directories other tools can load.

``--full`` writes a standalone Hugging Face directory (the compact shipped form rebuilt with its
full weights) that ``transformers.pipeline("text-classification", model=DIR)`` loads and that
gives the classifier's own answers; ``--onnx`` writes the ONNX files the fast backend runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from disclosure_nlp.model.classifier import DisclosureClassifier
from disclosure_nlp.cli import app
from disclosure_nlp.layers import LAYERS

from .conftest import TINY
from .test_backends import _micro_model, needs_onnx

runner = CliRunner()
TEXTS = [text for text, _ in TINY]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("DISCLOSURE_NLP_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="module")
def micro_model(tmp_path_factory) -> Path:
    return _micro_model(tmp_path_factory.mktemp("micro") / "model", seed=7)


def pipeline_probabilities(directory: Path, texts: list[str]) -> np.ndarray:
    from transformers import pipeline

    classify = pipeline("text-classification", model=str(directory), top_k=None, device="cpu")
    rows = classify(texts)
    return np.array([[next(s["score"] for s in row if s["label"] == name) for name in LAYERS] for row in rows])


def test_full_export_loads_in_a_transformers_pipeline_with_the_same_answers(micro_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "hf"
    result = runner.invoke(app, ["export", str(micro_model), "--full", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "model.safetensors").exists() and (out / "config.json").exists()
    short = [t for t in TEXTS if len(t.split()) < 12]  # within the micro model's 24 tokens: no windows
    expected = DisclosureClassifier.load(micro_model).predict_proba(short)
    np.testing.assert_allclose(pipeline_probabilities(out, short), expected, atol=1e-5)


def test_existing_outputs_are_refused_without_force(micro_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "hf"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    refused = runner.invoke(app, ["export", str(micro_model), "--full", str(out)])
    assert refused.exit_code == 2 and "already exists" in refused.output
    assert (out / "keep.txt").read_text() == "mine"
    assert runner.invoke(app, ["export", str(micro_model), "--full", str(out), "--force"]).exit_code == 0
    assert not (out / "keep.txt").exists() and (out / "model.safetensors").exists()
    nothing = runner.invoke(app, ["export", str(micro_model)])
    assert nothing.exit_code == 2 and "--onnx" in nothing.output


@needs_onnx
def test_onnx_export_through_the_cli(micro_model: Path, tmp_path: Path) -> None:
    import onnxruntime

    out = tmp_path / "onnx"
    result = runner.invoke(app, ["export", str(micro_model), "--onnx", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "model.onnx").exists() and (out / "model.int8.onnx").exists() and (out / "tokenizer.json").exists()
    classifier = DisclosureClassifier.load(micro_model)
    _, pieces = classifier.windows(TEXTS[:1])
    ids = np.array(pieces, dtype=np.int64)
    session = onnxruntime.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probabilities, classifier.predict_proba(TEXTS[:1]), atol=1e-4)
    refused = runner.invoke(app, ["export", str(micro_model), "--onnx", str(out)])
    assert refused.exit_code == 2 and "already exists" in refused.output


@pytest.mark.slow
def test_full_export_of_a_compact_model(tiny_model: Path, tmp_path: Path) -> None:
    from disclosure_nlp.model.modelstore import pack_compact

    compact = pack_compact(tiny_model, tmp_path / "compact")
    assert not (compact / "model.safetensors").exists()
    out = tmp_path / "hf"
    result = runner.invoke(app, ["export", str(compact), "--full", str(out)])
    assert result.exit_code == 0, result.output
    expected = DisclosureClassifier.load(compact).predict_proba(TEXTS)
    # The compact form is fp16: the rebuilt full model is what the classifier itself runs.
    np.testing.assert_allclose(pipeline_probabilities(out, TEXTS), expected, atol=1e-5)
    assert DisclosureClassifier.load(compact).path != out  # the cache copy, as documented
