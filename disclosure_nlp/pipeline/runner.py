"""The runner: joins read → label → analyse → write, one window at a time.

It owns what spans the stages: the model (loaded only once the inputs and the checkpoint are
checked), resume (where to start, refusing a checkpoint of another run), a checkpoint after
every window, the progress bar, the closing counts, and what an error leaves behind (see
:mod:`disclosure_nlp.annotate`). Its only work between windows is the checkpoint and the bar.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from typing import Any

from ..errors import DisclosureError
from ..io.outputs import remove_checkpoint, write_checkpoint
from ..records import AnnotationSummary
from .checkpoint import (
    CHECKPOINT_VERSION,
    ResumePoint,
    Saved,
    backend_name,
    check_same_backend,
    forget_interrupted_run,
    input_identity,
    model_identity,
    read_saved,
    resume_point,
)
from .options import AnnotateOptions, RunPlan
from .stages import Analyzer, Labeler, Reader
from .writers import RejectsFile, RunFile, run_files


def load_classifier(model: Any, backend: str, plan: RunPlan, saved: dict[str, Any] | None):
    """The model, on the backend named, or on a resumed run's backend when ``auto`` is asked."""
    from ..model.backends import AUTO, BACKENDS, check_backend_name
    from ..model.classifier import DisclosureClassifier

    # A backend named outright can be refused before the model loads. "auto" continues on the
    # backend that computed the rows already written, whatever it would pick today: a run
    # started before annotate defaulted to auto (or on a machine without ONNX Runtime) ran
    # torch, and one file must not mix two backends' labels.
    if saved is not None and isinstance(saved.get("backend"), str):
        if check_backend_name(backend) == AUTO and saved["backend"] in BACKENDS:
            backend = saved["backend"]
        check_same_backend(saved, backend, plan.checkpoint, plan.target)
    return DisclosureClassifier.load(model, backend=backend)


