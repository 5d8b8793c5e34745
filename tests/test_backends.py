"""Inference backends: they agree with PyTorch fp32, fail clearly, and cache exports correctly.

Fast tests use a micro BERT (2 layers, hidden size 32, large random weights so that its
predictions vary from message to message) built in a fraction of a second, so the ONNX export, its cache and the
padding behaviour of the exported graph are checked in the default run; the same checks on a
real MiniLM model (the ``tiny_model`` fixture) are marked slow because its export takes seconds.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from disclosure_nlp.model import backends
from disclosure_nlp.model.backends import (
    BACKENDS,
    EXPORT_MANIFEST,
    ONNX_FP32,
    ONNX_INT8,
    OnnxBackend,
    export_onnx,
    onnx_cache_dir,
    physical_cores,
    resolve_threads,
)
from disclosure_nlp.model.classifier import DisclosureClassifier
from disclosure_nlp.cli import app
from disclosure_nlp.errors import DisclosureError
from disclosure_nlp.layers import ID2LABEL, LABEL2ID, LAYERS

from .conftest import TINY

MESSAGES = [text for text, _ in TINY] + [
    "ok",
    "lol same",
    "my therapist says I should stop apologising for existing, which, fair",
    "can you send me the file before friday? thanks!",
]


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own cache: exports never land in the user's cache or the repo."""
    monkeypatch.setenv("DISCLOSURE_NLP_CACHE", str(tmp_path_factory.mktemp("cache")))


