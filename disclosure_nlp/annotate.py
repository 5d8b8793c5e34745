"""Batch annotation of transcripts: every message labeled, every conversation analysed.

The input is streamed conversation by conversation (see :func:`transcripts.iter_conversations`);
complete conversations are buffered until about ``window`` messages are waiting, classified in
one go (the classifier sorts them by length into batches and returns them in input order), then
analysed for reciprocity and written out in input order. Memory therefore depends on the window
and on the longest conversation, not on the size of the file.

Every message read is either written (once, with all its input fields) or reported as a reject,
and the closing :class:`AnnotationSummary` says so: ``read == written + rejected``. Outputs go to
temporary files renamed into place only on success (:mod:`disclosure_nlp.outputs`), so a crash
never leaves a half-written file under the target's name.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from .errors import DisclosureError
from .layers import LAYERS
from .transcripts import ColumnMap, Message, Reject, iter_conversations, read_messages

ANNOTATION_FIELDS: tuple[str, ...] = (
    "layer",
    "confidence",
    *(f"p_{name}" for name in LAYERS),
    "depth",
    "turn",
    "prompt_turn",
    "depth_gap",
    "match",
)
"""Columns added to every message, in this order, after its input fields."""
INPUT_PREFIX = "input_"
DEFAULT_WINDOW = 1024
REPORT_CONVERSATION_LIMIT = 200
DIGITS = 4


@dataclass
class AnnotationSummary:
    """What an annotation run did; ``read == written + rejected`` always holds."""

    read: int = 0
    written: int = 0
    rejected: int = 0
    conversations: int = 0
    seconds: float = 0.0
    output: str | None = None
    rejects_path: str | None = None
    summary_path: str | None = None
    report_path: str | None = None

    @property
    def messages_per_second(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        return (
            f"read {self.read} messages, wrote {self.written}, rejected {self.rejected} "
            f"({self.conversations} conversations, {self.seconds:.1f} s, "
            f"{self.messages_per_second:.0f} messages/s)"
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


def output_row(message: Message, annotation: dict[str, Any]) -> dict[str, Any]:
    """The input fields, untouched, then the annotation columns.

    An input field whose name clashes with an annotation column (a gold ``layer``, say) is kept
    under ``input_<name>`` so that nothing the user supplied is lost or overwritten.
    """
    row: dict[str, Any] = {}
    for key, value in message.fields.items():
        row[INPUT_PREFIX + key if key in annotation else key] = value
    row.update(annotation)
    return row


def _annotation(probabilities, reciprocity: dict[str, Any]) -> dict[str, Any]:
    values = [round(float(p), DIGITS) for p in probabilities]
    best = max(range(len(values)), key=values.__getitem__)
    depth = round(sum(i * float(p) for i, p in enumerate(probabilities)), DIGITS)
    out: dict[str, Any] = {"layer": LAYERS[best], "confidence": values[best]}
    out.update({f"p_{name}": value for name, value in zip(LAYERS, values)})
    out["depth"] = min(3.0, max(0.0, depth))
    out.update({key: reciprocity.get(key) for key in ("turn", "prompt_turn", "depth_gap", "match")})
    return out


def _conversations(
    inputs: Sequence[Path],
    *,
    format: str | None,
    columns: ColumnMap,
    on_error: str,
    on_reject: Callable[[Reject], None],
    counter: list[int],
) -> Iterator[tuple[str, list[Message]]]:
    """Conversations of all inputs in order; each file is grouped on its own."""
    for path in inputs:
        stream = read_messages(path, format=format, columns=columns, on_error=on_error, on_reject=on_reject)

        def counted(messages: Iterable[Message]) -> Iterator[Message]:
            for message in messages:
                counter[0] += 1
                yield message

        yield from iter_conversations(counted(stream))


def label_conversation(
    conversation_id: str,
    messages: list[Message],
    probabilities,
    *,
    permutations: int = 1000,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Output rows and reciprocity figures for one conversation whose messages are classified."""
    from .reciprocity import analyze_conversation, message_fields

    labeled = []
    for message, probs in zip(messages, probabilities):
        best = max(range(len(LAYERS)), key=lambda i: probs[i])
        labeled.append(
            {
                "id": message.id,
                "speaker": message.speaker if message.speaker is not None else "(unknown)",
                "layer": LAYERS[best],
                "depth": min(3.0, max(0.0, float(sum(i * float(p) for i, p in enumerate(probs))))),
                "reply_to": message.reply_to,
            }
        )
    result = analyze_conversation(labeled, conversation_id, permutations=permutations)
    per_message = message_fields(result)
    rows = [output_row(m, _annotation(p, per_message.get(m.id, {}))) for m, p in zip(messages, probabilities)]
    figures = result.to_dict()
    figures.pop("turns", None)
    return rows, figures


