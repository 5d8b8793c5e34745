"""The write stage: every file an annotation run writes.

Two small protocols, so that a new output plugs in here without touching the runner:

* a :class:`RunFile` is written conversation by conversation while the run goes (the output
  rows, the rejects, the figures side file). The runner opens it into the run's
  :class:`~contextlib.ExitStack`, calls ``write(conversation)``, records ``state()`` in each
  checkpoint, and calls ``finish(stats)`` once everything is read, before anything is committed;
  leaving the stack commits it.
* a :class:`RecordWriter` is written at the end from the figures side file, one
  :class:`~disclosure_nlp.records.ConversationRecord` at a time (the ``--summary`` document and
  the ``--report`` page), so memory does not grow with the number of conversations.

:func:`run_files` lists a run's files; the output first, as it is opened first and committed last.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

from ..errors import DataError
from ..io.outputs import (
    OutputError,
    WriterState,
    open_json_object,
    open_output,
    open_resumable,
    write_text_atomic,
)
from ..records import AnnotationSummary, ConversationRecord, SummaryKeys
from ..io.transcripts import Reject
from .checkpoint import remove_file
from .options import AnnotateOptions, PathLike, RunPlan
from .stages import Analysed


class RunFile:
    """A file written while the run goes; ``writer`` is ``None`` for one the run does not need."""

    state_key = ""
    """Where a checkpoint records this file's :class:`~disclosure_nlp.io.outputs.WriterState`."""
    writer: Any = None

    def open(self, stack: ExitStack, resume: WriterState | None) -> None:
        """Open the file into ``stack``, continued from ``resume`` when a run is resumed."""

    def write(self, conversation: Analysed) -> None:
        """Write what this file keeps of one analysed conversation."""

    def state(self) -> dict[str, Any] | None:
        """Flush to disk and say how far the file got, for the checkpoint."""
        return self.writer.mark().to_dict() if self.writer is not None else None

    def keep_partial(self) -> None:
        """From now on an error keeps the partial file, for ``resume``."""
        if self.writer is not None:
            self.writer.keep_partial = True

    def finish(self, stats: AnnotationSummary) -> None:
        """Everything is read and written; called before any file is committed."""


class RowsFile(RunFile):
    """The output: one row per message kept, its input fields then the annotation columns."""

    state_key = "output_state"

    def __init__(self, plan: RunPlan, force: bool) -> None:
        self._plan, self._force = plan, force

    def open(self, stack: ExitStack, resume: WriterState | None) -> None:
        plan = self._plan
        if plan.resumable:
            self.writer = stack.enter_context(open_resumable(plan.target, format=plan.fmt, force=self._force,
                                                             resume=resume))
        else:
            self.writer = stack.enter_context(open_output(plan.target, format=plan.fmt, force=self._force))

    def write(self, conversation: Analysed) -> None:
        out = self.writer
        for message, row in zip(conversation.messages, conversation.rows):
            try:
                out.write(row)
            except OutputError as err:
                raise DataError(
                    f"cannot be written to {self._plan.target.name}: {err.reason}",
                    path=message.source,
                    line=message.line,
                ) from None


class RejectsFile(RunFile):
    """The rejects: every record or message not written, reported by the read and label stages.

    ``count`` counts them all; the first ``already`` (those a resumed run finds in its file
    already) are not written again.
    """

    state_key = "rejects_state"

    def __init__(self, path: Path | None, resumable: bool, force: bool) -> None:
        self._path, self._resumable, self._force = path, resumable, force
        self.count = 0
        self.already = 0

    def open(self, stack: ExitStack, resume: WriterState | None) -> None:
        path = self._path
        if path is None:
            return
        if self._resumable:
            self.writer = stack.enter_context(open_resumable(path, format="jsonl", force=self._force, resume=resume))
        else:
            self.writer = stack.enter_context(open_output(path, format="jsonl", force=self._force))

    def report(self, reject: Reject) -> None:
        self.count += 1
        if self.count > self.already and self.writer is not None:
            self.writer.write(asdict(reject))