class Runner:
    """One annotation run of ``plan`` with ``options``; :meth:`run` does it once."""

    def __init__(self, plan: RunPlan, options: AnnotateOptions, *, model: Any = None, classifier: Any = None,
                 report_conversations: int) -> None:
        self.plan, self.options = plan, options
        self._model, self._classifier = model, classifier
        self._report_conversations = report_conversations
        self._files: list[RunFile] = []
        self._preserve = False

    def run(self) -> AnnotationSummary:
        plan, options = self.plan, self.options
        stats = AnnotationSummary(output=str(plan.target),
                                  rejects_path=str(plan.rejects_path) if plan.rejects_path else None)
        rejects = RejectsFile(plan.rejects_path, plan.resumable, options.force)
        # Every input is checked now (exists, format, gzip, binary): a wrong path costs a second.
        reader = Reader(plan.inputs, options, rejects.report)
        identities = [input_identity(path) for path in plan.inputs] if plan.resumable else []
        saved = read_saved(plan, options, identities)
        classifier = self._classifier
        if classifier is None:
            classifier = load_classifier(self._model, options.backend, plan, saved.data)
        model_id, backend = model_identity(classifier), backend_name(classifier)
        resume = resume_point(plan, saved, model_id, backend)
        rejects.already = resume.rejected
        stats.written = resume.written
        stats.conversations = stats.resumed_conversations = resume.skip
        self._files = run_files(plan, options, rejects, keep_figures=saved.keep_figures,
                                keep_messages=saved.keep_messages, report_conversations=self._report_conversations)
        head = {
            "version": CHECKPOINT_VERSION,
            "output": plan.target.name,
            "output_format": plan.fmt,
            "inputs": identities,
            "options": options.checkpoint_options(plan.rejects_path),
            "model": model_id,
            "backend": backend,
            "figures": saved.keep_figures,
            "report_messages": saved.keep_messages,
        }
        labeler = Labeler(classifier, options, rejects.report)
        labeler.restore(resume.screened)
        # The part already written is read again (its bad records reported again, and not
        # written twice) but not screened again: its language rejects count from the start.
        rejects.count = labeler.language_rejected
        return self._run(stats, reader, labeler, resume, saved, head, rejects)

    def _run(self, stats: AnnotationSummary, reader: Reader, labeler: Labeler, resume: ResumePoint, saved: Saved,
             head: dict[str, Any], rejects: RejectsFile) -> AnnotationSummary:
        """Open every file, annotate window by window, finish; an error leaves what it should."""
        plan, options, files = self.plan, self.options, self._files
        analyzer = Analyzer(options.permutations, done=resume.skip)
        started = time.perf_counter()
        bar = _progress(options.progress)
        opened = finishing = False
        try:
            with ExitStack() as stack:
                for file in files:
                    file.open(stack, resume.states.get(file.state_key))
                if plan.resumable and saved.data is None:  # a killed run's leftovers, replaced now that our files are locked
                    forget_interrupted_run(plan.checkpoint, plan.figures_partial if not saved.keep_figures else None,
                                           plan.rejects_path)
                opened = True
                stack.enter_context(bar)
                task = bar.add_task("annotating", total=None, rate="")
                for window in reader.windows(options.window, resume, self._keep_partial_files):
                    for conversation in analyzer.analyse(labeler.label(window)):
                        for file in files:
                            file.write(conversation)
                        stats.written += len(conversation.rows)
                        stats.conversations += 1
                    if plan.resumable:
                        self._save_checkpoint(head, stats, reader, labeler)
                    elapsed = time.perf_counter() - started
                    bar.update(task, completed=stats.written,
                               rate=f"{stats.written / elapsed:.0f} msg/s" if elapsed else "")
                self._count(stats, reader, labeler, rejects, started)
                finishing = True
                if plan.resumable:
                    for file in files:
                        file.keep_partial()
                for file in files:
                    file.finish(stats)
            # Leaving the block committed the rejects, then the output (each by rename).
            if plan.resumable:
                remove_checkpoint(plan.checkpoint)
        except DisclosureError:
            if plan.resumable and opened and not finishing and not self._preserve:
                remove_checkpoint(plan.checkpoint)  # the partial files were removed: nothing to resume
            raise
        return stats

    def _keep_partial_files(self) -> None:
        """The inputs changed under a resumed run: keep the interrupted run's files, for the
        inputs may be restored and resumed."""
        self._preserve = True
        for file in self._files:
            file.keep_partial()

    def _save_checkpoint(self, head: dict[str, Any], stats: AnnotationSummary, reader: Reader, labeler: Labeler) -> None:
        write_checkpoint(self.plan.checkpoint, {
            **head,
            "conversations": stats.conversations,
            "written": stats.written,
            "digest": reader.digest.hexdigest(),
            "screened": labeler.counts(),
            **{file.state_key: file.state() for file in self._files},
        })

    @staticmethod
    def _count(stats: AnnotationSummary, reader: Reader, labeler: Labeler, rejects: RejectsFile,
               started: float) -> None:
        """The closing counts; every message read is written or rejected."""
        stats.rejected = rejects.count
        stats.not_english = labeler.not_english
        stats.capped, stats.first_capped = labeler.capped, labeler.first_capped
        stats.read = reader.read + stats.rejected - labeler.language_rejected
        stats.seconds = time.perf_counter() - started
        if stats.read != stats.written + stats.rejected:  # pragma: no cover - an invariant, not a branch
            raise AssertionError(f"lost messages: read {stats.read}, written {stats.written}, rejected {stats.rejected}")


class _NoProgress:
    """Stands in for a disabled progress bar, so a quiet run does not import rich at all."""

    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *exc: Any) -> bool:
        return False

    def add_task(self, *args: Any, **kwargs: Any) -> int:
        return 0

    def update(self, *args: Any, **kwargs: Any) -> None:
        pass


def _progress(enabled: bool):
    if not enabled:
        return _NoProgress()
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


__all__ = ["Runner", "load_classifier"]
