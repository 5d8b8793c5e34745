"""The building blocks every transcript reader shares: the message and reject records, the
column map, opening a (possibly gzipped) file and reading it line by line with exact line
numbers and UTF-8 errors that name their place.

They live below both :mod:`disclosure_nlp.io.transcripts` (which picks a reader for a file) and
:mod:`disclosure_nlp.io.chat_exports` (the readers of whole-document chat exports), so that each can
use them without importing the other.
"""

from __future__ import annotations

import codecs
import gzip
import math
import os
import re
import zlib
from dataclasses import dataclass, fields as dataclass_fields
from pathlib import Path
from typing import IO, Any, Callable, Iterator

from ..errors import DataError

SNIFF_BYTES = 8192
GZIP_MAGIC = b"\x1f\x8b"
_MISSING = object()
"""A key absent from a record (not the same as a null value)."""


@dataclass
class Message:
    """One chat message plus everything needed to write it back out and to locate it.

    ``fields`` holds the record exactly as it was read (all keys, input order) so that outputs
    can carry through columns this package does not know about; ``source`` and ``line`` let a
    later stage (labelling, reciprocity) still point a user at the place in their file.
    """

    id: str
    conversation_id: str
    speaker: str | None
    text: str
    reply_to: str | None
    timestamp: str | None
    fields: dict[str, Any]
    source: str
    line: int


@dataclass(frozen=True)
class ColumnMap:
    """Which input column holds each part of a message.

    Defaults follow ConvoKit's utterance keys, so a ConvoKit dump needs no options. A column
    left at its default name is optional (except ``text``); a column given a non-default name
    is required, because a user who names a column expects it to be used and a typo should not
    silently turn every speaker into ``None``.
    """

    text: str = "text"
    speaker: str = "speaker"
    conversation: str = "conversation_id"
    id: str = "id"
    reply_to: str = "reply_to"
    time: str = "timestamp"

    def customised(self) -> set[str]:
        """Attribute names whose column was renamed by the caller (hence required)."""
        return {
            spec.name
            for spec in dataclass_fields(self)
            if spec.name != "text" and getattr(self, spec.name) != spec.default
        }


def printable_path(path: str | os.PathLike[str]) -> str:
    """A path as text any UTF-8 writer takes: undecodable bytes of the name become ``\\xNN``."""
    text = os.fspath(path)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return os.fsencode(text).decode("utf-8", "backslashreplace")


@dataclass
class Reject:
    """A record skipped in ``on_error="skip"`` mode, located like a :class:`DataError`."""

    source: str
    line: int | None
    field: str | None
    reason: str
    excerpt: str

    def __post_init__(self) -> None:
        # A file name that is not UTF-8 arrives with surrogate escapes, which no UTF-8 writer can
        # write: the rejects file shows its bytes as \xNN instead.
        self.source = printable_path(self.source)

    def __str__(self) -> str:
        place = [self.source]
        if self.line is not None:
            place.append(f"line {self.line}")
        if self.field is not None:
            place.append(f"field '{self.field}'")
        return f"{', '.join(place)}: {self.reason}"


class _BadRecord(Exception):
    """One unusable record; turned into a DataError or a Reject by the reading loop.

    ``line`` is ``None`` for a record of a whole-document JSON export, whose place is then the
    JSON path in ``field`` (``messages[3].from``); ``path`` names the file when it is not the
    source's own (a Slack export's day file).
    """

    def __init__(
        self, reason: str, line: int | None, field: str | None = None, raw: str = "", path: Path | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line
        self.field = field
        self.raw = raw
        self.path = path


# --------------------------------------------------------------------------------------------
# Opening files: existence, format, compression, binary sniffing


@dataclass(frozen=True)
class _Source:
    path: Path  # the file actually read (a Slack export: its folder)
    # jsonl | csv | tsv | text | whatsapp | parquet | telegram | discord | discord_csv | slack |
    # messenger | vtt | srt | json (a .json file: a chat export or JSON Lines, told by content)
    fmt: str
    stem: str  # default conversation id and id prefix
    gzipped: bool


def _open_raw(path: Path) -> IO[bytes]:
    """Open a file for binary reading; a seam so tests can count the bytes really read."""
    return path.open("rb")


def _open_stream(source: _Source, opener: Callable[[Path], IO[bytes]] | None = None) -> IO[bytes]:
    raw = (opener or _open_raw)(source.path)
    if source.gzipped:
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    return raw


# Split after a carriage return that is not part of CRLF, keeping it as the line ending.
_LINE_END_CR = re.compile(rb"(?<=\r)(?!\n)")


class _Lines:
    """Numbered, decoded lines of a byte stream, read lazily.

    Lines keep their ending so the CSV parser can see quoted newlines. A lone ``\\r`` also ends
    a line (old Mac files, mixed endings), matching what editors show as line numbers. Bytes
    that are not UTF-8 are decoded with replacement characters and their line is remembered in
    ``bad`` instead of raising here: the record containing that line is then rejected by the
    format reader, which knows where records start and end (a CSV record can span lines).
    """

    def __init__(self, stream: IO[bytes], path: Path) -> None:
        self._stream = stream
        self._path = path
        self.bad: dict[int, int] = {}  # line -> offset of the first undecodable byte
        self.number = 0

    def __iter__(self) -> Iterator[tuple[int, str]]:
        try:
            for raw in self._stream:
                parts = _LINE_END_CR.split(raw) if b"\r" in raw else (raw,)
                for part in parts:
                    if part:
                        self.number += 1
                        yield self.number, self._decode(part)
        except (EOFError, zlib.error, gzip.BadGzipFile) as err:
            raise DataError(
                f"the gzip data is damaged or cut off after line {self.number} ({type(err).__name__})",
                path=self._path,
                line=self.number + 1,
            ) from None

    def _decode(self, raw: bytes) -> str:
        if self.number == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8) :]
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as err:
            self.bad[self.number] = err.start
            return raw.decode("utf-8", errors="replace")

    def first_bad(self, start: int, end: int) -> int | None:
        """The first undecodable line in [start, end], forgetting lines before ``end``."""
        found = next((line for line in sorted(self.bad) if start <= line <= end), None)
        for line in [line for line in self.bad if line <= end]:
            del self.bad[line]
        return found


