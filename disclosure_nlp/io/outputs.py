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

This module is the API (open a writer, resumable files, checkpoints); the atomic-replace
primitives and output path checks live in :mod:`.safe_files`, the row writers in
:mod:`.row_writers` and the per-value rules in :mod:`.values`.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from dataclasses import dataclass
from glob import escape as glob_escape
from pathlib import Path
from typing import IO, Any, Mapping, Sequence

from ..errors import DisclosureError
from .row_writers import (  # noqa: F401  (re-exported: the writers' home is row_writers)
    PARQUET_BATCH_ROWS,
    JsonObjectWriter,
    OutputWriter,
    _CsvWriter,
    _JsonlWriter,
    _ParquetWriter,
    _TsvWriter,
)
from .safe_files import (  # noqa: F401  (re-exported for the package's and users' imports)
    NOFOLLOW,
    PARTIAL_MODE,
    AlreadyExists,
    OutputError,
    _check_target,
    _commit,
    _fsync_dir,
    _remove_quietly,
    check_output_paths,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
)
from .values import OWN_CSV_COLUMNS, _json_value, csv_safe, csv_unguard  # noqa: F401

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
_SUFFIXES = {".jsonl": "jsonl", ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet"}


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
        except OSError:
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
