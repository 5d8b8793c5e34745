"""Timestamps as chat exports and tables write them, read into datetimes for the ordering
checks and the per-speaker timing figures; a value that cannot be read gives ``None``, never an
error, because a timestamp is an optional field of a message.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from typing import Any

# Direction marks and a byte-order mark that WhatsApp and copy-paste put around dates and names.
_MARKS = "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\ufeff"

_WHATSAPP_STAMP = re.compile(
    r"(?P<a>\d{1,4})(?P<sep>[./-])(?P<b>\d{1,2})[./-](?P<c>\d{1,4}),?\s+"
    r"(?P<h>\d{1,2})[:.](?P<mi>\d{2})(?:[:.](?P<s>\d{2}))?"
    r"(?:\s*(?P<ampm>[AaPp])\.?\s?[Mm]\.?)?"
)


def parse_timestamp(value: Any, *, dayfirst: bool | None = None) -> datetime | None:
    """Best-effort datetime for a timestamp kept as text; ``None`` when it cannot tell.

    Readers keep timestamps as the strings they found because chat exports use many locale
    formats and a wrong guess would be worse than none; this helper is for the analyses that do
    need time. It understands ISO 8601, Unix epoch numbers (seconds, or milliseconds when
    larger than 1e11; returned in UTC) and WhatsApp's ``12/31/23, 9:41 PM`` /
    ``31.12.23, 21:41`` / ``31/12/2023, 21:41:05`` shapes. Day-month order comes from
    ``dayfirst`` when given; otherwise a part above 12 decides, then the convention of the
    shape (``.`` dates and 24-hour ``/`` dates are day-first, 12-hour ``/`` dates month-first).
    Two-digit years are 20xx. It never raises.
    """
    try:
        return _parse_timestamp(value, dayfirst)
    except (ValueError, OverflowError, OSError, TypeError):
        return None


def _parse_timestamp(value: Any, dayfirst: bool | None) -> datetime | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return _from_epoch(float(value))
    if not isinstance(value, str):
        return None
    text = value.strip(_MARKS + " \t\r\n").replace("\u202f", " ").replace("\u00a0", " ")
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    if re.fullmatch(r"\d{9,}(\.\d+)?", text):  # epoch seconds since 1973, or milliseconds
        return _from_epoch(float(text))
    match = _WHATSAPP_STAMP.fullmatch(text)
    if match is None:
        return None
    a, b, c = match.group("a", "b", "c")
    if len(a) == 4:
        year, month, day = int(a), int(b), int(c)
    else:
        year = int(c) + (2000 if len(c) <= 2 else 0)
        first, second = int(a), int(b)
        if dayfirst is None:
            if first > 12:
                dayfirst = True
            elif second > 12:
                dayfirst = False
            else:
                dayfirst = match.group("sep") != "/" or match.group("ampm") is None
        day, month = (first, second) if dayfirst else (second, first)
    hour, minute = int(match.group("h")), int(match.group("mi"))
    second_ = int(match.group("s") or 0)
    ampm = match.group("ampm")
    if ampm is not None:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if ampm in "Pp" else 0)
    return datetime(year, month, day, hour, minute, second_)


def _from_epoch(seconds: float) -> datetime | None:
    if not math.isfinite(seconds) or seconds < 0:
        return None
    if seconds > 1e11:
        seconds /= 1000.0
    return datetime.fromtimestamp(seconds, tz=timezone.utc)