class FiguresFile(RunFile):
    """The side file of conversation figures (``.<output>.partial.figures``), kept off the heap
    for the record writers; the first ``limit`` conversations also keep the messages the report
    shows (their texts only when ``keep_messages`` is true). Never committed: removed at the end.
    """

    state_key = "figures_state"

    def __init__(self, plan: RunPlan, keep_figures: bool, keep_messages: bool | None, limit: int,
                 record_writers: list[RecordWriter]) -> None:
        self._plan, self._keep, self._keep_messages, self._limit = plan, keep_figures, keep_messages, limit
        self._record_writers = record_writers

    def open(self, stack: ExitStack, resume: WriterState | None) -> None:
        if not self._keep:
            return
        partial = self._plan.figures_partial
        if self._plan.resumable:
            self.writer = stack.enter_context(
                open_resumable(partial, format="jsonl", partial=partial, check=False, resume=resume))
        else:  # never resumed
            stack.callback(remove_file, partial)
            self.writer = stack.enter_context(open_resumable(partial, format="jsonl", partial=partial, check=False))

    def write(self, conversation: Analysed) -> None:
        if self.writer is None:
            return
        record = ConversationRecord(conversation.conversation_id, conversation.figures)
        keep_messages = self._keep_messages
        if keep_messages is not None and conversation.number <= self._limit:
            record.messages = [
                {"id": m.id, "speaker": m.speaker, "text": m.text if keep_messages else None,
                 "layer": r["layer"], "depth": r["depth"], "timestamp": m.timestamp}
                for m, r in zip(conversation.messages, conversation.rows)
            ]
        self.writer.write(asdict(record))

    def finish(self, stats: AnnotationSummary) -> None:
        if self.writer is None:
            return
        # Before the output is committed: a failure here (a full disk) keeps every partial
        # file and the checkpoint, and --resume only has to write these.
        if self._record_writers:
            partial, end = self._plan.figures_partial, self.writer.mark().offset
            write_records(lambda: read_records(partial, end), self._record_writers, stats)
        self.writer.discard()


# --------------------------------------------------------------------------------------------
# Record writers: the summary and the report


class RecordWriter(Protocol):
    def open(self, stack: ExitStack) -> None: ...

    def write(self, record: ConversationRecord) -> None: ...

    def finish(self, stats: AnnotationSummary) -> None:
        """After the last record, inside the block (its file may be written now)."""

    def done(self, stats: AnnotationSummary) -> None:
        """After the block: every record writer's file is in place."""


class SummaryWriter:
    """The ``--summary`` JSON document, written entry by entry (keys as :class:`SummaryKeys` gives)."""

    def __init__(self, path: PathLike, force: bool) -> None:
        self._path, self._force = path, force
        self._keys = SummaryKeys()

    def open(self, stack: ExitStack) -> None:
        self._out = stack.enter_context(open_json_object(self._path, force=self._force))

    def write(self, record: ConversationRecord) -> None:
        self._out.add(self._keys.key(record.conversation_id), record.figures)

    def finish(self, stats: AnnotationSummary) -> None:
        pass

    def done(self, stats: AnnotationSummary) -> None:
        stats.summary_path = str(self._path)


class ReportWriter:
    """The ``--report`` HTML page, from a bounded :class:`~disclosure_nlp.analysis.report.ReportBuilder`."""

    def __init__(self, path: PathLike, force: bool) -> None:
        self._path, self._force = path, force

    def open(self, stack: ExitStack) -> None:
        from ..analysis.report import ReportBuilder

        self._builder = ReportBuilder()

    def write(self, record: ConversationRecord) -> None:
        self._builder.add(record)

    def finish(self, stats: AnnotationSummary) -> None:
        write_text_atomic(self._path, self._builder.render(stats), force=self._force)
        stats.report_path = str(self._path)

    def done(self, stats: AnnotationSummary) -> None:
        pass


def write_records(records: Callable[[], Iterator[ConversationRecord]], writers: list[RecordWriter],
                  stats: AnnotationSummary) -> None:
    """Stream the run's conversations once into every record writer.

    None holds them whole. Their files are written to partial files and moved into place
    together at the end, so none appears without the others.
    """
    with ExitStack() as stack:
        for writer in writers:
            writer.open(stack)
        for record in records():
            for writer in writers:
                writer.write(record)
        for writer in writers:
            writer.finish(stats)
    for writer in writers:
        writer.done(stats)


def read_records(partial: Path, offset: int) -> Iterator[ConversationRecord]:
    """The figures file's conversations, one at a time, up to ``offset`` bytes."""
    import json

    size = 0
    with partial.open("rb") as handle:
        for raw in handle:  # binary lines split at b"\n" only: a text may hold U+2028
            size += len(raw)
            if size > offset:
                break
            try:
                row = json.loads(raw)
                yield ConversationRecord(row["conversation_id"], row["figures"], row.get("messages") or [])
            except (ValueError, KeyError, TypeError):
                raise DataError(f"the figures file {partial.name} is damaged; start over without resume",
                                path=partial) from None


def run_files(plan: RunPlan, options: AnnotateOptions, rejects: RejectsFile, *, keep_figures: bool,
              keep_messages: bool | None, report_conversations: int) -> list[RunFile]:
    """The files of a run, in the order they are opened: output, rejects, figures (whose records
    feed the summary and the report at the end)."""
    record_writers: list[RecordWriter] = []
    if options.summary is not None:
        record_writers.append(SummaryWriter(options.summary, options.force))
    if options.report is not None:
        record_writers.append(ReportWriter(options.report, options.force))
    figures = FiguresFile(plan, keep_figures, keep_messages, report_conversations, record_writers)
    return [RowsFile(plan, options.force), rejects, figures]
