"""End to end on a tiny set: train -> save -> load (ours and plain transformers) -> predict."""

import json

import pytest
from safetensors.torch import load_file

from disclosure_nlp.model.classifier import DisclosureClassifier
from disclosure_nlp.errors import DisclosureError, ModelError
from disclosure_nlp.layers import LAYERS
from disclosure_nlp.model.modelstore import pack_compact, resolve_model_dir
from disclosure_nlp.model.training import TrainConfig, train

from .conftest import TINY


def test_model_directory_is_a_plain_transformers_model(tiny_model):
    names = {p.name for p in tiny_model.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
            "README.md", "metrics.json", "training.json"} <= names
    assert not any(n.endswith((".bin", ".pt", ".pth", ".pkl")) for n in names), names
    config = json.loads((tiny_model / "config.json").read_text())
    assert config["id2label"] == {str(i): name for i, name in enumerate(LAYERS)}
    assert config["label2id"] == {name: i for i, name in enumerate(LAYERS)}
    assert json.loads((tiny_model / "tokenizer_config.json").read_text())["model_max_length"] == 32


def test_transformers_pipeline_loads_it_directly(tiny_model):
    from transformers import AutoModelForSequenceClassification, pipeline

    model = AutoModelForSequenceClassification.from_pretrained(tiny_model)
    assert model.config.num_labels == 4
    scores = pipeline("text-classification", model=str(tiny_model), top_k=None)(["I love jazz"])[0]
    assert sorted(s["label"] for s in scores) == sorted(LAYERS)


