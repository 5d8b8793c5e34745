"""Real, human-written labeled messages, kept in the project by id only.

The project may not commit third-party text (licences differ, and CL-Aff's sentences are
Reddit users' words), so ``data/real/claff_labels.jsonl`` holds sentence ids, Reddit post ids,
the project's own codebook labels and the split, and this module joins them at run time with
the public CL-Aff OffMyChest CSV at a path the user gives. Every join problem is reported
with the file and the first bad id, before anything is written.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from ..errors import DataError
from ..layers import LAYERS

CLAFF_COLUMNS = ("sentenceid", "id", "full_text", "Information_disclosure", "Emotional_disclosure")
"""Columns of ``labeled_training_set.csv`` the project reads; the ``SharedTask_*`` columns of
the upstream test release are unreliable and are never used."""

REAL_SPLITS = ("train", "dev", "test")

_ESCAPE = re.compile(r"<U\+([0-9A-Fa-f]{4,8})>")


def decode_claff(text: str) -> str:
    """Undo the R-style ``<U+0092>`` escapes of the CL-Aff release.

    Code points 0x80-0x9F in it are cp1252 bytes that were mis-declared as Latin-1 (curly
    quotes, dashes), so they are read as cp1252; everything else is the code point itself.
    """

    def repl(match: re.Match[str]) -> str:
        point = int(match.group(1), 16)
        if 0x80 <= point <= 0x9F:
            return bytes([point]).decode("cp1252", errors="replace")
        try:
            return chr(point)
        except ValueError:
            return "\ufffd"

    return _ESCAPE.sub(repl, text)


@dataclass(frozen=True)
class ClaffSentence:
    """One CL-Aff sentence with its crowd labels (0/1 each)."""

    sentence_id: str
    post_id: str
    text: str
    information: int
    emotional: int

    @property
    def crowd_depth(self) -> int:
        """The graded crowd label used in the literature: information + emotion, 0-2."""
        return self.information + self.emotional


def read_claff(path: str | Path) -> Iterator[ClaffSentence]:
    """Stream the CL-Aff CSV, checking the columns the project needs."""
    path = Path(path)
    if not path.is_file():
        raise DataError("no such file; give the CL-Aff labeled_training_set.csv (see README)", path=path)
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        try:
            yield from _claff_rows(reader, path)
        except UnicodeDecodeError as err:
            raise DataError(f"not valid UTF-8 (byte {err.start + 1} of a line after line {reader.line_num})",
                            path=path, line=reader.line_num + 1) from None
        except csv.Error as err:
            raise DataError(f"not valid CSV ({err})", path=path, line=reader.line_num) from None


def _claff_rows(reader: csv.DictReader, path: Path) -> Iterator[ClaffSentence]:
    missing = [c for c in CLAFF_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise DataError(f"missing column(s) {', '.join(missing)}; is this the CL-Aff labeled_training_set.csv?", path=path, line=1)
    for row in reader:
        line = reader.line_num
        values = {}
        for field in ("Information_disclosure", "Emotional_disclosure"):
            raw = (row.get(field) or "").strip()
            if raw not in ("0", "1"):
                raise DataError(f"expected 0 or 1, got {raw!r}", path=path, line=line, field=field)
            values[field] = int(raw)
        sid = (row.get("sentenceid") or "").strip()
        if not sid:
            raise DataError("empty sentence id", path=path, line=line, field="sentenceid")
        yield ClaffSentence(
            sentence_id=sid,
            post_id=(row.get("id") or "").strip(),
            text=decode_claff(row.get("full_text") or ""),
            information=values["Information_disclosure"],
            emotional=values["Emotional_disclosure"],
        )


@dataclass(frozen=True)
class RealLabel:
    """One of the project's own labels of a real sentence, by id."""

    sentence_id: str
    post_id: str
    layer: str
    split: str


def read_labels(path: str | Path) -> list[RealLabel]:
    """Read ``claff_labels.jsonl`` (ids, layers, splits), validating every line."""
    path = Path(path)
    if not path.is_file():
        raise DataError("no such labels file", path=path)
    from .data import _iter_jsonl  # one record per line, decoded and checked as every JSONL input

    labels: list[RealLabel] = []
    seen: set[str] = set()
    for row in _iter_jsonl(path):
        number, record = row.line, row.record
        for field in ("sentenceid", "post", "layer", "split"):
            if not isinstance(record.get(field), str) or not record[field]:
                raise DataError("missing or not a string", path=path, line=number, field=field)
        if record["layer"] not in LAYERS:
            raise DataError(f"unknown layer {record['layer']!r}; expected one of {', '.join(LAYERS)}", path=path, line=number, field="layer")
        if record["split"] not in REAL_SPLITS:
            raise DataError(f"unknown split {record['split']!r}; expected one of {', '.join(REAL_SPLITS)}", path=path, line=number, field="split")
        if record["sentenceid"] in seen:
            raise DataError(f"sentence id {record['sentenceid']} appears twice", path=path, line=number, field="sentenceid")
        seen.add(record["sentenceid"])
        labels.append(RealLabel(record["sentenceid"], record["post"], record["layer"], record["split"]))
    return labels


