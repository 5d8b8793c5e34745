"""The records an annotation run produces, shared by the run and by what renders its results.

:mod:`disclosure_nlp.annotate` makes them, and :mod:`disclosure_nlp.analysis.report` and the Ray engine
read them; keeping them here, below all three, is what lets each import them without importing
each other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

__all__ = ["AnnotationSummary", "ConversationRecord", "SummaryKeys", "summary_document"]


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


@dataclass
class AnnotationSummary:
    """What an annotation run did; ``read == written + rejected`` always holds.

    After a resumed run the counts cover the whole input, as if it had not been interrupted;
    ``resumed_conversations`` says how many conversations the interrupted run had written.
    """

    read: int = 0
    written: int = 0
    rejected: int = 0
    conversations: int = 0
    seconds: float = 0.0
    output: str | None = None
    rejects_path: str | None = None
    summary_path: str | None = None
    report_path: str | None = None
    resumed_conversations: int = 0
    not_english: int = 0
    """Messages found not in English: marked, rejected or labeled anyway, as ``language`` says."""
    capped: int = 0
    """Messages longer than ``max_chars``: labeled on their first ``max_chars`` characters."""
    first_capped: str | None = None
    """Where the first capped message is (file and line), for the user to look at."""

    @property
    def messages_per_second(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        return (
            f"read {_plural(self.read, 'message')}, wrote {self.written}, rejected {self.rejected} "
            f"({_plural(self.conversations, 'conversation')}, {self.seconds:.1f} s, "
            f"{self.messages_per_second:.0f} messages/s)"
            + (f"; {self.not_english} not in English" if self.not_english else "")
            + (f"; {self.capped} longer than the character cap, labeled on their beginning "
               f"(first: {self.first_capped})" if self.capped else "")
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ConversationRecord:
    """One analysed conversation, kept for the summary file and the HTML report."""

    conversation_id: str
    figures: dict[str, Any]
    messages: list[dict[str, Any]] = field(default_factory=list)
    """Per message: id, speaker, text, layer, depth (only for conversations shown in the report)."""


class SummaryKeys:
    """The key of each conversation in the ``--summary`` document, handed out one at a time.

    Conversation ids are unique within a file, not across files (two exports may both hold
    ``c1``, and a file without ids names its one conversation after the file's stem), so a
    repeated id gets ``#2``, ``#3``… in the order the inputs were read instead of overwriting
    the earlier conversation's figures. The keys given so far are the only state: the summary
    itself is written as it goes, never held.
    """

    def __init__(self) -> None:
        self._used: set[str] = set()
        self._seen: dict[str, int] = {}

    def key(self, conversation_id: str) -> str:
        key = conversation_id
        while key in self._used:
            self._seen[conversation_id] = self._seen.get(conversation_id, 1) + 1
            key = f"{conversation_id}#{self._seen[conversation_id]}"
        self._used.add(key)
        return key


def summary_document(conversations: Iterable[tuple[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """The ``--summary`` document as one dict (conversation id → figures, in input order), for
    callers that hold the figures anyway (the Ray engine); keys as :class:`SummaryKeys` gives."""
    keys = SummaryKeys()
    return {keys.key(conversation_id): figures for conversation_id, figures in conversations}
