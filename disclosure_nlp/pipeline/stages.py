"""The stages a window of conversations goes through: read → label → analyse.

Each has one job and is driven by :class:`~disclosure_nlp.pipeline.runner.Runner`, one window
at a time (a window: complete conversations holding about ``window`` messages):

* :class:`Reader` streams the inputs as conversations, counts the messages read, skips (and
  checks) what an interrupted run already wrote, and hands out windows;
* :class:`Labeler` screens each message's language, caps its characters and classifies the
  window's messages in one ``predict_proba`` call;
* :class:`Analyzer` turns each labeled conversation into output rows and reciprocity figures.

Writing is :mod:`disclosure_nlp.pipeline.writers`' job. Nothing here touches a file but the inputs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, NamedTuple, Sequence

from ..errors import DataError
from ..io.transcripts import Message, Reject, iter_conversations, read_messages
from .checkpoint import ResumePoint
from .labeling import label_conversation, screen_languages
from .options import AnnotateOptions

Conversation = tuple[str, list[Message]]
"""A conversation id and all the messages read for it."""


class Labeled(NamedTuple):
    """A conversation after labeling: the messages kept (a rejected language drops one), their
    language codes and probability rows (``None`` for a message the model does not label)."""

    conversation_id: str
    read: list[Message]
    messages: list[Message]
    languages: list[str]
    probabilities: list[Any]


class Analysed(NamedTuple):
    """A conversation ready to write: its output rows (one per kept message) and its figures."""

    conversation_id: str
    messages: list[Message]
    rows: list[dict[str, Any]]
    figures: dict[str, Any]
    number: int
    """Its place among all the run's conversations (1-based), resumed ones included."""


# --------------------------------------------------------------------------------------------
# Read


def _conversations(streams: Sequence[tuple[Path, Iterator[Message]]], counter: list[int]) -> Iterator[Conversation]:
    """Conversations of all inputs in order; each file is grouped on its own."""
    for path, stream in streams:

        def checked(messages: Iterable[Message], path: Path = path) -> Iterator[Message]:
            last_line = [0]
            try:
                for message in messages:
                    last_line[0] = message.line
                    counter[0] += 1
                    yield message
            except RecursionError:
                # json.loads gives up on records nested thousands of levels deep.
                raise DataError(
                    f"a JSON record after line {last_line[0]} is nested too deeply to read",
                    path=path,
                ) from None

        yield from iter_conversations(checked(stream))


def _digest_update(digest: Any, conversation_id: str, messages: list[Message]) -> None:
    digest.update(f"{conversation_id}\x1f{len(messages)}\x1e".encode("utf-8", "backslashreplace"))
    for message in messages:
        digest.update(message.id.encode("utf-8", "backslashreplace") + b"\x1d")


class Reader:
    """Inputs → windows of conversations. Every input is checked when the reader is made
    (exists, format, gzip, binary), so a wrong path fails before the model loads.

    ``read`` counts the messages parsed; ``digest`` is the SHA-256 over the ids and sizes of
    the conversations handed out (and skipped) so far, which a checkpoint records.
    """

    def __init__(self, paths: Sequence[Path], options: AnnotateOptions, on_reject: Callable[[Reject], None]) -> None:
        self._streams = [
            (path, read_messages(path, format=options.format, columns=options.columns, on_error=options.on_error,
                                 on_reject=on_reject))
            for path in paths
        ]
        self._counter = [0]
        self.digest = hashlib.sha256()

    @property
    def read(self) -> int:
        return self._counter[0]

    def windows(self, size: int, resume: ResumePoint, on_mismatch: Callable[[], None]) -> Iterator[list[Conversation]]:
        """Windows of complete conversations of at least ``size`` messages (the last may be
        smaller), after the ``resume.skip`` conversations an interrupted run wrote. Those are
        read again, not handed out, and must be the same (else ``on_mismatch`` is called and
        the run refused)."""
        skip, digest = resume.skip, self.digest
        pending: list[Conversation] = []
        waiting = skipped = skipped_messages = 0
        for conversation_id, messages in _conversations(self._streams, self._counter):
            _digest_update(digest, conversation_id, messages)
            if skipped < skip:
                skipped += 1
                skipped_messages += len(messages)
                if skipped == skip and not resume.matches(skipped, skipped_messages, digest):
                    on_mismatch()
                    raise resume.mismatch()
                continue
            pending.append((conversation_id, messages))
            waiting += len(messages)
            if waiting >= size:
                yield pending
                pending, waiting = [], 0
        if skipped < skip and not resume.matches(skipped, skipped_messages, digest):
            on_mismatch()
            raise resume.mismatch()
        if pending:
            yield pending