@dataclass(frozen=True)
class RealExample:
    """A real sentence joined with the project's label: what training and evaluation read."""

    sentence_id: str
    post_id: str
    text: str
    layer: str
    split: str
    crowd_depth: int


def join_labels(labels: Iterable[RealLabel], claff_csv: str | Path, labels_path: str | Path = "claff_labels.jsonl") -> list[RealExample]:
    """Join the project's labels with the CL-Aff CSV; every label must find its sentence.

    A label whose id is absent, or whose post id disagrees with the CSV's, means the CSV is
    another version of the corpus: that is an error naming the first such id, not a silent
    drop, because a smaller evaluation set would quietly change every figure.
    """
    labels = list(labels)
    wanted = {label.sentence_id: label for label in labels}
    found: dict[str, ClaffSentence] = {}
    for sentence in read_claff(claff_csv):
        if sentence.sentence_id in wanted:
            found[sentence.sentence_id] = sentence
    for label in labels:
        sentence = found.get(label.sentence_id)
        if sentence is None:
            raise DataError(f"sentence id {label.sentence_id} from {labels_path} is not in this CSV; is it the CL-Aff training set?", path=claff_csv)
        if sentence.post_id != label.post_id:
            raise DataError(
                f"sentence id {label.sentence_id} belongs to post {sentence.post_id!r} here, {label.post_id!r} in {labels_path}; another version of the corpus?",
                path=claff_csv,
            )
    return [
        RealExample(l.sentence_id, l.post_id, found[l.sentence_id].text, l.layer, l.split, found[l.sentence_id].crowd_depth)
        for l in labels
    ]


def default_labels_path() -> Path:
    """The labels file shipped with the project (ids and labels only, no text)."""
    return Path(__file__).resolve().parents[2] / "data" / "real" / "claff_labels.jsonl"


def labels_name(path: str | Path) -> str:
    """How model records name a labels file: as the user gave it, the shipped one by its place in
    the project, since records ship inside model folders and this machine's path means nothing elsewhere."""
    return "data/real/claff_labels.jsonl" if Path(path).resolve() == default_labels_path() else str(path)


def load_real(claff_csv: str | Path, split: str | None = None, labels_path: str | Path | None = None) -> list[RealExample]:
    """The project's real labeled sentences, optionally one split, with their text."""
    labels_path = Path(labels_path) if labels_path is not None else default_labels_path()
    if split is not None and split not in REAL_SPLITS:
        raise DataError(f"unknown split {split!r}; expected one of {', '.join(REAL_SPLITS)}")
    labels = read_labels(labels_path)
    joined = join_labels(labels, claff_csv, labels_path)
    return [x for x in joined if split is None or x.split == split]


@dataclass(frozen=True)
class WeakExample:
    """A real sentence the project has not labeled, with a soft target taken from its crowd labels."""

    sentence_id: str
    text: str
    target: tuple[float, ...]


def crowd_weak_examples(claff_csv: str | Path, labels: Sequence[RealLabel]) -> tuple[list[WeakExample], dict[str, list[float]]]:
    """Weak supervision from the CL-Aff crowd: every unlabeled sentence of a real-train post, with
    the distribution of the project's layers among real-train sentences of the same crowd labels.

    Why only real-train posts: the external check scores the crowd labels of posts outside
    real-train, and real-dev and real-test must stay unseen, so no other sentence may train.
    Why a distribution and not a layer: the crowd's two yes/no labels are a different construct
    (its "emotional disclosure" counts empathy for others), so they say how likely each layer is,
    not which one it is. Returns the examples and the table (crowd pair "information,emotional"
    to the probability of each layer), which the training record keeps.
    """
    train = [label for label in labels if label.split == "train"]
    if not train:
        raise DataError("no real-train labels to estimate the crowd's layer distributions from")
    labeled = {label.sentence_id for label in labels}
    posts = {label.post_id for label in train}
    by_id = {label.sentence_id: label for label in train}
    counts: dict[str, list[float]] = {}
    weak: list[tuple[str, str, str]] = []
    for sentence in read_claff(claff_csv):
        pair = f"{sentence.information},{sentence.emotional}"
        if sentence.sentence_id in by_id:
            row = counts.setdefault(pair, [0.0] * len(LAYERS))
            row[LAYERS.index(by_id[sentence.sentence_id].layer)] += 1
        elif sentence.post_id in posts and sentence.sentence_id not in labeled and sentence.text.strip():
            weak.append((sentence.sentence_id, sentence.text, pair))
    # One pseudo-count per layer: a crowd pair seen rarely in real-train keeps every layer possible.
    table = {pair: [(c + 1.0) / (sum(row) + len(LAYERS)) for c in row] for pair, row in counts.items()}
    uniform = [1.0 / len(LAYERS)] * len(LAYERS)
    return [WeakExample(sid, text, tuple(table.get(pair, uniform))) for sid, text, pair in weak], table
