"""How figures are written out: rounded to four digits, so that a file diffs cleanly across runs
and machines (floating-point sums differ in the last bits with thread count and BLAS).

One place for the rule, so reciprocity, matching, baseline and corpus files round alike.
"""

from __future__ import annotations

from typing import Any, Container, Iterable

ROUND_DIGITS: int = 4


def rounded(value: Any) -> Any:
    """``value`` rounded; ``None`` stays ``None``, an int stays an int, and a NumPy float becomes a
    Python float (JSON writers accept only the latter)."""
    if value is None:
        return None
    return round(value if isinstance(value, int) else float(value), ROUND_DIGITS)


def fields_dict(record: Any, names: Iterable[str], *, rounded_names: Container[str]) -> dict[str, Any]:
    """The named attributes of ``record`` in order, the figures among them rounded."""
    return {name: rounded(getattr(record, name)) if name in rounded_names else getattr(record, name)
            for name in names}
