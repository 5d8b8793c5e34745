"""Plain-text chat logs and WhatsApp exports: one message may span several lines.

A text log has no record boundaries, so a message is a header line (``Speaker: text``, perhaps
behind a ``[timestamp]``, or a WhatsApp line in one of its locale forms) plus every line up to
the next header. Kept apart from the record readers in :mod:`.transcripts` because the header
patterns and the system-message rules are a small grammar of their own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterator

from .timestamps import _MARKS
from .transcript_base import (
    _PLAIN_SPEAKER,
    Message,
    _BadRecord,
    _Context,
    _Lines,
    _utf8_problem,
    blank_text,
)
_DATE = r"\d{1,4}[./-]\d{1,2}[./-]\d{1,4}"
_TIME = r"\d{1,2}[:.]\d{2}(?:[:.]\d{2})?(?:[ \u202f\u00a0]?[AaPp]\.?[ \u202f\u00a0]?[Mm]\.?)?"
_STAMP = rf"{_DATE},?[ \u202f\u00a0]+{_TIME}"
_ANDROID = re.compile(rf"(?P<ts>{_STAMP})[ \u202f\u00a0]+[-–][ \u202f\u00a0]+(?P<rest>.*)", re.S)
# iOS always writes "date, time"; requiring the comma keeps "[2024-01-01 10:00] Ana: hi" plain.
_IOS = re.compile(rf"\[(?P<ts>{_DATE},[ \u202f\u00a0]+{_TIME})\][ \u202f\u00a0]*(?P<rest>.*)", re.S)
_PLAIN = re.compile(r"(?:\[(?P<ts>[^\]\n]*)\][ \t]*)?(?P<rest>.*)", re.S)
# English WhatsApp system texts that can look like "Name: text" or sit under the group's name.
# Matched case-sensitively against the text before the first ": " (or an iOS body marked with
# U+200E), never against a whole message, so "Bob: I left early" stays a message.
_SYSTEM = re.compile(
    r"(Messages and calls are end-to-end encrypted|Messages to this (group|chat) are now"
    r"|.+ (created group|created this group|added|removed|left|joined using this group's invite"
    r" link|changed the subject|changed this group's icon|changed the group description"
    r"|changed their phone number|deleted this group's icon)\b"
    r"|Your security code with .+ changed)",
    re.S,
)


@dataclass
class _Header:
    timestamp: str | None
    speaker: str | None  # None: a system line, not a message
    text: str


def _whatsapp_header(line: str) -> _Header | None:
    stripped = line.lstrip(_MARKS)
    match = _ANDROID.fullmatch(stripped) or _IOS.fullmatch(stripped)
    if match is None:
        return None
    rest, timestamp = match.group("rest"), match.group("ts")
    split = rest.find(": ")
    candidate = rest[:split] if split > 0 else ""
    speaker = candidate.strip(_MARKS + " ")
    if not speaker or _SYSTEM.match(candidate.lstrip(_MARKS)):
        return _Header(timestamp, None, rest)  # "X added Y", "Messages and calls are …"
    body = rest[split + 2 :]
    # iOS files system texts under the group's name, marked with U+200E.
    if body and body[0] in _MARKS and _SYSTEM.match(body.lstrip(_MARKS)):
        return _Header(timestamp, None, body)
    return _Header(timestamp, speaker, body.lstrip(_MARKS))


def _plain_header(line: str) -> _Header | None:
    match = _PLAIN.fullmatch(line.lstrip(_MARKS))
    assert match is not None  # the pattern matches any line
    timestamp, rest = match.group("ts"), match.group("rest")
    found = _PLAIN_SPEAKER.fullmatch(rest)
    if found is not None and len(found.group("speaker").split()) <= 4:
        return _Header(timestamp, found.group("speaker").strip(), found.group("text") or "")
    if timestamp is not None:
        return _Header(timestamp, None, rest)  # "[12:00] * Bob joined": an event, not a message
    return None


@dataclass
class _Pending:
    line: int
    header: _Header
    parts: list[str] = field(default_factory=list)


def _iter_text(lines: _Lines, ctx: _Context, whatsapp: bool | None) -> Iterator[Message | _BadRecord]:
    """One message per header line; following non-header lines continue it.

    The dialect is decided on the first non-blank line when not forced: WhatsApp exports are
    recognised by their date-and-time prefix and then only such prefixes start messages, so a
    line like "PS: see you" inside a WhatsApp message stays part of it.
    """
    pending: _Pending | None = None
    state = "start"  # start | message | system | orphan
    for number, text in lines:
        body = text.rstrip("\r\n")
        if whatsapp is None:
            if not body.strip():
                continue
            whatsapp = _whatsapp_header(body) is not None
        header = _whatsapp_header(body) if whatsapp else _plain_header(body)
        if header is None:
            if state == "message":
                assert pending is not None
                pending.parts.append(body)
            elif state == "start" and body.strip():
                state = "orphan"
                lines.first_bad(number, number)
                yield _BadRecord(
                    "text before the first message (expected 'Speaker: message')", number, raw=body
                )
            continue
        if pending is not None:
            yield _finish_text(pending, number - 1, lines, ctx)
            pending = None
        if header.speaker is None:
            state = "system"  # WhatsApp notices and log events are not messages
            lines.first_bad(number, number)
            continue
        pending = _Pending(number, header, [header.text])
        state = "message"
    if pending is not None:
        yield _finish_text(pending, lines.number, lines, ctx)


def _finish_text(pending: _Pending, end: int, lines: _Lines, ctx: _Context) -> Message | _BadRecord:
    parts = pending.parts
    if len(parts) > 1 and not parts[0].strip():
        parts.pop(0)  # "Alice:" alone, the message on the lines below
    while len(parts) > 1 and not parts[-1].strip():
        parts.pop()
    text = "\n".join(parts)
    header = pending.header
    try:
        _utf8_problem(lines, pending.line, end, text)
        if blank_text(text):
            raise _BadRecord("empty text", pending.line, "text", text)
    except _BadRecord as bad:
        return bad
    return Message(
        id=f"{ctx.source.stem}:{pending.line}",
        conversation_id=ctx.source.stem,
        speaker=header.speaker,
        text=text,
        reply_to=None,
        timestamp=header.timestamp,
        fields={"timestamp": header.timestamp, "speaker": header.speaker, "text": text},
        source=str(ctx.source.path),
        line=pending.line,
    )


