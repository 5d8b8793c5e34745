"""Readers of record formats, one record per line: JSON Lines and CSV/TSV.

Each record becomes one :class:`~.transcript_base.Message` through :func:`_build`, the one place
that maps a record's keys to a message's fields, so every format names a missing or bad field the
same way (file, line, field). Parquet, whose records come in batches, uses :func:`_build` too.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Iterator

from ..errors import DataError
from .values import OWN_CSV_COLUMNS, csv_unguard
from .transcript_base import (
    _MISSING,
    Message,
    _BadRecord,
    _Context,
    _identifier,
    _Lines,
    _lookup,
    _type_name,
    _utf8_problem,
    blank_text,
)
def _build(record: dict[str, Any], line: int, ctx: _Context, raw: str) -> Message:
    name, text = _lookup(record, ctx.keys["text"])
    if text is _MISSING:
        raise _BadRecord("missing text", line, name, raw)
    if not isinstance(text, str):
        raise _BadRecord(f"expected text, got {_type_name(text)}", line, name, raw)
    if blank_text(text):
        raise _BadRecord("empty text", line, name, raw)

    def part(attr: str) -> str | None:
        used, value = _lookup(record, ctx.keys[attr])
        if value is _MISSING and attr in ctx.required:
            raise _BadRecord("missing field", line, used, raw)
        try:
            return _identifier(value, used, line)
        except _BadRecord as bad:
            bad.raw = raw
            raise

    message_id = part("id") or f"{ctx.source.stem}:{line}"
    conversation = part("conversation") or ctx.source.stem
    speaker = part("speaker")
    reply_to = part("reply_to")
    timestamp = part("time")
    return Message(
        id=message_id,
        conversation_id=conversation,
        speaker=speaker,
        text=text,
        reply_to=reply_to,
        timestamp=timestamp,
        fields=record,
        source=str(ctx.source.path),
        line=line,
    )


def _iter_jsonl(lines: _Lines, ctx: _Context) -> Iterator[Message | _BadRecord]:
    first = True
    for number, text in lines:
        body = text.strip()
        if not body:
            continue
        is_first, first = first, False
        try:
            _utf8_problem(lines, number, number, body)
            try:
                record = json.loads(body)
            except json.JSONDecodeError as err:
                if is_first and (body in ("[", "{") or body.startswith("[")):
                    _not_json_lines(ctx.source.path, number)
                if err.pos >= len(body) or err.msg.startswith("Unterminated string"):
                    raise _BadRecord(
                        "not valid JSON: the record ends early (cut-off line?)", number, raw=body
                    ) from None
                raise _BadRecord(
                    f"not valid JSON ({err.msg} at column {err.colno})", number, raw=body
                ) from None
            except ValueError as err:  # an integer of over 4,300 digits
                raise _BadRecord(f"not readable JSON ({str(err).split(';')[0][:100]})", number, raw=body) from None
            if is_first and isinstance(record, list) and record and all(
                isinstance(item, dict) for item in record
            ):
                _not_json_lines(ctx.source.path, number)
            if not isinstance(record, dict):
                raise _BadRecord(f"expected a JSON object, got {_type_name(record)}", number, raw=body)
            yield _build(record, number, ctx, body)
        except _BadRecord as bad:
            yield bad


def _not_json_lines(path: Path, line: int) -> None:
    raise DataError(
        "looks like a JSON array or pretty-printed JSON; expected JSON Lines (one object per "
        "line), e.g. convert with: jq -c '.[]'",
        path=path,
        line=line,
    )


def _iter_delimited(lines: _Lines, ctx: _Context, delimiter: str) -> Iterator[Message | _BadRecord]:
    path = ctx.source.path
    reader = csv.reader((text for _, text in lines), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    own = False
    header_line = 1
    end = 0
    while True:
        start = end + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            end = reader.line_num
            if header is None:
                raise DataError(f"the header row is not valid CSV ({err})", path=path, line=start) from None
            yield _BadRecord(_csv_reason(err, start), start)
            continue
        end = reader.line_num
        if own:  # the quote csv_safe put before =, +, -, @ in a file this tool wrote
            row = [csv_unguard(cell) for cell in row]
        raw = delimiter.join(row)
        if header is None:
            if not row or all(not cell.strip() for cell in row):
                continue
            if lines.first_bad(start, end) is not None:
                raise DataError("the header row is not valid UTF-8", path=path, line=start)
            header, header_line = [name.strip() for name in row], start
            _check_header(header, header_line, ctx)
            own = OWN_CSV_COLUMNS <= set(header)
            continue
        if not row or all(not cell.strip() for cell in row):
            lines.first_bad(start, end)
            continue
        try:
            _utf8_problem(lines, start, end, raw)
            if len(row) != len(header):
                raise _BadRecord(f"has {len(row)} cells but the header has {len(header)}", start, raw=raw)
            yield _build(dict(zip(header, row)), start, ctx, raw)
        except _BadRecord as bad:
            yield bad


def _csv_reason(err: csv.Error, start: int) -> str:
    text = str(err)
    if "field larger than field limit" in text:
        return (
            f"a cell is longer than {csv.field_size_limit()} characters: probably a quote "
            f"opened in the record at line {start} that is never closed"
        )
    if "unexpected end of data" in text:
        return "the file ends inside a quoted cell: a quote is never closed"
    return f"not valid CSV ({text}); a quote inside a cell must be doubled and the cell quoted"


def _check_header(header: list[str], line: int, ctx: _Context) -> None:
    path = ctx.source.path
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise DataError("column appears twice in the header", path=path, line=line, field=name)
        seen.add(name)
    cols = ctx.columns
    for attr in ["text", *sorted(ctx.required)]:
        name = getattr(cols, attr)
        if name not in seen:
            shown = ", ".join(header[:20]) + (", …" if len(header) > 20 else "")
            raise DataError(
                f"column missing from the header (it has: {shown})", path=path, line=line, field=name
            )
