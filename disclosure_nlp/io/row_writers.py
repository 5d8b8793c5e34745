"""Row writers for JSONL, CSV/TSV and Parquet, and the JSON-object writer of the summary.

Each writes to a partial file and commits it by rename on success (:mod:`.safe_files`); a
Parquet file is written in bounded row groups so memory stays flat. Opened through
:func:`.outputs.open_output`.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import IO, Any, Iterable, Mapping, Sequence


from .safe_files import OutputError, _commit, _fsync_path, _remove_quietly, _reserve_temp
from .values import _cell, _json_value, _parquet_value

PARQUET_BATCH_ROWS = 10_000



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