def _utf8_problem(lines: _Lines, start: int, end: int, raw: str) -> None:
    bad = lines.first_bad(start, end)
    if bad is not None:
        raise _BadRecord("not valid UTF-8; save the file as UTF-8", bad, raw=raw)


# --------------------------------------------------------------------------------------------
# Building messages from table-like records (JSONL, CSV, TSV)


def _identifier(value: Any, name: str, line: int) -> str | None:
    """Ids, conversation ids and speakers compare as strings; blank means absent."""
    if value is _MISSING or value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _BadRecord(f"expected a string or number, got {_type_name(value)}", line, name)
    if isinstance(value, float) and not math.isfinite(value):
        raise _BadRecord("expected a string or number, got a non-finite number", line, name)
    text = str(value).strip()
    return text or None


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "object", list: "array", bool: "boolean"}.get(type(value), type(value).__name__)


_INVISIBLE = re.compile("[\\s\x00\u200b-\u200f\u2060-\u2064\ufeff\u00ad\u034f\u180e]*")


def blank_text(text: str) -> bool:
    """Empty for a reader: only whitespace, NUL, zero-width or other invisible format marks.
    Such a "message" says nothing, so it is reported as empty text like a blank one."""
    return _INVISIBLE.fullmatch(text) is not None


_PLAIN_SPEAKER = re.compile(r"(?P<speaker>[^\s:\[][^:]{0,47}?)[ \t]*:(?:[ \t](?P<text>.*)|$)", re.S)


_UNWRITABLE = (
    "holds an unpaired surrogate escape (\\ud800-\\udfff), which is not text and cannot be "
    "written as UTF-8"
)


def _unwritable(value: Any) -> bool:
    """Whether a value holds a string that UTF-8 cannot encode (a lone JSON surrogate escape)."""
    if isinstance(value, str):
        if value.isascii():
            return False
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_unwritable(k) or _unwritable(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_unwritable(v) for v in value)
    return False


# --------------------------------------------------------------------------------------------
# Where a reader finds each field of a record


# ConvoKit's alternative keys: "user" (ConvoKit < 2), "reply-to" (what dump() writes), "root".
_CONVOKIT_ALIASES = {"speaker": ("user",), "reply_to": ("reply-to",), "conversation": ("root",)}


@dataclass
class _Context:
    source: _Source
    columns: ColumnMap
    keys: dict[str, tuple[str, ...]]  # ColumnMap attribute -> record keys to try, in order
    required: set[str]  # ColumnMap attributes whose key must be present in every record

    @classmethod
    def make(cls, source: _Source, columns: ColumnMap) -> _Context:
        custom = columns.customised()
        keys = {}
        for attr in ("text", "id", "conversation", "speaker", "reply_to", "time"):
            names: tuple[str, ...] = (getattr(columns, attr),)
            if source.fmt in ("jsonl", "parquet") and attr not in custom:
                names += _CONVOKIT_ALIASES.get(attr, ())
            keys[attr] = names
        required = set(custom)
        if source.fmt == "jsonl":
            # A single record may lack a reply target (first message) or a time.
            required -= {"reply_to", "time"}
        return cls(source, columns, keys, required)


def _lookup(record: dict[str, Any], names: tuple[str, ...]) -> tuple[str, Any]:
    for name in names:
        if name in record:
            return name, record[name]
    return names[0], _MISSING