def annotate(
    inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    model: str | os.PathLike[str] | None = None,
    classifier=None,
    format: str | None = None,
    output_format: str | None = None,
    columns: ColumnMap = ColumnMap(),
    on_error: str = "raise",
    rejects: str | os.PathLike[str] | None = None,
    summary: str | os.PathLike[str] | None = None,
    report: str | os.PathLike[str] | None = None,
    report_text: bool = True,
    batch_size: int = 32,
    window: int = DEFAULT_WINDOW,
    permutations: int = 1000,
    force: bool = False,
    progress: bool = False,
) -> AnnotationSummary:
    """Label every message of ``inputs`` and write them, with reciprocity fields, to ``output``.

    ``summary`` writes one JSON document keyed by conversation id with the conversation
    figures; ``report`` a self-contained HTML page. With ``on_error="skip"`` bad records go to
    ``rejects`` (default ``<output>.rejects.jsonl``) instead of stopping the run.
    """
    from .outputs import open_output, write_json_atomic

    paths = [Path(inputs)] if isinstance(inputs, (str, os.PathLike)) else [Path(p) for p in inputs]
    if not paths:
        raise DisclosureError("no input files given")
    target = Path(output)
    extras = [Path(p) for p in (summary, report) if p is not None]
    for path in extras:
        if path.exists() and not force:
            raise DisclosureError(f"{path} already exists; pass --force to overwrite it")
    rejects_path = Path(rejects) if rejects else (target.with_name(target.name + ".rejects.jsonl") if on_error == "skip" else None)
    if classifier is None:
        from .classifier import DisclosureClassifier

        classifier = DisclosureClassifier.load(model)

    stats = AnnotationSummary(output=str(target), rejects_path=str(rejects_path) if rejects_path else None)
    records: list[ConversationRecord] = []
    started = time.perf_counter()
    counter = [0]
    bar = _progress(progress)

    with open_output(target, format=output_format, force=force) as out, _rejects_writer(rejects_path, force) as reject_out, bar:
        task = bar.add_task("annotating", total=None, rate="")

        def on_reject(reject: Reject) -> None:
            stats.rejected += 1
            reject_out.write(asdict(reject))

        def flush(pending: list[tuple[str, list[Message]]]) -> None:
            texts = [m.text for _, messages in pending for m in messages]
            probs = classifier.predict_proba(texts, batch_size=batch_size)
            start = 0
            for conversation_id, messages in pending:
                chunk = probs[start : start + len(messages)]
                start += len(messages)
                rows, figures = label_conversation(conversation_id, messages, chunk, permutations=permutations)
                out.write_many(rows)
                stats.written += len(rows)
                stats.conversations += 1
                if summary is None and report is None:
                    continue
                record = ConversationRecord(conversation_id, figures)
                if report is not None and len(records) < REPORT_CONVERSATION_LIMIT:
                    record.messages = [
                        {"id": m.id, "speaker": m.speaker, "text": m.text if report_text else None,
                         "layer": r["layer"], "depth": r["depth"], "timestamp": m.timestamp}
                        for m, r in zip(messages, rows)
                    ]
                records.append(record)
            elapsed = time.perf_counter() - started
            bar.update(task, completed=stats.written, rate=f"{stats.written / elapsed:.0f} msg/s" if elapsed else "")

        pending: list[tuple[str, list[Message]]] = []
        waiting = 0
        for conversation_id, messages in _conversations(
            paths, format=format, columns=columns, on_error=on_error, on_reject=on_reject, counter=counter
        ):
            pending.append((conversation_id, messages))
            waiting += len(messages)
            if waiting >= window:
                flush(pending)
                pending, waiting = [], 0
        if pending:
            flush(pending)
        stats.read = counter[0] + stats.rejected
        stats.seconds = time.perf_counter() - started

    if stats.read != stats.written + stats.rejected:  # pragma: no cover - an invariant, not a branch
        raise AssertionError(f"lost messages: read {stats.read}, written {stats.written}, rejected {stats.rejected}")
    if summary is not None:
        write_json_atomic(summary, {r.conversation_id: r.figures for r in records}, force=force)
        stats.summary_path = str(summary)
    if report is not None:
        from .outputs import write_text_atomic
        from .report import render_report

        write_text_atomic(report, render_report(records, stats), force=force)
        stats.report_path = str(report)
    return stats


class _NullWriter:
    def __enter__(self) -> "_NullWriter":
        return self

    def __exit__(self, *exc: Any) -> bool:
        return False

    def write(self, row: dict[str, Any]) -> None:
        pass


def _rejects_writer(path: Path | None, force: bool):
    from .outputs import open_output

    return open_output(path, format="jsonl", force=force) if path is not None else _NullWriter()


def _progress(enabled: bool):
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed} messages"),
        TextColumn("[cyan]{task.fields[rate]}"),
        TimeElapsedColumn(),
        disable=not enabled,
        transient=False,
    )
