"""The project's own error types.

Every failure a user can cause with a file (bad rows, bad model directories) is raised as a
:class:`DisclosureError`, so callers and the CLI can tell "your input is wrong, here is where"
from a bug. Messages name places (file, line, field), never message contents beyond a short,
clearly marked excerpt, because transcripts are sensitive.
"""

from __future__ import annotations

from pathlib import Path

EXCERPT_CHARS = 40


def excerpt(text: object, limit: int = EXCERPT_CHARS) -> str:
    """A short, clearly marked excerpt of user content for error messages."""
    value = str(text)
    if len(value) > limit:
        value = value[:limit] + "…"
    return f"[excerpt: {value!r}]"


class DisclosureError(Exception):
    """Base class of errors caused by user input rather than by the code."""


class DataError(DisclosureError, ValueError):
    """A problem in an input file, located by file, line (1-based) and field."""

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = str(path) if path is not None else None
        self.line = line
        self.field = field
        self.reason = message
        super().__init__(self._render())

    def _render(self) -> str:
        place = []
        if self.path is not None:
            place.append(self.path)
        if self.line is not None:
            place.append(f"line {self.line}")
        if self.field is not None:
            place.append(f"field '{self.field}'")
        prefix = ", ".join(place)
        return f"{prefix}: {self.reason}" if prefix else self.reason


class ModelError(DisclosureError):
    """A model directory that cannot be loaded safely or is incomplete."""
