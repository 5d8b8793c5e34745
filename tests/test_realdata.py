"""The project's CL-Aff labels join the public CSV by id, or fail naming the file and first bad id."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import pytest

from disclosure_nlp.errors import DataError
from disclosure_nlp.model.realdata import decode_claff, default_labels_path, load_real, read_claff, read_labels

SHARED_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "claff-offmychest" / "labeled_training_set.csv"
HEADER = ["sentenceid", "id", "full_text", "Information_disclosure", "Emotional_disclosure", "subreddit"]


def _csv(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _labels(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


ROWS = [
    ["11", "p1", "I moved here last spring.", "1", "0", "x"],
    ["12", "p1", "It was the loneliest year of my life<U+0092>s worst part.", "1", "1", "x"],
    ["13", "p2", "Nice pic!", "0", "0", "x"],
]


def test_join_gives_text_label_split_and_crowd_depth(tmp_path: Path) -> None:
    data = _csv(tmp_path / "c.csv", ROWS)
    labels = _labels(tmp_path / "l.jsonl", [
        {"sentenceid": "12", "post": "p1", "layer": "intermediate", "split": "train"},
        {"sentenceid": "13", "post": "p2", "layer": "none", "split": "test"},
    ])
    got = load_real(data, labels_path=labels)
    assert [(x.sentence_id, x.layer, x.split, x.crowd_depth) for x in got] == [("12", "intermediate", "train", 2), ("13", "none", "test", 0)]
    assert got[0].text == "It was the loneliest year of my life\u2019s worst part."
    assert [x.sentence_id for x in load_real(data, "test", labels_path=labels)] == ["13"]


def test_r_escapes_decode_cp1252_and_unicode() -> None:
    assert decode_claff("don<U+0092>t <U+00E9>t<U+00E9> <U+0001F600>") == "don\u2019t \u00e9t\u00e9 \U0001F600"


def test_missing_id_names_the_csv_and_the_first_missing_id(tmp_path: Path) -> None:
    data = _csv(tmp_path / "c.csv", ROWS)
    labels = _labels(tmp_path / "l.jsonl", [
        {"sentenceid": "13", "post": "p2", "layer": "none", "split": "test"},
        {"sentenceid": "99", "post": "p9", "layer": "core", "split": "dev"},
        {"sentenceid": "98", "post": "p9", "layer": "core", "split": "dev"},
    ])
    with pytest.raises(DataError) as err:
        load_real(data, labels_path=labels)
    assert "c.csv" in str(err.value) and "99" in str(err.value) and "98" not in str(err.value)


def test_post_mismatch_is_another_corpus_version(tmp_path: Path) -> None:
    data = _csv(tmp_path / "c.csv", ROWS)
    labels = _labels(tmp_path / "l.jsonl", [{"sentenceid": "11", "post": "p7", "layer": "surface", "split": "dev"}])
    with pytest.raises(DataError, match="11 belongs to post 'p1'"):
        load_real(data, labels_path=labels)


def test_wrong_columns_name_the_file(tmp_path: Path) -> None:
    data = _csv(tmp_path / "c.csv", [["1", "hello"]], header=["sentenceid", "text"])
    with pytest.raises(DataError) as err:
        list(read_claff(data))
    assert "c.csv" in str(err.value) and "full_text" in str(err.value)


def test_missing_csv_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        list(read_claff(tmp_path / "absent.csv"))


def test_bad_crowd_value_names_line_and_field(tmp_path: Path) -> None:
    data = _csv(tmp_path / "c.csv", [ROWS[0], ["12", "p1", "x", "2", "0", "x"]])
    with pytest.raises(DataError) as err:
        list(read_claff(data))
    assert "line 3" in str(err.value) and "Information_disclosure" in str(err.value)


@pytest.mark.parametrize(("record", "field"), [
    ({"sentenceid": "1", "post": "p", "layer": "deep", "split": "train"}, "layer"),
    ({"sentenceid": "1", "post": "p", "layer": "core", "split": "holdout"}, "split"),
    ({"sentenceid": "1", "layer": "core", "split": "train"}, "post"),
])
def test_bad_label_lines_name_line_and_field(tmp_path: Path, record: dict, field: str) -> None:
    path = _labels(tmp_path / "l.jsonl", [{"sentenceid": "0", "post": "p", "layer": "none", "split": "dev"}, record])
    with pytest.raises(DataError) as err:
        read_labels(path)
    assert "line 2" in str(err.value) and field in str(err.value)


def test_shipped_labels_split_by_post_and_hold_enough_rare_layers() -> None:
    labels = read_labels(default_labels_path())
    splits_of_post: dict[str, set[str]] = defaultdict(set)
    for label in labels:
        splits_of_post[label.post_id].add(label.split)
    assert all(len(s) == 1 for s in splits_of_post.values())
    assert len(labels) >= 1200
    assert sum(x.layer == "core" for x in labels) >= 150 and sum(x.layer == "surface" for x in labels) >= 150


@pytest.mark.skipif(not SHARED_CSV.is_file(), reason=f"the public CL-Aff CSV is not at {SHARED_CSV} (see README: real data)")
def test_every_shipped_label_joins_the_public_csv() -> None:
    joined = load_real(SHARED_CSV)
    assert len(joined) == len(read_labels(default_labels_path()))
    assert all(x.text.strip() for x in joined)
    assert not any("<U+" in x.text for x in joined)


def test_shipped_labels_follow_from_the_two_passes_and_the_post_hash(load_script) -> None:
    """Every label is the coders' agreement or the adjudicator's call, and every post sits in the
    split its id hashes to, so a later labeling round cannot move a sentence into real-dev or
    real-test (or out of them) by hand."""
    agreement, select = load_script("claff_agreement"), load_script("select_claff")
    passes = agreement.read_passes(default_labels_path().parent / "claff_passes.jsonl")
    labels = read_labels(default_labels_path())
    assert [(x.sentence_id, x.layer) for x in labels] == [(r["sentenceid"], agreement.final_layer(r)) for r in passes]
    assert all(x.split == select.split_of(x.post_id) for x in labels)


def test_model_records_name_the_shipped_labels_file_by_its_place_in_the_project(tmp_path):
    from disclosure_nlp.model.realdata import default_labels_path, labels_name

    assert labels_name(default_labels_path()) == "data/real/claff_labels.jsonl"
    other = tmp_path / "claff_labels.jsonl"  # same file name, another folder: named as given
    assert labels_name(other) == str(other)