# --------------------------------------------------------------------------------------------
# Label


class Labeler:
    """Windows → labeled conversations: language screening, the character cap, one model call.

    Counts what it saw: ``not_english`` messages (``language_rejected`` of them sent to the
    rejects), ``capped`` ones longer than ``max_chars`` (``first_capped`` says where the first is).
    """

    def __init__(self, classifier: Any, options: AnnotateOptions, on_reject: Callable[[Reject], None]) -> None:
        self._classifier = classifier
        self._batch_size = options.batch_size
        self._policy = options.language
        self._max_chars = options.max_chars
        self._on_reject = on_reject
        self.not_english = 0
        self.language_rejected = 0
        self.capped = 0
        self.first_capped: str | None = None

    def counts(self) -> dict[str, Any]:
        """What a checkpoint keeps of these counts, for a resumed run to start from."""
        return {"not_english": self.not_english, "language_rejected": self.language_rejected,
                "capped": self.capped, "first_capped": self.first_capped}

    def restore(self, counts: dict[str, Any]) -> None:
        """Start from a checkpoint's counts (the part already written is not screened again)."""
        for key in ("not_english", "language_rejected", "capped"):
            value = counts.get(key)
            setattr(self, key, value if isinstance(value, int) and value >= 0 else 0)
        first = counts.get("first_capped")
        self.first_capped = first if isinstance(first, str) else None

    def _unsupported(self) -> None:
        self.not_english += 1
        if self._policy == "reject":
            self.language_rejected += 1

    def _capped(self, message: Message) -> str:
        max_chars = self._max_chars
        if max_chars is None or len(message.text) <= max_chars:
            return message.text
        self.capped += 1
        if self.first_capped is None:
            self.first_capped = f"{message.source}, line {message.line}"
        return message.text[:max_chars]

    def label(self, window: list[Conversation]) -> list[Labeled]:
        screened = [screen_languages(messages, self._policy, self._on_reject, self._unsupported,
                                     max_chars=self._max_chars)
                    for _, messages in window]
        capped = self._capped
        texts = [capped(m) for kept, codes, labeled in screened for m, ok in zip(kept, labeled) if ok]
        probs = self._classifier.predict_proba(texts, batch_size=self._batch_size) if texts else []
        if hasattr(probs, "tolist"):
            probs = probs.tolist()
        out: list[Labeled] = []
        start = 0
        for (conversation_id, read), (messages, codes, labeled) in zip(window, screened):
            chunk = []
            for ok in labeled:
                chunk.append(probs[start] if ok else None)
                start += ok
            out.append(Labeled(conversation_id, read, messages, codes, chunk))
        return out


# --------------------------------------------------------------------------------------------
# Analyse


@dataclass
class Analyzer:
    """Labeled conversations → output rows and reciprocity figures (:func:`label_conversation`),
    numbered after the ``done`` conversations already written."""

    permutations: int
    done: int = 0

    def analyse(self, labeled: Iterable[Labeled]) -> Iterator[Analysed]:
        for item in labeled:
            rows, figures = label_conversation(item.conversation_id, item.messages, item.probabilities,
                                               permutations=self.permutations, languages=item.languages)
            self.done += 1
            yield Analysed(item.conversation_id, item.messages, rows, figures, self.done)
