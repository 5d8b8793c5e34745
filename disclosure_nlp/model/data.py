"""Loading and validating labeled messages for training and evaluation.

Rows are checked one by one before they reach ``datasets`` so that every problem is reported
with the file, the line and the field it sits in; the validated rows then become a
``datasets.Dataset`` whose ``label`` column is a ``ClassLabel`` over the four layers, which is
what the trainer, the evaluator and the baseline all consume.

Accepted sources: JSON Lines (``.jsonl``/``.json``), CSV (``.csv``) and TSV (``.tsv``) with a
header, and a ``datasets`` dataset saved with ``save_to_disk`` (a ``DatasetDict`` directory
takes a split name: ``--split`` for ``evaluate``, ``--train-split``/``--dev-split`` for ``train``,
where the dev split may also come from the training ``DatasetDict``; see
:func:`training_sources`).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ..errors import DataError, excerpt
from ..layers import LAYERS, layer_id

TEXT_COL = "text"
LABEL_COL = "layer"
REGISTER_COL = "register"
TRAIN_SPLIT = "train"
DEV_SPLITS = ("validation", "dev")
"""Split names read as dev data from a saved ``DatasetDict``, in this order: ``validation`` is
the Hugging Face Hub's usual name, ``dev`` this project's."""


@dataclass(frozen=True)
class Columns:
    """Which input columns hold the text, the gold layer and (optionally) the register."""

    text: str = TEXT_COL
    label: str = LABEL_COL
    register: str = REGISTER_COL


@dataclass(frozen=True)
class Source:
    """Where labeled data comes from: a file, a saved ``Dataset``, or one split of a saved
    ``DatasetDict`` (``split`` is set only then), kept together so that training records and
    error messages name both."""

    path: Path
    split: str | None = None

    def __str__(self) -> str:
        return f"{self.path} (split '{self.split}')" if self.split is not None else str(self.path)


@dataclass(frozen=True)
class RawRow:
    """One input record and the 1-based line where it starts, for error messages."""

    line: int
    record: dict[str, Any]


def _decode_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield (line number, text) with a clear error for bytes that are not UTF-8."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as err:
                raise DataError(
                    f"not valid UTF-8 (byte {err.start}); save the file as UTF-8",
                    path=path,
                    line=number,
                ) from None
            yield number, text


def _iter_jsonl(path: Path) -> Iterator[RawRow]:
    for number, text in _decode_lines(path):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(f"not valid JSON ({err.msg} at column {err.colno})", path=path, line=number) from None
        except ValueError as err:  # an integer of over 4,300 digits
            raise DataError(f"not readable JSON ({str(err).split(';')[0][:100]})", path=path, line=number) from None
        if not isinstance(record, dict):
            raise DataError(
                f"expected a JSON object, got {type(record).__name__}", path=path, line=number
            )
        yield RawRow(number, record)


def _iter_delimited(path: Path, delimiter: str) -> Iterator[RawRow]:
    lines = [text for _, text in _decode_lines(path)]
    reader = csv.reader(io.StringIO("".join(lines), newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        return
    header = [name.strip() for name in header]
    start = reader.line_num + 1
    for row in reader:
        line = start
        start = reader.line_num + 1
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise DataError(
                f"has {len(row)} cells but the header has {len(header)}", path=path, line=line
            )
        yield RawRow(line, dict(zip(header, row)))


def iter_raw_rows(path: str | Path) -> Iterator[RawRow]:
    """Yield the records of a JSONL, CSV or TSV file, chosen by extension."""
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        return _iter_jsonl(file)
    if suffix == ".csv":
        return _iter_delimited(file, ",")
    if suffix == ".tsv":
        return _iter_delimited(file, "\t")
    raise DataError(f"unsupported file type '{suffix}'; use .jsonl, .csv or .tsv", path=file)


def validate_row(row: RawRow, path: str | Path, columns: Columns, *, require_label: bool = True) -> dict[str, Any]:
    """Check one record and return it as ``{"text", "label", "register"}``."""
    record = row.record
    if columns.text not in record:
        raise DataError("missing column", path=path, line=row.line, field=columns.text)
    text = record[columns.text]
    if not isinstance(text, str):
        raise DataError(
            f"expected text, got {'null' if text is None else type(text).__name__}",
            path=path,
            line=row.line,
            field=columns.text,
        )
    if not text.strip():
        raise DataError("empty text", path=path, line=row.line, field=columns.text)
    out: dict[str, Any] = {"text": text}
    if require_label:
        if columns.label not in record:
            raise DataError("missing column", path=path, line=row.line, field=columns.label)
        try:
            out["label"] = layer_id(record[columns.label])
        except ValueError:
            raise DataError(
                f"unknown layer {excerpt(record[columns.label], 20)}; expected one of {', '.join(LAYERS)}",
                path=path,
                line=row.line,
                field=columns.label,
            ) from None
    register = record.get(columns.register)
    out["register"] = "" if register is None else str(register)
    return out


def _features(with_label: bool):
    from datasets import ClassLabel, Features, Value

    spec = {"text": Value("string")}
    if with_label:
        spec["label"] = ClassLabel(names=list(LAYERS))
    spec["register"] = Value("string")
    return Features(spec)


def _from_disk(path: Path, split: str | None, split_option: str = "--split") -> Iterator[RawRow]:
    """Rows of a saved dataset; their 'line' is the 1-based row number.

    ``split_option`` is the option that names the split where this path came from, so that the
    error for a missing split tells the user what to type.
    """
    from datasets import DatasetDict, load_from_disk

    loaded = load_from_disk(str(path))
    if isinstance(loaded, DatasetDict):
        if split is None:
            raise DataError(
                f"is a DatasetDict with splits {', '.join(loaded)}; choose one with {split_option}", path=path
            )
        if split not in loaded:
            raise DataError(f"has no split '{split}' (has {', '.join(loaded)})", path=path)
        loaded = loaded[split]
    elif split is not None:
        raise DataError(f"is a saved Dataset, not a DatasetDict: it has no split '{split}'", path=path)
    return (RawRow(index + 1, record) for index, record in enumerate(loaded))


def load_labeled(
    path: str | Path,
    columns: Columns = Columns(),
    *,
    split: str | None = None,
    require_label: bool = True,
    split_option: str = "--split",
):
    """Load and validate a labeled file into a ``datasets.Dataset``.

    Raises :class:`DataError` naming the file, line and field of the first bad row, and for a
    file with no rows at all, since training or scoring on nothing is always a mistake.
    """
    from datasets import Dataset

    file = Path(path)
    if not file.exists():
        raise DataError("no such file or directory", path=file)
    if file.is_dir():
        if not (file / "dataset_info.json").exists() and not (file / "dataset_dict.json").exists():
            raise DataError("is a directory, not a data file or a saved dataset", path=file)
        rows = _from_disk(file, split, split_option)
    else:
        if split is not None:
            raise DataError(f"is a data file, not a saved DatasetDict: it has no split '{split}'", path=file)
        rows = iter_raw_rows(file)
    records = [validate_row(row, file, columns, require_label=require_label) for row in rows]
    if not records:
        raise DataError("contains no rows", path=file)
    table = {key: [record[key] for record in records] for key in records[0]}
    return Dataset.from_dict(table, features=_features(require_label))


def saved_splits(path: str | Path) -> list[str] | None:
    """The split names of a ``DatasetDict`` saved with ``save_to_disk``; ``None`` for anything
    else (a file, a saved single ``Dataset``, a missing path), for which a split name means
    nothing."""
    directory = Path(path)
    if not (directory / "dataset_dict.json").is_file():
        return None
    from datasets import DatasetDict, load_from_disk

    try:
        loaded = load_from_disk(str(directory))
    except (OSError, ValueError) as err:
        raise DataError(f"cannot be read as a saved DatasetDict ({err})", path=directory) from None
    return list(loaded) if isinstance(loaded, DatasetDict) else None


def choose_split(path: str | Path, split: str | None, *, defaults: tuple[str, ...], option: str) -> str | None:
    """The split of ``path`` to read: ``split`` if given, else the first of ``defaults`` that
    the saved ``DatasetDict`` has; ``None`` for a source without splits.

    ``option`` is the name the user sets the split with, so that every error (naming the path
    and the splits it has) also says how to fix it.
    """
    splits = saved_splits(path)
    if splits is None:
        if split is not None:
            raise DataError(f"{option} '{split}' given, but this is not a saved DatasetDict (it has no splits)", path=path)
        return None
    if split is not None:
        if split not in splits:
            raise DataError(f"has no split '{split}' (its splits: {', '.join(splits)}); choose one with {option}", path=path)
        return split
    found = next((name for name in defaults if name in splits), None)
    if found is None:
        wanted = " or ".join(f"'{name}'" for name in defaults)
        raise DataError(
            f"is a DatasetDict with no {wanted} split (its splits: {', '.join(splits)}); choose one with {option}",
            path=path,
        )
    return found


def training_sources(
    train: str | Path,
    dev: str | Path | None = None,
    *,
    train_split: str | None = None,
    dev_split: str | None = None,
) -> tuple[Source, Source]:
    """The training and dev data of a training run, with their splits resolved.

    A saved ``DatasetDict`` usually holds every split, so it need not be named twice: the
    training split defaults to ``train``, the dev split to ``validation`` or ``dev``, and
    without ``dev`` the dev split is taken from ``train``'s ``DatasetDict``. Files and saved
    single ``Dataset`` directories take no split. Errors name the path and its splits.
    """
    train_path = Path(train)
    if not train_path.exists():
        raise DataError("no such file or directory", path=train_path)
    chosen_train = choose_split(train_path, train_split, defaults=(TRAIN_SPLIT,), option="--train-split")
    if dev is None:
        splits = saved_splits(train_path)
        if splits is None:
            raise DataError(
                "no dev data: give --dev, or a saved DatasetDict with a 'validation' or 'dev' split as --train",
                path=train_path,
            )
        if dev_split is None and not any(name in splits for name in DEV_SPLITS):
            raise DataError(
                f"no dev data: this DatasetDict has no 'validation' or 'dev' split (its splits: {', '.join(splits)}); "
                "give --dev, or name the dev split with --dev-split",
                path=train_path,
            )
    dev_path = train_path if dev is None else Path(dev)
    if not dev_path.exists():
        raise DataError("no such file or directory", path=dev_path)
    chosen_dev = choose_split(dev_path, dev_split, defaults=DEV_SPLITS, option="--dev-split")
    return Source(train_path, chosen_train), Source(dev_path, chosen_dev)


def normalize_text(text: str) -> str:
    """Lowercased letters and digits only, for duplicate and near-duplicate checks."""
    kept = [ch.lower() if ch.isalnum() else " " for ch in text]
    return " ".join("".join(kept).split())
