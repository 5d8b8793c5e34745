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
  become compact JSON strings, ``None`` an empty cell; a text cell that a spreadsheet would run
  as a formula gets a leading ``'`` and a NUL character becomes U+FFFD (:func:`csv_safe`).
* ``parquet``: rows are buffered in bounded batches and written as row groups, so memory stays
  flat; nested values become JSON strings and the schema is fixed by the first batch.

Values that JSON cannot hold are normalised the way pandas does: NaN and infinities become
``null`` (an empty cell in CSV), datetimes ISO 8601 strings, NumPy scalars and arrays plain
numbers and lists.

Resumable writers (:func:`open_resumable`, used by ``disclosure annotate``) differ in one way:
their partial file has a *stable* name, ``.<name>.partial``, and survives an interruption, so a
later run can cut it back to the end of the last complete unit of work (:class:`WriterState`,
recorded by the caller in a checkpoint file, ``.<name>.partial.json``) and append from there.
They still commit by rename only on success, so the target's name never holds a half-written
file. An input error (:class:`DisclosureError`) removes the partial file, since the same run
cannot be continued; any other interruption (Ctrl-C, a kill, a full disk) keeps it. While a
run writes, the partial file is locked, so two runs cannot write the same output at once.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import math
import os
import secrets
import stat
from dataclasses import dataclass
from glob import escape as glob_escape
from pathlib import Path
from typing import IO, Any, Iterable, Mapping, Sequence

from ..errors import DisclosureError

__all__ = [
    "OUTPUT_FORMATS",
    "RESUMABLE_FORMATS",
    "OutputError",
    "OutputWriter",
    "WriterState",
    "checkpoint_path",
    "open_json_object",
    "open_output",
    "open_resumable",
    "partial_path",
    "read_checkpoint",
    "remove_checkpoint",
    "write_checkpoint",
    "write_json_atomic",
    "write_text_atomic",
]

