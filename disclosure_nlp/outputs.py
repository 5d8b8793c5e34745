"""Writers for results that never leave a half-written or clobbered file behind.

Labelling a large transcript can run for hours and be interrupted; a crash must not leave a
truncated file that looks complete, nor destroy the previous results. Every writer therefore
writes to a hidden ``.<name>.<random>.partial`` file next to the target and moves it into place
(``os.replace`` after flush and fsync, an atomic rename on POSIX and Windows) only when the
``with`` block ends without an exception; otherwise the partial file is removed and an existing
target is left byte-for-byte as it was. An existing target is refused unless ``force=True``,
following the CLI convention of ``--force``.

Rows are dicts written in key order. Formats, chosen by extension or ``format=``:

* ``jsonl``: one ``json.dumps(row, ensure_ascii=False)`` per line (UTF-8, ``\\n``).
* ``csv`` / ``tsv``: a header from the first row's keys (or ``columns=``); nested dicts and lists
  become compact JSON strings, ``None`` an empty cell.
* ``parquet``: rows are buffered in bounded batches and written as row groups, so memory stays
  flat; nested values become JSON strings and the schema is fixed by the first batch.

Values that JSON cannot hold are normalised the way pandas does: NaN and infinities become
``null`` (an empty cell in CSV), datetimes ISO 8601 strings, NumPy scalars and arrays plain
numbers and lists.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import math
import os
import secrets
from pathlib import Path
from typing import IO, Any, Iterable, Mapping, Sequence

from .errors import DisclosureError

__all__ = [
    "OUTPUT_FORMATS",
    "OutputError",
    "OutputWriter",
    "open_output",
    "write_json_atomic",
    "write_text_atomic",
]

OUTPUT_FORMATS = ("jsonl", "csv", "tsv", "parquet")
PARQUET_BATCH_ROWS = 10_000
_SUFFIXES = {".jsonl": "jsonl", ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet"}


class OutputError(DisclosureError):
    """An output that cannot be written as asked (exists, wrong shape, unwritable value)."""

    def __init__(self, message: str, *, path: str | Path | None = None) -> None:
        self.path = str(path) if path is not None else None
        self.reason = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


# --------------------------------------------------------------------------------------------
# Atomic file replacement


def _check_target(path: Path, force: bool) -> None:
    """Refuse before anything is written, so a mistaken path costs nothing."""
    if path.is_dir():
        raise OutputError("is a directory; give a file name", path=path)
    if not path.parent.is_dir():
        raise OutputError(f"folder {path.parent} does not exist", path=path)
    if path.exists() and not force:
        raise OutputError("already exists; use --force (force=True) to overwrite it", path=path)


def _reserve_temp(path: Path) -> tuple[Path, int]:
    """Create the hidden partial file next to the target (same filesystem, so rename is atomic).

    ``os.open`` with mode 0o666 lets the umask decide permissions as for any new file; an
    existing target's permissions are kept, so overwriting never widens access to results.
    """
    mode = 0o666
    if path.exists():
        mode = path.stat().st_mode & 0o7777
    while True:
        temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), mode)
        except FileExistsError:
            continue
        if path.exists():
            try:
                os.chmod(temp, mode)
            except OSError:
                pass
        return temp, fd


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    """Make the rename itself durable; not possible on every platform, hence best effort."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _commit(temp: Path, target: Path, force: bool) -> None:
    """Move the finished file into place; without force, never replace a file made meanwhile."""
    if force:
        os.replace(temp, target)
    else:
        try:
            os.link(temp, target)  # fails if the target appeared while we were writing
        except FileExistsError:
            raise OutputError(
                "was created by something else while writing; not overwritten (use force)",
                path=target,
            ) from None
        except OSError:  # filesystems without hard links
            if target.exists():
                raise OutputError(
                    "was created by something else while writing; not overwritten (use force)",
                    path=target,
                ) from None
            os.replace(temp, target)
        else:
            os.unlink(temp)
    _fsync_dir(target.parent)


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def write_text_atomic(path: str | Path, text: str, force: bool = False) -> None:
    """Write a whole text document (an HTML report) with the all-or-nothing guarantee."""
    target = Path(path)
    _check_target(target, force)
    temp, fd = _reserve_temp(target)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        _commit(temp, target, force)
    except BaseException:
        _remove_quietly(temp)
        raise


