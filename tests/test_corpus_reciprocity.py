"""Reciprocity across a corpus: library, command line and a pinned slice of ESConv (issue 18)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from disclosure_nlp.cli import app
from disclosure_nlp.analysis.corpus import Trend, analyze_corpus, analyze_labeled, bootstrap_statistic, deepening
from disclosure_nlp.errors import DataError

from .fakes import HashClassifier

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data" / "conversations" / "samples.jsonl"
SHARED_DATA = Path(os.environ.get("DISCLOSURE_SHARED_DATA", ROOT.parent / "shared" / "data"))
runner = CliRunner()


def _gold_rows() -> list[dict]:
    """samples.jsonl with its gold layers as a ``layer`` column (no depth: it falls back to the layer id)."""
    rows = [json.loads(line) for line in SAMPLES.open(encoding="utf-8")]
    return [{**{k: v for k, v in r.items() if k != "meta"}, "layer": r["meta"]["gold_layer"]} for r in rows]


@pytest.fixture
def labeled_samples(tmp_path: Path) -> Path:
    path = tmp_path / "labeled.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _gold_rows()), encoding="utf-8")
    return path


def test_trend_hand_values_and_pooling():
    t = Trend.of([0, 1, 2, 3], [0, 1, 1, 2])
    assert (t.sxx, t.sxy, t.slope) == (pytest.approx(5.0), pytest.approx(3.0), pytest.approx(0.6))
    flat = Trend.of([0, 1, 2], [1, 1, 1])
    figures = deepening([t, flat], resamples=0, rng=np.random.default_rng(0))
    # pooled within-conversation slope: (3 + 0) / (5 + 2); mean of slopes: (0.6 + 0) / 2
    assert figures["pooled_slope"]["value"] == pytest.approx(3 / 7, abs=1e-4)
    assert figures["mean_conversation_slope"]["value"] == pytest.approx(0.3)
    assert Trend.of([4], [2]).slope is None


def test_bootstrap_is_seeded_and_its_interval_holds_the_estimate():
    values = np.random.default_rng(0).uniform(0, 1, 200)
    mean = lambda m: m.mean(axis=-1)  # noqa: E731
    a = bootstrap_statistic(values, mean, 500, np.random.default_rng(1))
    b = bootstrap_statistic(values, mean, 500, np.random.default_rng(1))
    assert a == b and a.low < a.value < a.high and a.value == pytest.approx(values.mean())
    assert bootstrap_statistic(np.array([]), mean, 10, np.random.default_rng(0)).reason


def test_corpus_figures_on_the_samples_with_gold_labels(labeled_samples):
    result = analyze_corpus([labeled_samples], seed=3, surrogates=100, bootstrap=300)
    again = analyze_corpus([labeled_samples], seed=3, surrogates=100, bootstrap=300)
    assert result.to_dict() == again.to_dict()
    data = json.loads(json.dumps(result.to_dict()))
    assert result.labels == "given" and result.n_conversations == 24 and result.n_messages == 243
    # The per-conversation figures are the unchanged ones of analyze_conversation.
    from disclosure_nlp.analysis.reciprocity import analyze_conversation

    rows = _gold_rows()
    first_id = rows[0]["conversation_id"]
    first = analyze_conversation([r for r in rows if r["conversation_id"] == first_id], permutations=0)
    assert data["conversations"][0]["reciprocity_index"] == round(first.reciprocity_index, 4)
    # The first conversation has no surrogate partner yet; later ones do.
    assert data["conversations"][0]["baselines"]["surrogate_partner"]["reciprocity_index"]["draws"] == 0
    assert data["conversations"][5]["baselines"]["surrogate_partner"]["reciprocity_index"]["draws"] == 100
    ri = data["reciprocity_index"]
    assert ri["n"] + ri["undefined"] == 24
    low, high = ri["mean"]["ci95"]
    assert low <= ri["mean"]["value"] <= high
    assert set(data["coordination"]["pooled"]) == {"surface", "intermediate", "core"}
    assert 0 <= data["above_chance"]["reciprocity_index_vs_surrogate"]["share"] <= 1


def test_a_different_seed_changes_baselines_not_observed_figures(labeled_samples):
    a = analyze_corpus([labeled_samples], seed=1, surrogates=50, bootstrap=50).to_dict()
    b = analyze_corpus([labeled_samples], seed=2, surrogates=50, bootstrap=50).to_dict()
    assert [c["reciprocity_index"] for c in a["conversations"]] == [c["reciprocity_index"] for c in b["conversations"]]
    assert a["above_chance"] != b["above_chance"] or a["reciprocity_index"]["mean"] != b["reciprocity_index"]["mean"]


def test_unlabeled_input_is_labeled_by_the_classifier():
    fake = HashClassifier()
    result = analyze_corpus([SAMPLES], classifier=fake, surrogates=20, bootstrap=20)
    assert result.labels == "model" and result.n_messages == 243 and len(fake.texts) == 243


def test_a_bad_label_names_file_line_and_field(tmp_path):
    rows = _gold_rows()[:4]
    rows[2]["layer"] = "deepest"
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(DataError) as err:
        analyze_corpus([path], surrogates=5, bootstrap=0)
    assert err.value.line == 3 and err.value.field == "layer" and str(path) in str(err.value)
    rows[2]["layer"], rows[2]["depth"] = "core", "deep"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(DataError) as err:
        analyze_corpus([path], surrogates=5, bootstrap=0)
    assert err.value.line == 3 and err.value.field == "depth"


def test_cli_with_labels_writes_json_and_plots_and_refuses_to_overwrite(labeled_samples, tmp_path):
    out, plots = tmp_path / "corpus.json", tmp_path / "plots"
    args = ["reciprocity", str(labeled_samples), "-o", str(out), "--plots", str(plots), "--seed", "4",
            "--surrogates", "50", "--bootstrap", "100"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "24 conversations, 243 messages (labels: given)" in result.output
    assert "coordination ≥core" in result.output and "deepening" in result.output
    assert json.loads(out.read_text())["settings"]["seed"] == 4
    assert sorted(p.name for p in plots.iterdir()) == ["depth_by_position.png", "reciprocity_vs_surrogate.png"]
    assert (plots / "depth_by_position.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "--force" in again.output
    out.unlink()
    again = runner.invoke(app, args)  # the plots exist: refused before any work, -o not written
    assert again.exit_code == 2 and not out.exists()
    assert runner.invoke(app, args + ["--force"]).exit_code == 0


def test_cli_without_labels_labels_with_the_model(monkeypatch, tmp_path):
    from disclosure_nlp.model.classifier import DisclosureClassifier

    monkeypatch.setattr(DisclosureClassifier, "load", classmethod(lambda cls, *a, **k: HashClassifier()))
    result = runner.invoke(app, ["reciprocity", str(SAMPLES), "--surrogates", "20", "--bootstrap", "20"])
    assert result.exit_code == 0, result.output
    assert "(labels: model)" in result.output


def test_cli_errors_are_one_line(tmp_path):
    result = runner.invoke(app, ["reciprocity", str(tmp_path / "missing.jsonl")])
    assert result.exit_code == 2 and result.output.startswith("error:") and result.output.count("\n") == 1


# --------------------------------------------------------------------------- ESConv slice

ESCONV = SHARED_DATA / "esconv" / "testWithStrategy_short.tsv"


@pytest.mark.skipif(not ESCONV.exists(), reason="ESConv is not in ../shared/data (CC BY-NC: read at run time, never committed)")
def test_esconv_slice_with_fixed_labels_pins_the_numbers(load_script):
    module = load_script("eval_reciprocity")
    conversations = module.read_esconv(ESCONV)
    assert len(conversations) == 210
    assert sum(len(c.turns) for c in conversations) == 6004
    assert sum(t.strategy == "Self-disclosure" for c in conversations for t in c.turns) == 293
    # Fixed labels, no model: a first-person-pronoun count (0..3) as the layer.
    labels = module.pronoun_labels
    figures = module.evaluate(conversations[:30], labels, seed=0, surrogates=100, bootstrap=200)
    pinned = {k: figures[k] for k in ("n_supporter_turns", "n_self_disclosure")}
    assert pinned == {"n_supporter_turns": 403, "n_self_disclosure": 39}
    auc = figures["separation"]["turn_depth"]
    assert auc["auc"] == pytest.approx(PINNED_AUC, abs=1e-4)
    assert figures["separation"]["depth_gap"]["auc"] == pytest.approx(0.7501, abs=1e-4)
    assert figures["separation"]["rlsm"]["auc"] == pytest.approx(0.5333, abs=1e-4)
    corpus = figures["corpus"]
    assert corpus["n_conversations"] == 30
    assert corpus["reciprocity_index"]["mean"]["value"] == pytest.approx(PINNED_RI_MEAN, abs=1e-4)


PINNED_AUC = 0.8115
PINNED_RI_MEAN = 0.3293


def test_the_streamed_json_is_the_documents_json(labeled_samples, tmp_path):
    from disclosure_nlp.analysis.corpus import write_corpus_json

    result = analyze_corpus([labeled_samples], seed=1, surrogates=20, bootstrap=20)
    write_corpus_json(result, tmp_path / "corpus.json")
    expected = json.dumps(result.to_dict(), ensure_ascii=False, indent=2, allow_nan=False) + "\n"
    assert (tmp_path / "corpus.json").read_text(encoding="utf-8") == expected
    empty = analyze_labeled([], surrogates=5, bootstrap=5)
    write_corpus_json(empty, tmp_path / "empty.json")
    assert json.loads((tmp_path / "empty.json").read_text())["conversations"] == []
    assert empty.reciprocity_index["mean"]["value"] is None


def test_memory_kept_per_conversation_is_a_fixed_row_of_numbers(labeled_samples):
    result = analyze_corpus([labeled_samples], surrogates=10, bootstrap=10, keep_conversations=False)
    assert result.points.shape == (24, 3) and list(result.iter_conversations()) == []


def test_pooled_coordination_has_a_bootstrap_interval_around_it(labeled_samples):
    pooled = analyze_corpus([labeled_samples], seed=0, surrogates=10, bootstrap=300).coordination["pooled"]
    for name, figures in pooled.items():
        low, high = figures["ci95"]
        assert low <= figures["coordination"] <= high, name


def test_labeling_on_the_fly_leaves_non_english_messages_out_as_annotate_does(tmp_path):
    rows = _gold_rows()[:12]
    for row in rows:
        row.pop("layer", None)
        row.pop("depth", None)
    rows[3]["text"] = "No le he contado a nadie que perdí mi trabajo y que tengo mucho miedo del futuro"
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    fake = HashClassifier()
    result = analyze_corpus([path], classifier=fake, surrogates=10, bootstrap=10)
    assert result.n_unlabeled_messages == 1 and len(fake.texts) == 11
    assert rows[3]["text"] not in fake.texts