OUTPUT_FORMATS = ("jsonl", "csv", "tsv", "parquet")
RESUMABLE_FORMATS = ("jsonl", "csv", "tsv")
"""Formats that can be continued after an interruption: rows are appended as plain text, so the
file can be cut back to the end of the last complete unit of work. Parquet's footer is written
only at the end, so an interrupted Parquet file cannot be continued."""
PARQUET_BATCH_ROWS = 10_000
_SUFFIXES = {".jsonl": "jsonl", ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet"}


class OutputError(DisclosureError):
    """An output that cannot be written as asked (exists, wrong shape, unwritable value)."""

    def __init__(self, message: str, *, path: str | Path | None = None) -> None:
        self.path = str(path) if path is not None else None
        self.reason = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


class AlreadyExists(OutputError):
    """An output that exists and may not be replaced. One message, two phrasings: the Python
    API names its argument (``force=True``) and the command line its flag (``--force``)."""

    def __init__(self, path: str | Path, *, verb: str = "overwrite", flag: str = "--force",
                 argument: str = "force=True", label: str | None = None) -> None:
        self.verb, self.flag, self.argument, self.label = verb, flag, argument, label
        prefix = f"{label}: " if label else ""
        super().__init__(f"{prefix}already exists; pass {argument} to {verb} it", path=path)

    def for_cli(self) -> str:
        prefix = f"{self.label}: " if self.label else ""
        return f"{self.path}: {prefix}already exists; pass {self.flag} to {self.verb} it"


# --------------------------------------------------------------------------------------------
# Atomic file replacement


def _check_target(path: Path, force: bool) -> None:
    """Refuse before anything is written, so a mistaken path costs nothing."""
    if path.is_dir():
        raise OutputError("is a directory; give a file name", path=path)
    if not path.parent.is_dir():
        raise OutputError(f"folder {path.parent} does not exist", path=path)
    if path.exists() and not force:
        raise AlreadyExists(path)


def _same_file(a: Path, b: Path) -> bool:
    """Whatever the spelling (``./x`` and ``x``, a symlink, a hard link): one file?"""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def check_output_paths(inputs: Iterable[str | os.PathLike[str]], outputs: Mapping[str, str | os.PathLike[str] | None],
                       *, force: bool) -> None:
    """Check every output before the first message is labeled: none may be an input or another
    output (``--force`` would otherwise destroy the input), each needs an existing, writable
    folder, and an existing one needs ``force``. ``outputs`` maps an option name (``-o``,
    ``--summary``…) to its path."""
    given = [(name, Path(path)) for name, path in outputs.items() if path is not None]
    sources = [Path(p) for p in inputs]
    for index, (name, path) in enumerate(given):
        for source in sources:
            if _same_file(path, source):
                raise OutputError(f"{name} is the input file {source}; write the results to another file", path=path)
        for other_name, other in given[:index]:
            if _same_file(path, other):
                raise OutputError(f"{name} and {other_name} name the same file", path=path)
        if path.is_dir():
            raise OutputError(f"{name} is a directory; give a file name", path=path)
        folder = path.parent
        if not folder.is_dir():
            raise OutputError(f"{name}: folder {folder} does not exist", path=path)
        if not os.access(folder, os.W_OK | os.X_OK):
            raise OutputError(f"{name}: folder {folder} is not writable", path=path)
        if path.exists() and not force:
            raise AlreadyExists(path, label=name)


NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
PARTIAL_MODE = 0o600
"""Partial files hold message text: only the owner reads them until they become the output."""


def _final_mode(path: Path) -> int:
    """An existing target keeps its permissions; a new one gets what the umask gives any file."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def _reserve_temp(path: Path) -> tuple[Path, int]:
    """Create the hidden partial file next to the target (same filesystem, so rename is atomic).

    ``O_EXCL | O_NOFOLLOW`` with a fresh random name: a symlink planted there is never followed.
    The file is private (0600) while written; :func:`_commit` gives it its final permissions.
    """
    while True:
        temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW | getattr(os, "O_BINARY", 0),
                         PARTIAL_MODE)
        except FileExistsError:
            continue
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
    try:
        os.chmod(temp, _final_mode(target), follow_symlinks=False)
    except (OSError, NotImplementedError):
        pass
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
    write_bytes_atomic(path, text.encode("utf-8"), force=force)


def write_bytes_atomic(path: str | Path, data: bytes, force: bool = False) -> None:
    """Write a whole file (a PNG, a document) with the all-or-nothing guarantee; the target is
    replaced by rename, so a symlink planted at its name is replaced, never written through."""
    target = Path(path)
    _check_target(target, force)
    temp, fd = _reserve_temp(target)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
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
    # Plain values first: they are nearly every cell of an annotated row, and this function
    # runs for each of them.
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if _is_missing(value):
        return None
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


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a cell as a formula (OWASP, CSV injection)."""
NUL_STANDIN = "\ufffd"


def _formula_like(text: str) -> bool:
    """Starts with a formula character, after any number of leading quotes."""
    rest = text.lstrip("'")
    return bool(rest) and rest[0] in "=+-@\t\r"


def csv_safe(text: str) -> str:
    """A text cell that a spreadsheet shows as text and any CSV reader can read back.

    A cell starting with ``= + - @``, a tab or a carriage return gets a leading ``'`` (the
    spreadsheet convention for "this is text"), so a message such as ``=HYPERLINK(…)`` cannot run
    as a formula when the file is opened. A text that already starts with quotes before such a
    character gets one more, so that :func:`csv_unguard` gives back exactly what was written.
    A NUL character, which CSV readers refuse, becomes U+FFFD (JSONL and Parquet keep it).
    """
    if "\x00" in text:
        text = text.replace("\x00", NUL_STANDIN)
    if _formula_like(text):
        return "'" + text
    return text


def csv_unguard(cell: str) -> str:
    """Undo :func:`csv_safe`'s quote (one ``'`` before quotes and a formula character)."""
    if cell.startswith("'") and _formula_like(cell):
        return cell[1:]
    return cell


OWN_CSV_COLUMNS = frozenset({"layer", "p_none", "p_surface", "p_intermediate", "p_core", "depth"})
"""Columns that mark a CSV as one this tool wrote: only such a file has its quotes removed on
reading, so a user's own CSV is read exactly as it is."""


def _cell(value: Any, column: str) -> str:
    if isinstance(value, str):  # the common case, never missing
        return csv_safe(value)
    if _is_missing(value):
        return ""
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


class JsonObjectWriter(_TextWriter):
    """One JSON object written entry by entry (the ``--summary`` of a run of any size).

    The bytes are those of ``json.dumps(document, indent=2, ensure_ascii=False)`` and a newline,
    as :func:`write_json_atomic` writes, but the document is never held: each entry is
    serialised and written as it comes. NaN becomes ``null``. Use through
    :func:`open_json_object`; the file appears when the block ends without an exception.
    """

    format = "json"
    _entries = 0

    def add(self, key: str, value: Any) -> None:
        if self._state != "open" or self._handle is None:
            raise RuntimeError("add() must be called inside the writer's with-block")
        try:
            body = json.dumps(_json_value(value, key), ensure_ascii=False, indent=2, allow_nan=False)
        except (TypeError, ValueError) as err:
            raise OutputError(f"cannot be written as JSON: {err}", path=self.path) from None
        # indent=2 puts newlines only between tokens (strings escape theirs), so indenting the
        # entry one level is a plain replacement.
        lead = ",\n  " if self._entries else "{\n  "
        self._handle.write(lead + json.dumps(str(key), ensure_ascii=False) + ": " + body.replace("\n", "\n  "))
        self._entries += 1
        self.rows_written += 1

    def add_array(self, key: str, values: Iterable[Any]) -> None:
        """An entry whose value is a list, written item by item (the same bytes as ``add`` of
        the whole list), so a list of any length is never held."""
        if self._state != "open" or self._handle is None:
            raise RuntimeError("add_array() must be called inside the writer's with-block")
        lead = ",\n  " if self._entries else "{\n  "
        self._handle.write(lead + json.dumps(str(key), ensure_ascii=False) + ": [")
        count = 0
        for value in values:
            try:
                body = json.dumps(_json_value(value, key), ensure_ascii=False, indent=2, allow_nan=False)
            except (TypeError, ValueError) as err:
                raise OutputError(f"cannot be written as JSON: {err}", path=self.path) from None
            self._handle.write(("\n    " if count == 0 else ",\n    ") + body.replace("\n", "\n    "))
            count += 1
        self._handle.write("\n  ]" if count else "]")
        self._entries += 1
        self.rows_written += 1

    def _write(self, row: Mapping[str, Any]) -> None:
        for key, value in row.items():
            self.add(str(key), value)

    def _finish(self) -> None:
        assert self._handle is not None
        self._handle.write("\n}\n" if self._entries else "{}\n")
        super()._finish()


class _DelimitedWriter(_TextWriter):
    delimiter = ","

    def _open(self, fd: int) -> None:
        super()._open(fd)
        assert self._handle is not None
        # The csv module quotes a cell only for the characters of its line terminator, so with
        # "\n" a lone "\r" inside a message would be written bare and split the row for every
        # reader. Rows are therefore formatted with "\r\n" (both characters force quotes) and
        # written with "\n".
        self._row_buffer = io.StringIO()
        self._writer = csv.writer(self._row_buffer, delimiter=self.delimiter, lineterminator="\r\n")
        self._header_done = False
        if self.columns is not None:
            self._write_header()

    def _emit(self, cells: Sequence[str]) -> None:
        assert self._handle is not None
        self._writer.writerow(cells)
        line = self._row_buffer.getvalue()
        self._row_buffer.seek(0)
        self._row_buffer.truncate()
        self._handle.write(line[:-2] + "\n")

    def _write_header(self) -> None:
        assert self.columns is not None
        self._emit(self.columns)
        self._header_done = True

    def _write(self, row: Mapping[str, Any]) -> None:
        columns = self._fixed_columns(row)
        if not self._header_done:
            self._write_header()
        try:
            cells = [_cell(row.get(name), name) for name in columns]
        except TypeError as err:
            raise OutputError(f"row {self.rows_written + 1}: {err}", path=self.path) from None
        self._emit(cells)


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


# --------------------------------------------------------------------------------------------
# Resumable writers


def partial_path(path: str | Path) -> Path:
    """The stable hidden name a resumable writer uses for ``path`` while it is being written."""
    target = Path(path)
    return target.with_name(f".{target.name}.partial")


def checkpoint_path(path: str | Path) -> Path:
    """Where a caller keeps the checkpoint of a resumable output ``path``."""
    target = Path(path)
    return target.with_name(f".{target.name}.partial.json")


@dataclass(frozen=True)
class WriterState:
    """Where a resumable partial file stood after its last complete unit of work.

    ``offset`` is its size in bytes, ``rows`` the rows in those bytes and ``columns`` the
    header of a CSV/TSV file (``None`` while no row is written), which a continued file must
    keep.
    """

    offset: int
    rows: int
    columns: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"offset": self.offset, "rows": self.rows,
                "columns": list(self.columns) if self.columns is not None else None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WriterState:
        offset, rows, columns = data.get("offset"), data.get("rows"), data.get("columns")
        if not (isinstance(offset, int) and isinstance(rows, int) and offset >= 0 and rows >= 0):
            raise ValueError("offset and rows must be non-negative integers")
        if columns is not None and not (isinstance(columns, list) and all(isinstance(c, str) for c in columns)):
            raise ValueError("columns must be a list of names")
        return cls(offset, rows, tuple(columns) if columns is not None else None)


def _lock(fd: int, path: Path) -> None:
    """Take an exclusive lock on an open partial file (POSIX; elsewhere nothing is locked).

    The lock dies with the process, so a killed run never leaves a stale lock behind.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise OutputError(
            "another run is writing this output right now (its partial file is locked); wait "
            "for it to finish or choose another output name",
            path=path,
        ) from None


class _ResumableMixin:
    """Stable partial name, exclusive lock, continuation at a recorded offset (see module doc)."""

    path: Path
    force: bool
    columns: list[str] | None
    rows_written: int
    _temp: Path | None
    _state: str
    _known: set[str] | None
    _handle: IO[str] | None

    keep_partial = False
    """Set by the caller once its input is fully read: from then on an error keeps the file."""

    def _setup(self, resume: WriterState | None, partial: Path | None) -> None:
        self._resume = resume
        self._partial = partial if partial is not None else partial_path(self.path)

    def __enter__(self):  # type: ignore[no-untyped-def]
        if self._state != "new":
            raise RuntimeError("an output writer can be used in one with-block only")
        temp = self._partial
        try:
            fd = os.open(temp, os.O_RDWR | os.O_CREAT | NOFOLLOW | getattr(os, "O_BINARY", 0), PARTIAL_MODE)
        except OSError as err:
            if temp.is_symlink():  # ELOOP: a symlink planted at the partial's name
                raise OutputError("is a symbolic link, not a partial file this tool wrote; remove it "
                                  "(it was not followed)", path=temp) from None
            raise
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
                raise OutputError("is not a plain file of its own (a device, a FIFO or a hard link to "
                                  "another file); remove it, it was not written to", path=temp)
            _lock(fd, temp)
            start = 0
            if self._resume is not None:
                size = os.fstat(fd).st_size
                if size < self._resume.offset:
                    raise OutputError(
                        f"is shorter ({size} bytes) than its checkpoint records "
                        f"({self._resume.offset} bytes): it was changed since the interrupted run; "
                        "start over without --resume",
                        path=temp,
                    )
                start = self._resume.offset
            os.ftruncate(fd, start)
            os.lseek(fd, start, os.SEEK_SET)
            os.fchmod(fd, PARTIAL_MODE)  # also a partial left by an older version
        except BaseException:
            os.close(fd)
            raise
        self._temp = temp
        self._state = "open"
        try:
            self._open(fd)  # type: ignore[attr-defined]
            if self._resume is not None:
                self.rows_written = self._resume.rows
                if self._resume.columns is not None:
                    self.columns = list(self._resume.columns)
                    self._known = None
                    self._header_done = True  # used by the CSV/TSV writers only
        except BaseException:
            self.discard()
            raise
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if self._state == "done":
            return False
        if exc_type is not None:
            if issubclass(exc_type, DisclosureError) and not self.keep_partial:
                self.discard()
            else:
                self.keep()
            return False
        self.commit()
        return False

    def commit(self) -> None:
        """Finish the file and move it into place; on failure the partial file is kept.

        The rows are complete at this point, so a failed rename (the target appeared meanwhile
        and ``force`` is off, a full disk) must not throw them away.
        """
        if self._state != "open":
            raise RuntimeError("commit() must be called inside the writer's with-block")
        try:
            self._finish()  # type: ignore[attr-defined]
            assert self._temp is not None
            _commit(self._temp, self.path, self.force)
        except BaseException:
            self.keep()
            raise
        self._state = "done"

    def mark(self) -> WriterState:
        """Flush and fsync what is written; the state to record in a checkpoint now."""
        if self._state != "open" or self._handle is None:
            raise RuntimeError("mark() must be called inside the writer's with-block")
        self._handle.flush()
        fd = self._handle.fileno()
        os.fsync(fd)
        offset = os.lseek(fd, 0, os.SEEK_CUR)
        columns = tuple(self.columns) if self.columns is not None and self.rows_written else None
        return WriterState(offset, self.rows_written, columns)

    def keep(self) -> None:
        """Close the partial file and leave it for a later continuation."""
        self._state = "done"
        self._abort()  # type: ignore[attr-defined]

    def discard(self) -> None:
        """Close and remove the partial file (it cannot or need not be continued)."""
        self._state = "done"
        try:
            self._abort()  # type: ignore[attr-defined]
        finally:
            if self._temp is not None:
                _remove_quietly(self._temp)


class _ResumableJsonl(_ResumableMixin, _JsonlWriter):
    pass


class _ResumableCsv(_ResumableMixin, _CsvWriter):
    pass


class _ResumableTsv(_ResumableMixin, _TsvWriter):
    pass


def open_resumable(
    path: str | Path,
    *,
    format: str | None = None,
    force: bool = False,
    resume: WriterState | None = None,
    partial: str | Path | None = None,
    check: bool = True,
) -> OutputWriter:
    """A writer like :func:`open_output` whose partial file can be continued after a crash.

    Without ``resume`` a leftover partial file of an earlier, interrupted run is replaced;
    with it, the partial file is cut back to ``resume.offset`` and rows are appended after it.
    Call ``mark()`` after each complete unit of work and record the returned
    :class:`WriterState` (with :func:`write_checkpoint`). ``partial`` overrides the partial
    file's name and ``check=False`` skips the target checks, for a side file that is never
    committed (end it with ``discard()``).
    """
    target = Path(path)
    fmt = output_format(target, format)
    if fmt not in RESUMABLE_FORMATS:
        raise OutputError(
            f"a {fmt} output cannot be continued after an interruption (its footer is written "
            f"only at the end); use {', '.join(RESUMABLE_FORMATS)}, or run without --resume",
            path=target,
        )
    if check:
        _check_target(target, force)
    writer_class = {"jsonl": _ResumableJsonl, "csv": _ResumableCsv, "tsv": _ResumableTsv}[fmt]
    writer = writer_class(target, force=force, columns=None)
    writer._setup(resume, Path(partial) if partial is not None else None)
    return writer


def read_checkpoint(path: str | Path) -> dict[str, Any] | None:
    """The checkpoint stored at ``path``, or ``None`` when there is none."""
    target = Path(path)
    try:
        text = target.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        raise OutputError("is not a readable checkpoint; start over without --resume", path=target)
    return data


def write_checkpoint(path: str | Path, data: Mapping[str, Any]) -> None:
    """Replace the checkpoint at ``path`` atomically (a kill leaves the old or the new one)."""
    target = Path(path)
    temp = target.with_name(f"{target.name}.{secrets.token_hex(4)}.tmp")
    # ASCII: a file name that is not UTF-8 (surrogate escapes) survives as \udcNN and reads back.
    text = json.dumps(_json_value(dict(data), "(checkpoint)"), ensure_ascii=True, indent=1, allow_nan=False)
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW | getattr(os, "O_BINARY", 0), 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        _remove_quietly(temp)
        raise
    _fsync_dir(target.parent)


def remove_checkpoint(path: str | Path) -> None:
    """Remove a checkpoint (and a temp file a killed write may have left)."""
    target = Path(path)
    _remove_quietly(target)
    for stray in target.parent.glob(f"{glob_escape(target.name)}*.tmp"):
        _remove_quietly(stray)


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
            ".jsonl, .csv, .tsv or .parquet, or name the format with --output-format (output_format= in Python)",
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


def open_json_object(path: str | Path, *, force: bool = False) -> JsonObjectWriter:
    """A writer of one JSON object, entry by entry: ``with open_json_object(p) as out: out.add(k, v)``.

    The target is checked now, as :func:`open_output` checks it.
    """
    target = Path(path)
    _check_target(target, force)
    return JsonObjectWriter(target, force=force, columns=None)
