"""Streaming readers for chat transcripts.

Transcripts can be large (a research corpus of millions of messages) and sensitive, so the
readers here never hold a whole file: they decode one line at a time, build one
:class:`Message` at a time, and report every problem by place (file, line, field) with at most a
short marked excerpt of the content (see :mod:`disclosure_nlp.errors`).

Accepted inputs
---------------
* JSON Lines (``.jsonl``, ``.json``, ``.ndjson``), including ConvoKit's ``utterances.jsonl``
  (its ``reply-to``, ``user`` and legacy ``root`` keys are understood).
* A ConvoKit corpus directory (its ``utterances.jsonl`` is read; the other corpus files carry
  nothing a disclosure label needs).
* CSV and TSV tables with a header row and configurable column names (:class:`ColumnMap`).
* Plain-text chat logs (``.txt``, ``.log``): ``Speaker: message`` lines, optionally behind a
  ``[timestamp]``, and WhatsApp exports from Android and iOS in their locale variants.
* Parquet tables (``.parquet``), read with pyarrow one record batch at a time; values become
  ids and timestamps the way :func:`disclosure_nlp.integrations.frame.annotate_frame` reads a DataFrame
  (``3.0`` is id ``3``, a typed timestamp its ISO text), and a "line" is a 1-based row number.
* Chat exports (see :mod:`disclosure_nlp.io.chat_exports`): Telegram Desktop ``result.json``,
  DiscordChatExporter JSON and CSV, Facebook/Instagram Messenger ``message_N.json``, an unzipped
  Slack export folder, and WebVTT (``.vtt``) / SRT (``.srt``) meeting transcripts. A ``.json``
  file starting with ``{`` is read as an export when it has an export's shape, and as JSON Lines
  otherwise: only its first line is parsed to tell, unless that line is no JSON value on its own
  (a pretty-printed document), so a large JSON Lines file is still streamed. An export is one
  JSON document and cannot be decoded a line at a time: it is parsed whole (the standard
  library has no incremental parser and ``ijson`` is not a dependency), and its bad messages are
  named by JSON path (``messages[3].from``) in the error's field, with no line.

Any of the text formats may be gzip-compressed; the gzip magic number, not the ``.gz`` name,
decides.

Message ids must be unique within their conversation (a duplicate would make ``reply_to``
links ambiguous, and ``reply_to`` is resolved within the conversation); the same id in two
conversations is accepted, as in exports that number each chat's messages from 1. So the ids
kept to check this are those of one conversation at a time. The only state that grows with the
input is, in :func:`iter_conversations`, the record of finished conversation ids (to refuse a
conversation that reappears later), kept compactly: about 45 bytes and the id's length per
conversation, some 6 MB for a million chat messages in conversations of ten.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import math
import zlib
from array import array
from contextlib import ExitStack
from dataclasses import replace as _replace
from datetime import date as _date, time as _time
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Iterator

from ..errors import DataError, excerpt
from .transcript_base import (  # noqa: F401 (re-exported: readers and callers import them from here)
    _MISSING,
    _PLAIN_SPEAKER,
    _UNWRITABLE,
    GZIP_MAGIC,
    SNIFF_BYTES,
    ColumnMap,
    Message,
    Reject,
    _BadRecord,
    _Context,
    _identifier,
    _Lines,
    _lookup,
    _open_raw,
    _open_stream as _open_with,
    _Source,
    _type_name,
    _unwritable,
    _utf8_problem,
    blank_text,
    printable_path,
)
from .record_readers import _build, _iter_delimited, _iter_jsonl
from .text_logs import _iter_text
from .timestamps import parse_timestamp  # noqa: F401 (re-exported: a public name of this module)

__all__ = [
    "ColumnMap",
    "FORMATS",
    "Message",
    "Reject",
    "iter_conversations",
    "parse_timestamp",
    "read_messages",
]

FORMATS = (
    "jsonl", "csv", "tsv", "text", "whatsapp", "convokit", "parquet",
    "telegram", "discord", "slack", "messenger", "vtt", "srt",
)
CORPUS_UTTERANCES = "utterances.jsonl"

_SUFFIX_FORMATS = {
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "text",
    ".log": "text",
    ".parquet": "parquet",
    ".vtt": "vtt",
    ".srt": "srt",
}
PARQUET_MAGIC = b"PAR1"
PARQUET_BATCH_ROWS = 1024
PARQUET_INSTALL_HINT = "reading Parquet needs pyarrow; install it with: pip install 'disclosure-nlp[pandas]'"



def _open_stream(source: _Source) -> IO[bytes]:
    """Open a source through this module's ``_open_raw`` (the seam tests replace)."""
    return _open_with(source, opener=_open_raw)