def write_json_atomic(path: str | Path, obj: Any, force: bool = False) -> None:
    """Write one JSON document (a summary) with the same all-or-nothing guarantee.

    The document is serialised before any file is touched, so an unserialisable value leaves no
    trace; NaN becomes ``null`` because strict JSON readers reject ``NaN``.
    """
    target = Path(path)
    try:
        data = json.dumps(_json_value(obj, "(document)"), ensure_ascii=False, indent=2, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise OutputError(f"cannot be written as JSON: {err}", path=target) from None
    write_text_atomic(target, data + "\n", force=force)


# --------------------------------------------------------------------------------------------
# Value normalisation


def _is_missing(value: Any) -> bool:
    """None, NaN, and pandas' NA/NaT, without importing pandas."""
    if value is None:
        return True
    if isinstance(value, float):
        return not math.isfinite(value)
    return type(value).__name__ in ("NAType", "NaTType")


def _json_value(value: Any, column: str) -> Any:
    """A JSON-native copy of ``value``; raises TypeError naming the column for anything else."""
    if _is_missing(value):
        return None
    if isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, Mapping):
        return {str(key): _json_value(item, column) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(item, column) for item in value]
    if isinstance(value, (set, frozenset)):
        return [_json_value(item, column) for item in sorted(value, key=repr)]
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "tolist"):  # NumPy arrays and scalars
        return _json_value(value.tolist(), column)
    if hasattr(value, "item"):
        return _json_value(value.item(), column)
    raise TypeError(f"column '{column}' holds a {type(value).__name__}, which JSON cannot hold")


def _compact_json(value: Any, column: str) -> str:
    return json.dumps(_json_value(value, column), ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _cell(value: Any, column: str) -> str:
    if _is_missing(value):
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (Mapping, list, tuple, set, frozenset)):
        return _compact_json(value, column)
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    plain = _json_value(value, column)
    if isinstance(plain, (list, dict)):
        return _compact_json(plain, column)
    return "" if plain is None else str(plain)


def _parquet_value(value: Any, column: str) -> Any:
    if _is_missing(value) and not isinstance(value, float):
        return None
    if isinstance(value, (Mapping, list, tuple, set, frozenset)):
        return _compact_json(value, column)
    return value


# --------------------------------------------------------------------------------------------
# Writers