def _micro_model(directory: Path, seed: int) -> Path:
    """A real BERT sequence classifier, tiny and random, saved as a full model directory."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from disclosure_nlp.model.modelstore import base_model_path

    tokenizer = AutoTokenizer.from_pretrained(base_model_path())
    tokenizer.model_max_length = 24  # small, so that long messages are cut into windows
    config = BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=64, num_labels=4, id2label=ID2LABEL, label2id=LABEL2ID,
        initializer_range=0.3,  # large random weights: predictions that vary from message to message
    )
    torch.manual_seed(seed)
    model = BertForSequenceClassification(config).eval()
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def micro_model(tmp_path_factory) -> Path:
    return _micro_model(tmp_path_factory.mktemp("micro") / "model", seed=5)


def _onnx_available() -> bool:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


needs_onnx = pytest.mark.skipif(not _onnx_available(), reason="the onnx extra is not installed")


# --------------------------------------------------------------------------------------------
# Selection errors


def test_unknown_backend_names_the_choices_before_loading_anything(tmp_path):
    with pytest.raises(DisclosureError) as info:
        DisclosureClassifier.load(tmp_path / "no-such-model", backend="tensorrt")
    message = str(info.value)
    assert "tensorrt" in message
    for name in BACKENDS:
        assert name in message


def test_missing_onnxruntime_says_how_to_install_it(micro_model, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with pytest.raises(DisclosureError, match=r"pip install 'disclosure-nlp\[onnx\]'"):
        DisclosureClassifier.load(micro_model, backend="onnx")


def test_export_without_onnx_package_says_how_to_install_it(micro_model, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(DisclosureError, match=r"onnx.*pip install 'disclosure-nlp\[onnx\]'"):
        export_onnx(micro_model, tmp_path / "out")


def test_cli_rejects_an_unknown_backend(micro_model):
    result = CliRunner().invoke(app, ["predict", "--model", str(micro_model), "--backend", "gpu9000", "hello"])
    assert result.exit_code == 2
    assert "unknown backend 'gpu9000'" in result.output
    assert "Traceback" not in result.output


@needs_onnx
def test_onnx_backend_refuses_a_gpu_device(micro_model):
    with pytest.raises(DisclosureError, match="CPU only"):
        DisclosureClassifier.load(micro_model, backend="onnx", device="cuda")


# --------------------------------------------------------------------------------------------
# Threads


def test_threads_default_to_physical_cores_and_honour_explicit_settings(monkeypatch):
    import os

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    cores = physical_cores()
    assert 1 <= cores <= (os.cpu_count() or cores)
    assert resolve_threads() == cores
    assert resolve_threads(3) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert resolve_threads() == 1
    with pytest.raises(DisclosureError):
        resolve_threads(0)


# --------------------------------------------------------------------------------------------
# Agreement with PyTorch fp32 (micro model, fast)


def _compare(reference: np.ndarray, other: np.ndarray) -> tuple[float, float, float]:
    """Largest and mean absolute probability difference, and the share of equal argmaxes."""
    diff = np.abs(reference - other)
    return float(diff.max()), float(diff.mean()), float((reference.argmax(1) == other.argmax(1)).mean())


# The micro model's random weights are large (initializer range 0.3), which makes int8 rounding
# errors several times larger than on a trained model (see the slow test below for those); a
# backend that mishandled inputs, padding or windows would still be far outside these bounds.
MICRO_MAX_DIFF, MICRO_MEAN_DIFF, MICRO_AGREEMENT = 0.4, 0.06, 0.75


@needs_onnx
def test_onnx_export_matches_torch_on_padded_batches(micro_model):
    clf = DisclosureClassifier.load(micro_model)
    owners, pieces = clf.windows(MESSAGES + ["word " * 60])
    assert len(pieces) > len(MESSAGES) + 1  # some windows, so batches mix lengths
    reference = clf._forward(pieces, batch_size=5)  # batches of uneven lengths: padding inside
    export = onnx_cache_dir(micro_model)
    clf.backend = OnnxBackend.load(micro_model, int8=False)
    assert clf.backend.path == export / ONNX_FP32
    np.testing.assert_allclose(clf._forward(pieces, batch_size=5), reference, atol=1e-4)
    # Batch size must not change results either (padding is masked out).
    np.testing.assert_allclose(clf._forward(pieces, batch_size=1), reference, atol=1e-4)


@needs_onnx
def test_onnx_int8_backend_agrees_with_fp32(micro_model):
    texts = MESSAGES * 2 + ["word " * 60]  # the last one spans several windows
    fp32 = DisclosureClassifier.load(micro_model).predict_proba(texts)
    clf = DisclosureClassifier.load(micro_model, backend="onnx", threads=1)
    assert clf.backend_name == "onnx" and clf.model is None and clf.backend.threads == 1
    probs = clf.predict_proba(texts)
    assert probs.shape == fp32.shape
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    worst, mean, agree = _compare(fp32, probs)
    assert worst < MICRO_MAX_DIFF and mean < MICRO_MEAN_DIFF
    assert agree >= MICRO_AGREEMENT
    # int8 activations are scaled per batch, so compare like with like: the same list of texts.
    assert [p.layer for p in clf.predict(texts)] == [LAYERS[i] for i in probs.argmax(axis=1)]


def test_fast_tokenizer_matches_the_transformers_tokenizer(micro_model):
    from transformers import AutoTokenizer

    from disclosure_nlp.model.backends import FastTokenizer

    texts = MESSAGES + ["Ça va? Naïve café — 😅 SHOUTING", "", "  spaces\tand\nlines  ", "x" * 300]
    light, full = FastTokenizer(micro_model), AutoTokenizer.from_pretrained(micro_model)
    for special in (True, False):
        assert light(texts, add_special_tokens=special)["input_ids"] == full(texts, add_special_tokens=special)["input_ids"]
    assert light("")["input_ids"] == full("")["input_ids"]
    assert (light.cls_token_id, light.pad_token_id, light.model_max_length) == (
        full.cls_token_id, full.pad_token_id, full.model_max_length)
    # The same windows, whichever tokenizer cuts them.
    clf = DisclosureClassifier.load(micro_model)
    windows = clf.windows(texts)
    clf.tokenizer = light
    assert clf.windows(texts) == windows


@needs_onnx
def test_onnx_backend_starts_without_importing_torch(micro_model):
    import subprocess

    from disclosure_nlp.model.backends import cached_export

    cached_export(micro_model)  # the export itself needs torch; loading it afterwards must not
    code = (
        "import sys\n"
        "from disclosure_nlp.model.classifier import DisclosureClassifier\n"
        f"clf = DisclosureClassifier.load({str(micro_model)!r}, backend='onnx')\n"
        "print(clf.predict(['hello there'])[0].layer)\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'heavy import'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() in LAYERS


# --------------------------------------------------------------------------------------------
# onnx-fp32 and auto


@needs_onnx
def test_onnx_fp32_backend_gives_torchs_probabilities_and_exports_only_fp32(micro_model):
    texts = MESSAGES + ["word " * 60]  # the last one spans several windows
    reference = DisclosureClassifier.load(micro_model).predict_proba(texts)
    clf = DisclosureClassifier.load(micro_model, backend="onnx-fp32", threads=1)
    assert clf.backend_name == "onnx-fp32" and clf.model is None
    assert clf.backend.path.name == ONNX_FP32
    np.testing.assert_allclose(clf.predict_proba(texts), reference, atol=1e-4)
    # Only the fp32 file was needed, so only it was made; the int8 backend exports it later.
    export = onnx_cache_dir(micro_model)
    assert (export / ONNX_FP32).exists() and not (export / ONNX_INT8).exists()
    assert DisclosureClassifier.load(micro_model, backend="onnx").backend_name == "onnx"
    assert (export / ONNX_INT8).exists()


def test_auto_picks_onnx_fp32_only_where_onnxruntime_is_found(monkeypatch):
    import importlib.util

    from disclosure_nlp.model.backends import resolve_backend

    real = importlib.util.find_spec
    spec = real("json")  # any spec: "found"
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: spec if name in ("onnx", "onnxruntime") else real(name, *a))
    assert resolve_backend("auto") == "onnx-fp32"
    assert resolve_backend("auto", "cuda") == "torch"  # ONNX backends run on the CPU only
    assert resolve_backend("onnx") == "onnx" and resolve_backend("torch") == "torch"
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    assert resolve_backend("auto") == "torch"


def test_auto_loads_torch_when_onnxruntime_is_absent(micro_model, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    clf = DisclosureClassifier.load(micro_model, backend="auto")
    assert clf.backend_name == "torch" and clf.model is not None


@needs_onnx
def test_auto_falls_back_to_torch_when_the_onnx_load_fails(micro_model, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("exporter does not know this architecture")

    monkeypatch.setattr(backends.OnnxBackend, "load", broken)
    with caplog.at_level("WARNING"):
        clf = DisclosureClassifier.load(micro_model, backend="auto")
    assert clf.backend_name == "torch"
    assert "exporter does not know" in caplog.text and "using torch" in caplog.text
    with pytest.raises(RuntimeError):  # asked for by name: the error is the user's to see
        DisclosureClassifier.load(micro_model, backend="onnx-fp32")


@needs_onnx
def test_cli_predict_defaults_to_onnx_fp32_and_never_imports_torch(micro_model):
    import subprocess

    from disclosure_nlp.model.backends import cached_export

    cached_export(micro_model, quantize=False)  # the export needs torch; predict after it must not
    code = (
        "import json, sys\n"
        "from disclosure_nlp.cli import app\n"
        f"app(['predict', '--model', {str(micro_model)!r}, '--json', 'hello there'], standalone_mode=False)\n"
        "heavy = sorted(m for m in ('torch', 'transformers') if m in sys.modules)\n"
        "print(json.dumps(heavy))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    row, heavy = [json.loads(line) for line in result.stdout.strip().splitlines()[-2:]]
    assert heavy == []
    assert row["text"] == "hello there" and row["layer"] in LAYERS
    # The same label and probabilities as the torch backend.
    reference = DisclosureClassifier.load(micro_model).predict("hello there")[0]
    assert row["layer"] == reference.layer
    for name in LAYERS:
        assert abs(row["probabilities"][name] - reference.probabilities[name]) < 1e-4


# --------------------------------------------------------------------------------------------
# Export files and the cache


@needs_onnx
def test_export_writes_servable_files_and_manifest(micro_model, tmp_path):
    out = export_onnx(micro_model, tmp_path / "served")
    names = {p.name for p in out.iterdir()}
    assert {ONNX_FP32, ONNX_INT8, EXPORT_MANIFEST, "config.json", "tokenizer.json"} <= names
    assert not any(name.startswith(".") for name in names)
    manifest = json.loads((out / EXPORT_MANIFEST).read_text())
    assert manifest["labels"] == ["none", "surface", "intermediate", "core"]
    kept = manifest["int8"]["kept_fp32"]  # the first feed-forward output stays fp32
    assert len(kept) == 1 and kept[0].endswith("layer.0/output/dense/MatMul")
    assert set(manifest["inputs"]) == {"input_ids", "attention_mask"}
    assert manifest["files"] == {"fp32": ONNX_FP32, "int8": ONNX_INT8}
    # The fp32 file is plain ONNX (standard operators only): other runtimes can serve it.
    import onnx

    graph = onnx.load(str(out / ONNX_FP32)).graph
    assert {node.domain for node in graph.node} <= {"", "ai.onnx"}
    # No leftovers beside the export (staging directories are removed).
    assert [p.name for p in tmp_path.iterdir()] == ["served"]
    fp32_only = export_onnx(micro_model, tmp_path / "plain", quantize=False)
    assert not (fp32_only / ONNX_INT8).exists()


@needs_onnx
def test_onnx_cache_is_reused_then_rebuilt_when_the_model_changes(tmp_path, monkeypatch):
    model_dir = _micro_model(tmp_path / "model", seed=1)
    calls = []
    real_export = backends.export_onnx
    monkeypatch.setattr(backends, "export_onnx", lambda *a, **k: calls.append(a) or real_export(*a, **k))

    first = DisclosureClassifier.load(model_dir, backend="onnx")
    before = first.predict_proba(MESSAGES)
    first_dir = first.backend.path.parent
    DisclosureClassifier.load(model_dir, backend="onnx")
    assert len(calls) == 1  # the second load reused the export

    # Retrain (here: re-initialise) the model in place: same path, new weights.
    _micro_model(model_dir, seed=2)
    second = DisclosureClassifier.load(model_dir, backend="onnx")
    assert len(calls) == 2
    assert second.backend.path.parent != first_dir
    assert not first_dir.exists()  # the stale export was removed
    after = second.predict_proba(MESSAGES)
    assert np.abs(after - before).max() > 0.05  # not served from the stale export
    # The new export is the new model: its fp32 graph matches the retrained weights exactly.
    reference = DisclosureClassifier.load(model_dir)
    torch_after = reference.predict_proba(MESSAGES)
    reference.backend = OnnxBackend.from_file(second.backend.path.parent / ONNX_FP32)
    np.testing.assert_allclose(reference.predict_proba(MESSAGES), torch_after, atol=1e-4)
    # The export lives in the cache, never beside the model.
    assert not any(p.suffix == ".onnx" for p in model_dir.rglob("*"))


@needs_onnx
def test_model_card_edits_do_not_trigger_a_new_export(micro_model):
    before = onnx_cache_dir(micro_model)
    (micro_model / "README.md").write_text("an edited model card\n")
    (micro_model / "metrics.json").write_text("{}\n")
    assert onnx_cache_dir(micro_model) == before


# --------------------------------------------------------------------------------------------
# The real MiniLM model (slow: its export takes several seconds)


@pytest.mark.slow
@needs_onnx
def test_onnx_backend_agrees_with_fp32_on_a_trained_minilm(tiny_model):
    texts = MESSAGES + ["I had a great time. " * 80 + "I never told anyone I was abused as a kid."]
    reference = DisclosureClassifier.load(tiny_model).predict_proba(texts)
    clf = DisclosureClassifier.load(tiny_model, backend="onnx")
    probs = clf.predict_proba(texts)
    worst, mean, agree = _compare(reference, probs)
    assert worst < 0.1 and mean < 0.02
    assert agree >= 0.9
    # Windows still decide long messages the same way (deepest window).
    assert probs[-1].argmax() == reference[-1].argmax()


@pytest.mark.slow
@needs_onnx
def test_onnx_fp32_matches_torch_on_the_sample_conversations_with_the_default_model():
    samples = Path(__file__).resolve().parents[1] / "data" / "conversations" / "samples.jsonl"
    texts = [json.loads(line)["text"] for line in samples.read_text(encoding="utf-8").splitlines() if line.strip()]
    reference = DisclosureClassifier.load(backend="torch").predict_proba(texts)
    probs = DisclosureClassifier.load(backend="onnx-fp32").predict_proba(texts)
    np.testing.assert_allclose(probs, reference, atol=1e-4)
    assert (probs.argmax(axis=1) == reference.argmax(axis=1)).all()


@pytest.mark.slow
@needs_onnx
def test_cli_predict_with_onnx_backend(tiny_model):
    result = CliRunner().invoke(
        app, ["predict", "--model", str(tiny_model), "--backend", "onnx", "--json", "I'm a nurse in Leeds"]
    )
    assert result.exit_code == 0, result.output
    row = json.loads(result.output.strip().splitlines()[-1])
    assert row["layer"] in ID2LABEL.values()
    assert abs(sum(row["probabilities"].values()) - 1.0) < 1e-4