def _strip_gz(name: str) -> str:
    return name[:-3] if name.lower().endswith(".gz") else name


def _resolve(path: Path, format: str | None) -> _Source:
    """Decide what to read and how, refusing unusable paths before any record is read."""
    if format is not None and format not in FORMATS:
        raise DataError(f"unknown format {format!r}; expected one of {', '.join(FORMATS)}")
    if not path.exists():
        raise DataError("no such file or directory", path=path)
    if path.is_dir():
        if format not in (None, "convokit", "slack"):
            raise DataError(f"is a directory; format '{format}' needs a file", path=path)
        utterances = path / CORPUS_UTTERANCES
        if format != "slack" and utterances.is_file():
            return _sniffed(utterances, "jsonl", path.name)
        from .chat_exports import is_slack_export

        if format != "convokit" and is_slack_export(path):
            return _Source(path=path, fmt="slack", stem=path.name, gzipped=False)
        if format == "slack":
            raise DataError(
                "is not a Slack export (it has no channels.json or users.json); give the unzipped "
                "export's top folder",
                path=path,
            )
        raise DataError(
            f"is a directory but not a ConvoKit corpus (it has no {CORPUS_UTTERANCES})"
            + ("" if format == "convokit" else " nor a Slack export (no channels.json)"),
            path=path,
        )
    if format == "slack":
        raise DataError(
            "a Slack export is a folder (channels.json, users.json and a folder per channel); unzip "
            "the export and give its top folder",
            path=path,
        )
    name = _strip_gz(path.name)
    if format is None:
        suffix = Path(name).suffix.lower()
        fmt = _SUFFIX_FORMATS.get(suffix)
        if fmt is None:
            shown = suffix or "(none)"
            raise DataError(
                f"cannot tell the transcript format from the extension {shown}; use .jsonl, "
                ".csv, .tsv, .txt, .parquet, .vtt, .srt, a chat export's .json or a ConvoKit corpus "
                "or Slack export directory, or name the format with --format (format= in Python)",
                path=path,
            )
    else:
        fmt = "jsonl" if format == "convokit" else format
    if fmt == "parquet":
        return _parquet_source(path, Path(name).stem or name)
    source = _sniffed(path, fmt, Path(name).stem or name)
    if format is None and Path(name).suffix.lower() == ".json" and _first_byte(source) == b"{":
        return _replace(source, fmt="json")  # a chat export or JSON Lines: told when read
    if format is None and fmt == "csv" and _discord_csv_header(source):
        return _replace(source, fmt="discord_csv")
    if format == "discord" and _first_byte(source) != b"{":
        return _replace(source, fmt="discord_csv")
    return source


def _head(source: _Source) -> bytes:
    with _open_stream(source) as stream:
        try:
            return stream.read(SNIFF_BYTES)
        except (OSError, EOFError, zlib.error):
            return b""


def _first_byte(source: _Source) -> bytes:
    """The first byte that is not whitespace or a BOM (``b""`` for an empty file)."""
    head = _head(source)
    if head.startswith(codecs.BOM_UTF8):
        head = head[len(codecs.BOM_UTF8) :]
    return head.lstrip()[:1]


def _discord_csv_header(source: _Source) -> bool:
    """Whether a CSV starts with DiscordChatExporter's header row."""
    from .chat_exports import DISCORD_CSV_HEADER

    head = _head(source)
    if head.startswith(codecs.BOM_UTF8):
        head = head[len(codecs.BOM_UTF8) :]
    first = head.split(b"\n", 1)[0].decode("utf-8", "replace")
    try:
        row = next(csv.reader([first]))
    except (csv.Error, StopIteration):
        return False
    return [cell.strip() for cell in row] == list(DISCORD_CSV_HEADER)


def _parquet_source(path: Path, stem: str) -> _Source:
    """A Parquet file is binary by design: check its magic number instead of sniffing for text,
    and that pyarrow is there, before any record is read."""
    with path.open("rb") as handle:
        head = handle.read(len(PARQUET_MAGIC))
    if head != PARQUET_MAGIC:
        raise DataError("is not a Parquet file (it does not start with PAR1)", path=path)
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise DataError(PARQUET_INSTALL_HINT, path=path) from None
    return _Source(path=path, fmt="parquet", stem=stem, gzipped=False)