class OutputWriter:
    """A context manager that writes rows to a partial file and commits it on success.

    Use through :func:`open_output`. ``rows_written`` counts rows accepted so far (for a
    Parquet file, some may still be buffered until the next batch or the end of the block).
    """

    format = ""

    def __init__(self, path: Path, *, force: bool, columns: Sequence[str] | None) -> None:
        self.path = path
        self.force = force
        self.columns: list[str] | None = list(columns) if columns is not None else None
        self._given = columns is not None
        self._known: set[str] | None = None
        self.rows_written = 0
        self._temp: Path | None = None
        self._state = "new"  # new | open | done

    # context management ---------------------------------------------------------------
    def __enter__(self) -> OutputWriter:
        if self._state != "new":
            raise RuntimeError("an output writer can be used in one with-block only")
        self._temp, fd = _reserve_temp(self.path)
        self._state = "open"
        try:
            self._open(fd)
        except BaseException:
            self._discard()
            raise
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if exc_type is not None:
            self._discard()
            return False
        try:
            self._finish()
            assert self._temp is not None
            _commit(self._temp, self.path, self.force)
        except BaseException:
            self._discard()
            raise
        self._state = "done"
        return False

    def _discard(self) -> None:
        self._state = "done"
        try:
            self._abort()
        finally:
            if self._temp is not None:
                _remove_quietly(self._temp)

    # rows -------------------------------------------------------------------------------
    def write(self, row: Mapping[str, Any]) -> None:
        """Write one row; keys give the columns, in order."""
        if self._state != "open":
            raise RuntimeError("write() must be called inside the writer's with-block")
        if not isinstance(row, Mapping):
            raise TypeError(f"a row must be a dict, not {type(row).__name__}")
        self._write(row)
        self.rows_written += 1

    def write_many(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Write rows from any iterable (a generator keeps memory flat); returns how many."""
        before = self.rows_written
        for row in rows:
            self.write(row)
        return self.rows_written - before

    def _fixed_columns(self, row: Mapping[str, Any]) -> list[str]:
        """The table's columns: ``columns=`` or the first row's keys; extra keys are an error.

        A later row with a column the header lacks cannot be written to a table without losing
        it, and dropping data silently is worse than stopping; missing keys are empty cells.
        """
        if self.columns is None:
            self.columns = [str(key) for key in row]
        if self._known is None:
            self._known = set(self.columns)
        extra = [str(key) for key in row if str(key) not in self._known]
        if extra:
            raise OutputError(
                f"row {self.rows_written + 1} has column(s) {', '.join(map(repr, extra[:10]))} that "
                f"the header lacks (it was fixed by {'columns=' if self._given else 'the first row'}); "
                "pass every column with columns=, or write JSONL, which allows varying keys",
                path=self.path,
            )
        return self.columns

    # format hooks -----------------------------------------------------------------------
    def _open(self, fd: int) -> None:
        raise NotImplementedError

    def _write(self, row: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        raise NotImplementedError

    def _abort(self) -> None:
        raise NotImplementedError


class _TextWriter(OutputWriter):
    _handle: IO[str] | None = None

    def _open(self, fd: int) -> None:
        self._handle = os.fdopen(fd, "w", encoding="utf-8", newline="")

    def _finish(self) -> None:
        assert self._handle is not None
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()

    def _abort(self) -> None:
        if self._handle is not None and not self._handle.closed:
            self._handle.close()


class _JsonlWriter(_TextWriter):
    format = "jsonl"

    def _write(self, row: Mapping[str, Any]) -> None:
        assert self._handle is not None
        if self._given:
            columns = self._fixed_columns(row)
            row = {name: row.get(name) for name in columns}
        try:
            clean = {str(key): _json_value(value, str(key)) for key, value in row.items()}
        except TypeError as err:
            raise OutputError(f"row {self.rows_written + 1}: {err}", path=self.path) from None
        self._handle.write(json.dumps(clean, ensure_ascii=False, allow_nan=False) + "\n")


class _DelimitedWriter(_TextWriter):
    delimiter = ","

    def _open(self, fd: int) -> None:
        super()._open(fd)
        assert self._handle is not None
        self._writer = csv.writer(self._handle, delimiter=self.delimiter, lineterminator="\n")
        self._header_done = False
        if self.columns is not None:
            self._write_header()

    def _write_header(self) -> None:
        assert self.columns is not None
        self._writer.writerow(self.columns)
        self._header_done = True

    def _write(self, row: Mapping[str, Any]) -> None:
        columns = self._fixed_columns(row)
        if not self._header_done:
            self._write_header()
        try:
            cells = [_cell(row.get(name), name) for name in columns]
        except TypeError as err:
            raise OutputError(f"row {self.rows_written + 1}: {err}", path=self.path) from None
        self._writer.writerow(cells)


class _CsvWriter(_DelimitedWriter):
    format = "csv"
    delimiter = ","


class _TsvWriter(_DelimitedWriter):
    format = "tsv"
    delimiter = "\t"


class _ParquetWriter(OutputWriter):
    format = "parquet"

    def __init__(self, path: Path, *, force: bool, columns: Sequence[str] | None, batch_size: int) -> None:
        super().__init__(path, force=force, columns=columns)
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.batch_size = batch_size
        self._batch: list[Mapping[str, Any]] = []
        self._schema: Any = None
        self._writer: Any = None
        self._flushed = 0

    def _open(self, fd: int) -> None:
        os.close(fd)  # pyarrow writes to the reserved path itself

    def _write(self, row: Mapping[str, Any]) -> None:
        self._fixed_columns(row)
        self._batch.append(row)
        if len(self._batch) >= self.batch_size:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        assert self._temp is not None
        columns = self.columns or []
        first_row, last_row = self._flushed + 1, self._flushed + len(self._batch)
        arrays = []
        for index, name in enumerate(columns):
            try:
                values = [_parquet_value(row.get(name), name) for row in self._batch]
            except TypeError as err:
                raise OutputError(f"rows {first_row}–{last_row}: {err}", path=self.path) from None
            wanted = self._schema.field(index).type if self._schema is not None else None
            arrays.append(self._array(pa, values, wanted, name, first_row, last_row))
        if self._schema is None:
            self._schema = pa.schema([pa.field(name, array.type) for name, array in zip(columns, arrays)])
            self._writer = pq.ParquetWriter(str(self._temp), self._schema)
        self._writer.write_table(pa.Table.from_arrays(arrays, schema=self._schema))
        self._flushed = last_row
        self._batch = []

    def _array(self, pa: Any, values: list[Any], wanted: Any, name: str, first: int, last: int) -> Any:
        """One column of a batch, typed like the first batch so every row group agrees."""
        where = f"column '{name}', rows {first}–{last}"
        if wanted is None:
            try:
                array = pa.array(values)
            except (pa.ArrowInvalid, pa.ArrowTypeError) as err:
                raise OutputError(f"{where}: values of mixed types ({err})", path=self.path) from None
            if pa.types.is_null(array.type):
                array = pa.array(values, type=pa.string())  # all empty so far: assume text
            return array
        try:
            return pa.array(values, type=wanted)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass
        try:
            return pa.array(values).cast(wanted)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as err:
            raise OutputError(
                f"{where}: values do not fit the type {wanted} set by the first batch ({err})",
                path=self.path,
            ) from None

    def _finish(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        assert self._temp is not None
        if self._batch:
            self._flush()
        if self._writer is None:  # no rows: a valid empty table (text columns if named)
            schema = pa.schema([pa.field(name, pa.string()) for name in self.columns or []])
            pq.write_table(schema.empty_table(), str(self._temp))
        else:
            self._writer.close()
            self._writer = None
        _fsync_path(self._temp)

    def _abort(self) -> None:
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception:
                pass
            self._writer = None
        self._batch = []


def output_format(path: str | Path, format: str | None = None) -> str:
    """The output format for ``path``: ``format`` when given, else its extension."""
    if format is not None:
        if format not in OUTPUT_FORMATS:
            raise OutputError(f"unknown output format '{format}'; use one of {', '.join(OUTPUT_FORMATS)}")
        return format
    suffix = Path(path).suffix.lower()
    fmt = _SUFFIXES.get(suffix)
    if fmt is None:
        raise OutputError(
            f"cannot tell the output format from the extension {suffix or '(none)'}; use "
            ".jsonl, .csv, .tsv or .parquet, or name the format",
            path=path,
        )
    return fmt


def open_output(
    path: str | Path,
    *,
    format: str | None = None,
    force: bool = False,
    columns: Sequence[str] | None = None,
    batch_size: int = PARQUET_BATCH_ROWS,
) -> OutputWriter:
    """A writer for ``path``, to be used as ``with open_output(path) as out: out.write(row)``.

    The target is checked now (exists without ``force``, missing folder, a directory), before
    any row is computed; the file appears only when the block ends without an exception.
    ``columns`` fixes the columns and their order (the header of CSV/TSV, the keys of JSONL
    rows, the Parquet schema's names); without it, tables take the first row's keys.
    ``batch_size`` is the number of rows per Parquet row group held in memory.
    """
    target = Path(path)
    fmt = output_format(target, format)
    _check_target(target, force)
    if fmt == "parquet":
        return _ParquetWriter(target, force=force, columns=columns, batch_size=batch_size)
    writer_class = {"jsonl": _JsonlWriter, "csv": _CsvWriter, "tsv": _TsvWriter}[fmt]
    return writer_class(target, force=force, columns=columns)
