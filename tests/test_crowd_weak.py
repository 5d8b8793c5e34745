"""CL-Aff crowd labels as weak supervision: which sentences may train, and with what target.

Only unlabeled sentences of real-train posts may join training (real-dev and real-test must stay
unseen, and the external crowd check scores the posts outside real-train), and their target is
the distribution of the project's layers among real-train sentences with the same crowd labels.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from disclosure_nlp.errors import DisclosureError
from disclosure_nlp.model.realdata import crowd_weak_examples, read_labels

HEADER = ["sentenceid", "id", "full_text", "Information_disclosure", "Emotional_disclosure"]


def _write(tmp_path: Path) -> tuple[Path, Path]:
    rows = [
        ["1", "pA", "I lost my job last week.", "1", "0"],        # labeled, train, core below
        ["2", "pA", "It was a shock.", "1", "0"],                 # labeled, train, none below
        ["3", "pA", "Anyway, how are you all?", "1", "0"],        # unlabeled, train post: weak
        ["4", "pA", "Thanks for reading.", "0", "0"],             # unlabeled, train post, pair unseen in train
        ["5", "pB", "My dad is sick.", "1", "1"],                 # labeled, dev
        ["6", "pB", "I cry every night.", "1", "1"],              # unlabeled, dev post: never trains
        ["7", "pC", "We moved to Leeds.", "1", "0"],              # unlabeled, post without labels: never trains
        ["8", "pA", "   ", "1", "0"],                             # empty text: skipped
    ]
    data = tmp_path / "c.csv"
    with data.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps(r) + "\n" for r in [
        {"sentenceid": "1", "post": "pA", "layer": "core", "split": "train"},
        {"sentenceid": "2", "post": "pA", "layer": "none", "split": "train"},
        {"sentenceid": "5", "post": "pB", "layer": "intermediate", "split": "dev"},
    ]))
    return data, labels


def test_only_unlabeled_sentences_of_train_posts_and_their_soft_targets(tmp_path: Path) -> None:
    data, labels = _write(tmp_path)
    weak, table = crowd_weak_examples(data, read_labels(labels))
    assert [x.sentence_id for x in weak] == ["3", "4"]
    # "1,0" seen twice in real-train (core, none), plus one pseudo-count per layer: (1+1)/6 …
    assert table == {"1,0": pytest.approx([2 / 6, 1 / 6, 1 / 6, 2 / 6])}
    assert weak[0].target == pytest.approx((2 / 6, 1 / 6, 1 / 6, 2 / 6))
    assert weak[1].target == pytest.approx((0.25, 0.25, 0.25, 0.25))  # a crowd pair real-train never shows
    assert sum(weak[0].target) == pytest.approx(1.0)


def test_crowd_weight_needs_the_csv(tmp_path: Path) -> None:
    from disclosure_nlp.model.training import TrainConfig, train

    data = tmp_path / "t.jsonl"
    data.write_text(json.dumps({"text": "hi", "layer": "none"}) + "\n")
    with pytest.raises(DisclosureError, match="crowd_weight needs real_csv"):
        train(data, data, tmp_path / "m", TrainConfig(crowd_weight=0.5), progress=False)
    assert not (tmp_path / "m").exists()


def test_training_with_crowd_weight_records_the_weak_rows(tmp_path: Path) -> None:
    from disclosure_nlp.model.training import TrainConfig, train

    data, labels = _write(tmp_path)
    team = tmp_path / "team.jsonl"
    team.write_text("".join(json.dumps({"text": t, "layer": l}) + "\n" for t, l in [
        ("The meeting is at 3.", "none"), ("I like jazz.", "surface"),
        ("I have been anxious lately.", "intermediate"), ("I was abused as a child.", "core")]))
    result = train(team, team, tmp_path / "m", TrainConfig(epochs=1, batch_size=4, max_length=32, crowd_weight=0.5, calibrate=False),
                   progress=False, real_csv=data, real_labels=labels)
    record = json.loads((tmp_path / "m" / "training.json").read_text())
    assert record["real"]["crowd_weak"] == 2 and record["real"]["crowd_weight"] == 0.5
    # 4 team rows + 1 real-train row seen twice (real_weight 2); the weak rows have no layer
    assert sum(record["train"]["layers"].values()) == 4 + 2 * 2
    assert result.train_size == 4 + 2 * 2 + 2
    assert "Weak supervision: 2 unlabeled sentences" in (tmp_path / "m" / "README.md").read_text()


def test_crowd_weight_with_every_train_sentence_labeled_is_refused_before_training(tmp_path: Path) -> None:
    """The shipped labels cover every sentence of real-train posts: a run asking for crowd weak
    supervision would silently train without it, so it stops first, naming the labels file."""
    from disclosure_nlp.model.training import TrainConfig, train

    data, labels = _write(tmp_path)
    full = tmp_path / "full.jsonl"
    full.write_text(labels.read_text() + "".join(json.dumps({"sentenceid": sid, "post": "pA", "layer": "none", "split": "train"}) + "\n"
                                                 for sid in ("3", "4")))
    team = tmp_path / "team.jsonl"
    team.write_text(json.dumps({"text": "The meeting is at 3.", "layer": "none"}) + "\n")
    with pytest.raises(DisclosureError, match="full.jsonl: labels every sentence"):
        train(team, team, tmp_path / "m", TrainConfig(epochs=1, crowd_weight=0.5), progress=False, real_csv=data, real_labels=full)
    assert not (tmp_path / "m").exists()