def _sniffed(path: Path, fmt: str, stem: str) -> _Source:
    """Check the first bytes: gzip is read transparently, binary files are refused."""
    with path.open("rb") as handle:
        gzipped = handle.read(2) == GZIP_MAGIC
        handle.seek(0)
        try:
            if gzipped:
                with gzip.GzipFile(fileobj=handle, mode="rb") as unzipped:
                    head = unzipped.read(SNIFF_BYTES)
            else:
                head = handle.read(SNIFF_BYTES)
        except (OSError, EOFError, zlib.error):
            raise DataError("starts like a gzip file but cannot be decompressed", path=path) from None
    if head.startswith(b"PK\x03\x04"):
        raise DataError(
            "is a ZIP archive (a zipped chat export or a spreadsheet?), not a text transcript; "
            "unzip it or export the table as CSV",
            path=path,
        )
    if b"\x00" in head:
        raise DataError(
            "looks like a binary file (NUL bytes in its first 8 KiB), not a text transcript; "
            "UTF-16 text must be saved as UTF-8",
            path=path,
        )
    return _Source(path=path, fmt=fmt, stem=stem, gzipped=gzipped)


# --------------------------------------------------------------------------------------------
# Lines




def _arrow_identifier(value: Any) -> Any:
    """An id-like Arrow value as :mod:`disclosure_nlp.integrations.frame` reads it from a DataFrame: a typed
    timestamp is its ISO text, a float holding an integer is that integer, NaN is absent."""
    if isinstance(value, (_date, _time)):  # a datetime is a date
        return value.isoformat()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return int(value)
    return value


