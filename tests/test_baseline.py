"""The TF-IDF baseline: the fast C search gives what a plain grid search gives."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from disclosure_nlp.model.baseline import C_GRID, TfidfBaseline, _features
from disclosure_nlp.layers import LAYERS

ROOT = Path(__file__).resolve().parents[1]


def sample(path: Path, per_layer: int, skip: int = 0) -> tuple[list[str], list[int]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    texts, labels = [], []
    for index, layer in enumerate(LAYERS):
        chosen = [r["text"] for r in rows if r["layer"] == layer][skip: skip + per_layer]
        texts += chosen
        labels += [index] * len(chosen)
    return texts, labels


def test_fast_search_scores_like_a_grid_search_on_held_out_text() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import Pipeline

    texts, labels = sample(ROOT / "data" / "train.jsonl", 120)
    held_texts, held_labels = sample(ROOT / "data" / "dev.jsonl", 60)
    fast = TfidfBaseline.fit(texts, labels)
    assert fast.c in C_GRID
    grid = GridSearchCV(Pipeline([("tfidf", _features()), ("lr", LogisticRegression(max_iter=3000))]),
                        {"lr__C": list(C_GRID)}, cv=StratifiedKFold(3, shuffle=True, random_state=0),
                        scoring="f1_macro").fit(texts, labels)
    ours = f1_score(held_labels, fast.predict_proba(held_texts).argmax(1), average="macro")
    theirs = f1_score(held_labels, grid.predict(held_texts), average="macro")
    assert abs(ours - theirs) <= 0.02, (ours, theirs)


def test_probabilities_cover_all_four_layers_even_when_one_is_missing() -> None:
    texts, labels = sample(ROOT / "data" / "train.jsonl", 20)
    kept = [(t, l) for t, l in zip(texts, labels) if l != 3]
    model = TfidfBaseline.fit([t for t, _ in kept], [l for _, l in kept])
    probabilities = model.predict_proba(["I lost my job today.", "hi"])
    assert probabilities.shape == (2, 4)
    assert np.allclose(probabilities.sum(axis=1), 1.0) and np.all(probabilities[:, 3] == 0)


def test_too_few_examples_for_cross_validation_fit_with_the_default_c() -> None:
    model = TfidfBaseline.fit(["hello there", "hello you", "hello me"], [0, 1, 1])
    assert model.c == pytest.approx(1.0)