def test_classifier_predictions_are_consistent_and_in_input_order(tiny_model):
    clf = DisclosureClassifier.load(tiny_model)
    texts = [t for t, _ in TINY] + ["ok"]
    batch = clf.predict(texts, batch_size=3)
    assert len(batch) == len(texts)
    for text, prediction in zip(texts, batch):
        alone = clf.predict(text)[0]
        assert alone.layer == prediction.layer
        assert alone.depth == pytest.approx(prediction.depth, abs=1e-4)
        assert sum(prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
        assert prediction.confidence == max(prediction.probabilities.values())
        assert prediction.layer == max(prediction.probabilities, key=prediction.probabilities.get)
        expected = sum(i * prediction.probabilities[n] for i, n in enumerate(LAYERS))
        assert prediction.depth == pytest.approx(expected, abs=1e-5)
    assert clf.predict([]) == []


def test_model_card_and_metrics_describe_the_run(tiny_model):
    card = (tiny_model / "README.md").read_text()
    assert "`core`" in card and "macro-F1" in card and "Limits" in card
    metrics = json.loads((tiny_model / "metrics.json").read_text())
    assert metrics["dev"]["n"] == len(TINY)
    training = json.loads((tiny_model / "training.json").read_text())
    assert training["config"]["seed"] == 3 and training["train"]["rows"] == len(TINY)
    assert 1 <= training["best_epoch"] <= 2


def test_same_seed_gives_the_same_weights(tmp_path, tiny_model):
    from .conftest import write_jsonl

    data = write_jsonl(tmp_path / "t.jsonl", [{"text": t, "layer": l} for t, l in TINY])
    again = train(data, data, tmp_path / "again",
                  TrainConfig(epochs=2, batch_size=4, max_length=32, learning_rate=1e-4, patience=5, seed=3),
                  progress=False)
    first, second = load_file(tiny_model / "model.safetensors"), load_file(again.output_dir / "model.safetensors")
    assert first.keys() == second.keys()
    assert all((first[k] == second[k]).all() for k in first)


def test_a_data_seed_keeps_the_starting_head_so_runs_can_be_averaged(tmp_path):
    """Runs that share --seed but not --data-seed differ only by their batches and dropout: their
    classification layers stay close (averageable); another --seed starts somewhere else."""
    from .conftest import write_jsonl

    data = write_jsonl(tmp_path / "t.jsonl", [{"text": t, "layer": l} for t, l in TINY])

    def head(name, **seeds):
        result = train(data, data, tmp_path / name,
                       TrainConfig(epochs=1, batch_size=4, max_length=32, learning_rate=1e-4, calibrate=False, **seeds),
                       progress=False)
        assert json.loads((result.output_dir / "training.json").read_text())["config"]["data_seed"] == seeds.get("data_seed")
        return load_file(result.output_dir / "model.safetensors")["classifier.weight"]

    plain, other_order, other_seed = head("a", seed=3), head("b", seed=3, data_seed=7), head("c", seed=4)
    moved = (plain - other_order).abs().max().item()
    assert moved > 0  # the data seed changed the run
    assert moved < (plain - other_seed).abs().max().item() / 10


def test_refuses_to_overwrite_without_force(tiny_model, tiny_file):
    with pytest.raises(DisclosureError, match="already exists"):
        train(tiny_file, tiny_file, tiny_model, TrainConfig(epochs=1), progress=False)


def test_frozen_embeddings_allow_the_compact_form(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("DISCLOSURE_NLP_CACHE", str(tmp_path / "cache"))
    compact = pack_compact(tiny_model, tmp_path / "compact")
    assert not (compact / "model.safetensors").exists()
    size = (compact / "delta.safetensors").stat().st_size
    assert size < 0.3 * (tiny_model / "model.safetensors").stat().st_size
    rebuilt = resolve_model_dir(compact)
    assert rebuilt != compact and (rebuilt / "model.safetensors").exists()
    assert resolve_model_dir(compact) == rebuilt  # built once, reused
    texts = [t for t, _ in TINY]
    full = DisclosureClassifier.load(tiny_model).predict_proba(texts)
    small = DisclosureClassifier.load(compact).predict_proba(texts)
    assert abs(full - small).max() < 0.02


def test_compact_form_stores_matrices_as_int8_differences_no_worse_than_half_precision(tiny_model, tmp_path, monkeypatch):
    from safetensors.torch import load_file as load_tensors

    monkeypatch.setenv("DISCLOSURE_NLP_CACHE", str(tmp_path / "cache"))
    small = pack_compact(tiny_model, tmp_path / "int8")
    half = pack_compact(tiny_model, tmp_path / "half", int8_deltas=False)
    spec = json.loads((small / "base_weights.json").read_text())
    # Every encoder matrix the base also has is stored as a difference (query, key, value,
    # attention output, intermediate, output: 6 per layer), each within half precision's error.
    assert sum(".encoder.layer." in name for name in spec["deltas"]) == 6 * 6
    assert all(e["max_abs_error"] <= e["half_precision_max_abs_error"] for e in spec["deltas"].values())
    stored = load_tensors(str(small / "delta.safetensors"))
    assert str(stored["bert.encoder.layer.0.attention.self.query.weight.delta_int8"].dtype) == "torch.int8"
    assert "bert.encoder.layer.0.attention.self.query.weight" not in stored
    assert "classifier.weight" in stored  # new in the fine-tuned model: nothing to differ from
    assert (small / "delta.safetensors").stat().st_size < 0.6 * (half / "delta.safetensors").stat().st_size

    # Rebuilt weights are within the recorded error of the trained ones, and so are predictions.
    trained = load_tensors(str(tiny_model / "model.safetensors"))
    rebuilt = load_tensors(str(resolve_model_dir(small) / "model.safetensors"))
    assert trained.keys() == rebuilt.keys()
    for name, entry in spec["deltas"].items():
        assert (rebuilt[name] - trained[name]).abs().max() <= entry["max_abs_error"] + 1e-7
    texts = [t for t, _ in TINY]
    full = DisclosureClassifier.load(tiny_model).predict_proba(texts)
    assert abs(full - DisclosureClassifier.load(small).predict_proba(texts)).max() < 1e-3
    # The half-precision form (and compact models written before int8 differences) still loads.
    assert abs(full - DisclosureClassifier.load(half).predict_proba(texts)).max() < 1e-3


def test_compact_form_missing_a_difference_is_refused(tiny_model, tmp_path, monkeypatch):
    from safetensors.torch import load_file as load_tensors
    from safetensors.torch import save_file

    monkeypatch.setenv("DISCLOSURE_NLP_CACHE", str(tmp_path / "cache"))
    small = pack_compact(tiny_model, tmp_path / "int8")
    stored = load_tensors(str(small / "delta.safetensors"))
    del stored["bert.encoder.layer.2.output.dense.weight.delta_scale"]
    save_file(stored, str(small / "delta.safetensors"))
    with pytest.raises(ModelError, match=r"lacks bert\.encoder\.layer\.2\.output\.dense\.weight\.delta_scale"):
        resolve_model_dir(small)


def test_model_directory_with_only_pickled_weights_is_refused(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"not really")
    with pytest.raises(ModelError, match="pickled weights"):
        DisclosureClassifier.load(tmp_path)


def test_long_messages_are_windowed_and_the_deepest_window_wins(tiny_model):
    clf = DisclosureClassifier.load(tiny_model, max_length=32)
    filler = "we went to the shop and then the park and it was fine " * 30
    deep = "I've never told anyone but I was abused as a kid"
    owners, pieces = clf.windows([filler + deep, "ok"])
    assert owners.count(0) > 3 and owners.count(1) == 1
    assert all(len(p) <= 32 for p in pieces)
    covered = clf.tokenizer.decode(pieces[owners.index(1) - 1])
    assert "abused" in covered  # the last window reaches the end of the message
    long_probs = clf.predict_proba([filler + deep], batch_size=8)[0]
    window_probs = clf._forward([p for o, p in zip(owners, pieces) if o == 0], 8)
    depths = window_probs @ [0, 1, 2, 3]
    assert long_probs.tolist() == window_probs[depths.argmax()].tolist()


def test_bad_training_data_is_reported_before_pytorch_is_imported(tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "hi there", "layer": "none"}\n{"text": "so lonely", "layer": "deep"}\n')
    code = (
        "import sys\n"
        "from disclosure_nlp.errors import DisclosureError\n"
        "from disclosure_nlp.model.training import train\n"
        f"try:\n    train({str(bad)!r}, {str(bad)!r}, {str(tmp_path / 'out')!r}, progress=False)\n"
        "except DisclosureError as err:\n    print('ERROR', err)\n"
        "print('torch imported:', 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "ERROR" in out and "line 2" in out and "deep" in out, out
    assert "torch imported: False" in out, out


def test_real_layer_weights_repeat_that_layer_after_the_rest():
    from disclosure_nlp.model.training import weight_real_layers

    real = [("a", 0), ("b", 3), ("c", 1), ("d", 3)]
    assert weight_real_layers(real, None) == real
    assert weight_real_layers(real, {"core": 3}) == real + [("b", 3), ("d", 3)] * 2
    assert weight_real_layers(real, {"surface": 2, "core": 2}) == real + [("c", 1), ("b", 3), ("d", 3)]
    with pytest.raises(DisclosureError, match="unknown layer.*deep"):
        weight_real_layers(real, {"deep": 2})
    with pytest.raises(DisclosureError, match="at least 1"):
        weight_real_layers(real, {"core": 0})


def test_real_layer_weights_are_checked_before_any_work(tiny_file, tmp_path):
    from typer.testing import CliRunner

    from disclosure_nlp.cli import app

    runner = CliRunner()
    base = ["train", "--train", str(tiny_file), "--dev", str(tiny_file), "-o", str(tmp_path / "m")]
    for flags, message in ((["--real-layer-weight", "core=lots"], "LAYER=N"),
                           (["--real-layer-weight", "core=4"], "needs real_csv (--real-csv"),
                           (["--real-layer-weight", "deep=2", "--real-csv", str(tiny_file)], "unknown layer")):
        result = runner.invoke(app, base + flags)
        assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "m").exists()


def test_real_layer_weights_reach_training_and_its_record(tmp_path, tiny_file, fake_claff):
    csv_path, labels = fake_claff(tmp_path / "claff")
    result = train(tiny_file, tiny_file, tmp_path / "m",
                   TrainConfig(epochs=1, batch_size=4, max_length=32, calibrate=False, real_weight=1,
                               real_layer_weights={"core": 3}),
                   progress=False, real_csv=csv_path, real_labels=labels)
    real_train = 2 * len(TINY)
    real_core = 2 * sum(layer == "core" for _, layer in TINY)
    assert result.train_size == len(TINY) + real_train + 2 * real_core
    training = json.loads((result.output_dir / "training.json").read_text())
    assert training["real"]["train"] == real_train
    assert training["real"]["views_per_epoch"] == real_train + 2 * real_core
    assert training["real"]["layer_weights"] == {"core": 3}
    assert training["train"]["layers"]["core"] == sum(layer == "core" for _, layer in TINY) + 3 * real_core
    assert f"{real_train} sentences of the CL-Aff" in (result.output_dir / "README.md").read_text()
    assert "those labeled `core` 3× as often" in (result.output_dir / "README.md").read_text()


def test_flatten_is_dividing_the_logits_by_the_temperature():
    import numpy as np

    from disclosure_nlp.model.calibration import softmax
    from disclosure_nlp.model.training import flatten

    logits = np.array([[4.0, 1.0, -2.0, 0.5], [0.0, 0.0, 3.0, 1.0]])
    assert np.allclose(flatten(softmax(logits), 1.0), softmax(logits), atol=1e-6)
    assert np.allclose(flatten(softmax(logits), 2.5), softmax(logits / 2.5), atol=1e-6)
    hot = flatten(np.array([[1.0, 0.0, 0.0, 0.0]]), 2.0)  # a certain teacher stays certain, no NaN
    assert np.isfinite(hot).all() and hot[0, 0] > 0.999


def _distilled(tmp_path, name, rows, **teacher):
    from .conftest import write_jsonl

    data = write_jsonl(tmp_path / f"{name}.jsonl", [{"text": t, "layer": l} for t, l in rows])
    dev = write_jsonl(tmp_path / "dev.jsonl", [{"text": t, "layer": l} for t, l in TINY])
    result = train(data, dev, tmp_path / name,
                   TrainConfig(epochs=1, batch_size=4, max_length=32, learning_rate=1e-4, calibrate=False, seed=3, **teacher),
                   progress=False)
    return result, load_file(result.output_dir / "model.safetensors")


def test_with_all_the_weight_on_the_teacher_the_gold_labels_do_not_matter(tmp_path, tiny_model):
    relabeled = [(text, LAYERS[(LAYERS.index(layer) + 1) % 4]) for text, layer in TINY]
    teacher = {"teacher": str(tiny_model), "distill_weight": 1.0}
    _, gold = _distilled(tmp_path, "gold", TINY, **teacher)
    _, other = _distilled(tmp_path, "other", relabeled, **teacher)
    assert all((gold[k] == other[k]).all() for k in gold)
    # with half the weight on the gold labels, the same two label sets give different models
    _, half_gold = _distilled(tmp_path, "half-gold", TINY, teacher=str(tiny_model), distill_weight=0.5)
    _, half_other = _distilled(tmp_path, "half-other", relabeled, teacher=str(tiny_model), distill_weight=0.5)
    assert any((half_gold[k] != half_other[k]).any() for k in half_gold)


def test_a_teacher_with_no_weight_leaves_the_run_unchanged_and_is_recorded(tmp_path, tiny_model):
    _, plain = _distilled(tmp_path, "plain", TINY)
    result, zero = _distilled(tmp_path, "zero", TINY, teacher=str(tiny_model), distill_weight=0.0)
    assert all((plain[k] == zero[k]).all() for k in plain)  # loading the teacher moved no random draw
    training = json.loads((result.output_dir / "training.json").read_text())
    assert training["config"]["teacher"] == str(tiny_model) and training["config"]["distill_temperature"] == 2.0
    assert f"Distilled from the model `{tiny_model.name}`" in (result.output_dir / "README.md").read_text()


def test_a_wrong_teacher_is_reported_before_any_work(tmp_path, tiny_file):
    from typer.testing import CliRunner

    from disclosure_nlp.cli import app

    with pytest.raises(DisclosureError, match="not a model folder"):
        train(tiny_file, tiny_file, tmp_path / "m", TrainConfig(epochs=1, teacher=str(tmp_path / "nowhere")), progress=False)
    with pytest.raises(DisclosureError, match="between 0 and 1"):
        train(tiny_file, tiny_file, tmp_path / "m", TrainConfig(epochs=1, teacher=str(tmp_path), distill_weight=2.0), progress=False)
    result = CliRunner().invoke(app, ["train", "--train", str(tiny_file), "--dev", str(tiny_file), "-o", str(tmp_path / "m"),
                                      "--teacher", str(tmp_path / "nowhere")])
    assert result.exit_code != 0 and "not a model folder" in result.output, result.output
    assert not (tmp_path / "m").exists()