def _iter_parquet(source: _Source, ctx: _Context) -> Iterator[Message | _BadRecord]:
    """Rows of a Parquet file, one record batch in memory at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = source.path
    try:
        table = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as err:
        raise DataError(f"cannot be read as Parquet ({err})", path=path) from None
    names = list(table.schema_arrow.names)
    if len(set(names)) != len(names):
        twice = next(name for name in names if names.count(name) > 1)
        raise DataError("column appears twice", path=path, field=twice)
    for attr in ["text", *sorted(ctx.required)]:
        if not any(name in names for name in ctx.keys[attr]):
            shown = ", ".join(names[:20]) + (", …" if len(names) > 20 else "")
            raise DataError(f"column missing (the columns are: {shown})", path=path, field=getattr(ctx.columns, attr))
    id_keys = {name for attr in ("id", "conversation", "speaker", "reply_to", "time") for name in ctx.keys[attr]}
    row = 0
    try:
        for batch in table.iter_batches(batch_size=PARQUET_BATCH_ROWS):
            for record in batch.to_pylist():
                row += 1
                text = record.get(ctx.keys["text"][0])
                raw = text if isinstance(text, str) else ""
                plain = {key: _arrow_identifier(value) if key in id_keys else value for key, value in record.items()}
                try:
                    message = _build(plain, row, ctx, raw)
                except _BadRecord as bad:
                    yield bad
                    continue
                message.fields = record  # the values as stored, typed timestamps included
                yield message
    except (pa.ArrowException, OSError) as err:
        raise DataError(f"cannot be read as Parquet after row {row} ({err})", path=path, line=row + 1) from None


# --------------------------------------------------------------------------------------------
# Public API


def read_messages(
    path: str | Path,
    *,
    format: str | None = None,
    columns: ColumnMap = ColumnMap(),
    on_error: str = "raise",
    on_reject: Callable[[Reject], None] | None = None,
) -> Iterator[Message]:
    """Stream the messages of one transcript file or ConvoKit corpus directory.

    The path, its format, compression and text-ness are checked now, so a wrong path fails at
    the call; records are read only as the iterator is consumed, so memory does not grow with
    the file. ``format`` overrides the extension ("jsonl", "csv", "tsv", "parquet", "text",
    "whatsapp", "convokit", "telegram", "discord", "slack", "messenger", "vtt", "srt"); the
    column map applies to JSONL, CSV, TSV and Parquet, the exports have fixed fields.

    With ``on_error="raise"`` the first bad record raises :class:`DataError` naming file, line
    and field. With ``on_error="skip"`` each bad record is passed to ``on_reject`` (if given)
    and reading goes on; problems with the whole file (missing path, binary data, a CSV header
    without the text column, a JSON array instead of JSON Lines) raise in both modes.

    Defaults: a missing id becomes ``"<stem>:<line>"`` and a missing conversation id the file's
    stem (one file, one conversation). WhatsApp system lines ("Messages and calls are
    end-to-end encrypted", "X added Y") and bracketed log events without a speaker are not
    messages and are skipped; ``<Media omitted>`` is a speaker's message and is kept. So are the
    system events of chat exports (Telegram ``service`` messages, Slack join/leave subtypes, ...),
    while an export's message without text is a bad record ("empty text").
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
    source = _resolve(Path(path), format)
    return _generate(source, columns, on_error, on_reject)



def _unwritable_field(message: Message, columns: ColumnMap) -> str | None:
    """The field of ``message`` that could not be written out, named safely, or ``None``.

    JSON allows ``"\\ud83d"`` (half of an emoji, common in truncated exports); Python reads it
    into a string that cannot be encoded, so it would crash a writer halfway. Catching it while
    reading turns it into an ordinary bad record with its place, before it can start or end a
    conversation (and so reset the check of that conversation's ids).
    """
    if not _unwritable(message.text) and not _unwritable(message.fields):
        return None
    for key, value in message.fields.items():
        if _unwritable(key) or _unwritable(value):
            return str(key).encode("utf-8", "backslashreplace").decode("utf-8")
    return columns.text


def _generate(
    source: _Source,
    columns: ColumnMap,
    on_error: str,
    on_reject: Callable[[Reject], None] | None,
) -> Iterator[Message]:
    seen: dict[str, int] = {}  # ids of the current conversation, with their lines
    conversation: str | None = None
    with ExitStack() as stack:
        items, columns = _records(source, columns, stack)
        for item in items:
            if isinstance(item, Message) and (bad_field := _unwritable_field(item, columns)) is not None:
                item = _BadRecord(_UNWRITABLE, item.line, bad_field, item.text)
            if isinstance(item, Message):
                if item.conversation_id != conversation:
                    seen, conversation = {}, item.conversation_id
                first = seen.get(item.id)
                if first is None:
                    seen[item.id] = item.line
                    yield item
                    continue
                item = _BadRecord(
                    f"duplicate message id {excerpt(item.id, 30)}, first used at line {first}",
                    item.line,
                    columns.id,
                    item.text,
                )
            where = item.path if item.path is not None else source.path
            if on_error == "raise":
                raise DataError(item.reason, path=where, line=item.line, field=item.field)
            if on_reject is not None:
                on_reject(
                    Reject(
                        source=str(where),
                        line=item.line,
                        field=item.field,
                        reason=item.reason,
                        excerpt=excerpt(item.raw.strip()),
                    )
                )


def _records(
    source: _Source, columns: ColumnMap, stack: ExitStack
) -> tuple[Iterator[Message | _BadRecord], ColumnMap]:
    """The records of a source, and the column names its messages were built with."""
    if source.fmt in ("json", "telegram", "discord", "messenger", "slack"):
        from . import chat_exports

        found = chat_exports.read_export(source)
        if found is not None:
            return found, columns
        source = _replace(source, fmt="jsonl")  # a .json file that is JSON Lines
    if source.fmt == "discord_csv":
        from .chat_exports import DISCORD_COLUMNS

        source, columns = _replace(source, fmt="csv"), DISCORD_COLUMNS
    ctx = _Context.make(source, columns)
    if source.fmt == "parquet":
        return _iter_parquet(source, ctx), columns
    lines = _Lines(stack.enter_context(_open_stream(source)), source.path)
    if source.fmt == "jsonl":
        return _iter_jsonl(lines, ctx), columns
    if source.fmt in ("csv", "tsv"):
        return _iter_delimited(lines, ctx, "," if source.fmt == "csv" else "\t"), columns
    if source.fmt in ("vtt", "srt"):
        from .chat_exports import iter_cues

        return iter_cues(lines, source), columns
    return _iter_text(lines, ctx, True if source.fmt == "whatsapp" else None), columns


def iter_conversations(
    messages: Iterable[Message], *, grouped: bool = True
) -> Iterator[tuple[str, list[Message]]]:
    """Group a message stream into ``(conversation_id, messages)`` in input order.

    With ``grouped=True`` (the default) only one conversation is held at a time, which keeps
    memory flat for large corpora but needs each conversation's messages to be contiguous, as
    they are in ConvoKit dumps and one-file-per-chat inputs. A conversation that reappears after
    another one started raises :class:`DataError` at that message rather than silently
    splitting it in two (which would corrupt turn and reciprocity figures). Interleaved input
    should be sorted by conversation first (keeping each conversation's message order), or read
    with ``grouped=False``, which holds every message in memory and accepts any order.
    """
    if not grouped:
        groups: dict[str, list[Message]] = {}
        for message in messages:
            groups.setdefault(message.conversation_id, []).append(message)
        yield from groups.items()
        return
    finished = _FinishedConversations()
    current: str | None = None
    batch: list[Message] = []
    for message in messages:
        if message.conversation_id == current:
            batch.append(message)
            continue
        earlier = finished.get(message.conversation_id)
        if earlier is not None:
            raise DataError(
                f"conversation {excerpt(message.conversation_id, 30)} started at {earlier[0]} "
                f"line {earlier[1]} and reappears here after other conversations; the input "
                "must be grouped by conversation: sort it by conversation id (keeping message "
                "order within each) or read it with grouped=False, which holds all messages "
                "in memory",
                path=message.source,
                line=message.line,
                field="conversation_id",
            )
        if current is not None:
            yield current, batch
        current, batch = message.conversation_id, [message]
        finished.add(current, message.source, message.line)
    if current is not None:
        yield current, batch


class _FinishedConversations:
    """Conversation ids seen so far, each with the source and line where it started.

    A ``dict`` of them costs about 190 bytes a conversation (the id string, a tuple, a line
    number and the table entry), 20 MB per million chat messages of ordinary length; this keeps
    the ids' UTF-8 bytes end to end with fixed-size numbers beside them, about 45 bytes plus the
    id. Lookups are exact: a hash only picks the slot, and the stored bytes are compared.
    """

    def __init__(self) -> None:
        self._blob = bytearray()  # every id's UTF-8 bytes, end to end
        self._ends = array("q")  # where each id's bytes end in _blob
        self._hashes = array("q")  # each id's hash, so that growing the table re-reads no id
        self._lines = array("q")
        self._source_ids = array("I")
        self._sources: list[str] = []  # a stream rarely has more than one
        self._source_index: dict[str, int] = {}
        self._slots = array("i", bytes(4 * 64))  # 0 = empty, else entry number + 1

    def __len__(self) -> int:
        return len(self._ends)

    @staticmethod
    def _key(conversation_id: str) -> bytes:
        return conversation_id.encode("utf-8", "surrogatepass")  # lone surrogates come from JSON

    def _find(self, key: bytes, hashed: int) -> tuple[int, int]:
        """(slot, entry) for ``key``; entry is -1 when absent and slot is then the free one."""
        mask = len(self._slots) - 1
        slot = hashed & mask
        while True:
            entry = self._slots[slot] - 1
            if entry < 0:
                return slot, -1
            start = self._ends[entry - 1] if entry else 0
            if self._hashes[entry] == hashed and self._blob[start : self._ends[entry]] == key:
                return slot, entry
            slot = (slot + 1) & mask

    def get(self, conversation_id: str) -> tuple[str, int] | None:
        """The (source, line) where ``conversation_id`` started, or ``None`` if it did not."""
        key = self._key(conversation_id)
        _, entry = self._find(key, hash(key))
        if entry < 0:
            return None
        return self._sources[self._source_ids[entry]], self._lines[entry]

    def add(self, conversation_id: str, source: str, line: int) -> None:
        key = self._key(conversation_id)
        hashed = hash(key)
        slot, entry = self._find(key, hashed)
        if entry >= 0:
            return
        if source not in self._source_index:
            self._source_index[source] = len(self._sources)
            self._sources.append(source)
        self._blob += key
        self._ends.append(len(self._blob))
        self._hashes.append(hashed)
        self._lines.append(line)
        self._source_ids.append(self._source_index[source])
        self._slots[slot] = len(self._ends)
        if 2 * len(self._ends) > len(self._slots):
            self._grow()

    def _grow(self) -> None:
        """Double the table (kept at most half full, so probe runs stay short)."""
        self._slots = array("i", bytes(8 * len(self._slots)))
        mask = len(self._slots) - 1
        for entry, hashed in enumerate(self._hashes):
            slot = hashed & mask
            while self._slots[slot]:
                slot = (slot + 1) & mask
            self._slots[slot] = entry + 1
