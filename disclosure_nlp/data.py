"""Loading and validating labeled messages for training and evaluation.

Rows are checked one by one before they reach ``datasets`` so that every problem is reported
with the file, the line and the field it sits in; the validated rows then become a
``datasets.Dataset`` whose ``label`` column is a ``ClassLabel`` over the four layers, which is
what the trainer, the evaluator and the baseline all consume.

Accepted sources: JSON Lines (``.jsonl``/``.json``), CSV (``.csv``) and TSV (``.tsv``) with a
header, and a ``datasets`` dataset saved with ``save_to_disk`` (a ``DatasetDict`` directory
takes ``--split``).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from .errors import DataError, excerpt
from .layers import LAYERS, layer_id

TEXT_COL = "text"
LABEL_COL = "layer"
REGISTER_COL = "register"


@dataclass(frozen=True)
class Columns:
    """Which input columns hold the text, the gold layer and (optionally) the register."""

    text: str = TEXT_COL
    label: str = LABEL_COL
    register: str = REGISTER_COL


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


def _from_disk(path: Path, split: str | None) -> Iterator[RawRow]:
    """Rows of a saved dataset; their 'line' is the 1-based row number."""
    from datasets import DatasetDict, load_from_disk

    loaded = load_from_disk(str(path))
    if isinstance(loaded, DatasetDict):
        if split is None:
            raise DataError(
                f"is a DatasetDict with splits {', '.join(loaded)}; choose one with --split", path=path
            )
        if split not in loaded:
            raise DataError(f"has no split '{split}' (has {', '.join(loaded)})", path=path)
        loaded = loaded[split]
    return (RawRow(index + 1, record) for index, record in enumerate(loaded))


def load_labeled(
    path: str | Path,
    columns: Columns = Columns(),
    *,
    split: str | None = None,
    require_label: bool = True,
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
        rows = _from_disk(file, split)
    else:
        rows = iter_raw_rows(file)
    records = [validate_row(row, file, columns, require_label=require_label) for row in rows]
    if not records:
        raise DataError("contains no rows", path=file)
    table = {key: [record[key] for record in records] for key in records[0]}
    return Dataset.from_dict(table, features=_features(require_label))


def normalize_text(text: str) -> str:
    """Lowercased letters and digits only, for duplicate and near-duplicate checks."""
    kept = [ch.lower() if ch.isalnum() else " " for ch in text]
    return " ".join("".join(kept).split())
