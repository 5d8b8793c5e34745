"""How one value is written in each output format.

Values that JSON cannot hold are normalised the way pandas does (NaN and infinities become
``null``, datetimes ISO 8601 strings, NumPy scalars plain numbers), and a CSV text cell that a
spreadsheet would run as a formula is defused (:func:`csv_safe`); :func:`csv_unguard` undoes it
when the project reads its own CSV back.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from pathlib import Path
from typing import Any, Mapping




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

