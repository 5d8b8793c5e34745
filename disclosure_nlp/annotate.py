"""Batch annotation of transcripts: every message labeled, every conversation analysed.

The input is streamed conversation by conversation (see :func:`transcripts.iter_conversations`);
complete conversations are buffered until about ``window`` messages are waiting, classified in
one go (the classifier sorts them by length into batches and returns them in input order), then
analysed for reciprocity and written out in input order. Memory therefore depends on the window
and on the longest conversation, not on the size of the file.

Every message read is either written (once, with all its input fields) or reported as a reject,
and the closing :class:`AnnotationSummary` says so: ``read == written + rejected``. Outputs go to
hidden partial files renamed into place only on success (:mod:`disclosure_nlp.io.outputs`), so a
crash never leaves a half-written file under the target's name and never touches an earlier
output. All inputs are checked (path, format, binary data) before the model is loaded, so a
wrong path fails in a second, not after the model has loaded.

Interruptions and ``resume``
----------------------------
A JSONL, CSV or TSV output is written to ``.<name>.partial`` next to the target. After each
window of complete conversations, the partial file (and the rejects' partial file) is flushed
to disk and a checkpoint ``.<name>.partial.json`` records: the identity of every input (its
path, size and a SHA-256 of its first and last 64 KiB), the options that change the output
(input format, columns, ``on_error``, rejects path, batch size, window, permutations, the model's
identity and the backend that ran it), how many conversations and messages are written, a SHA-256 over the conversation
ids, sizes and message ids written, and the byte size of each partial file at that point.

With ``resume=True`` a run that was killed or interrupted continues after the last complete
window it wrote: the checkpoint is checked against the inputs and options (any difference is
an error saying which), the partial files are cut back to the recorded sizes, the inputs are
read again from the start without classifying the conversations already written (reads,
rejects and the SHA-256 are recomputed, so a changed input is caught), and new rows are
appended. The result is byte-identical to an uninterrupted run. Without ``resume`` a leftover
partial file of a killed run is replaced. ``resume=True`` with nothing to resume starts from
the beginning. Parquet outputs cannot be continued (their footer comes last) and refuse
``resume``.

The summary and the report need the figures of every conversation; they are kept in a third
partial file, ``.<name>.partial.figures`` (one JSON line per conversation, with the messages
the report shows), checkpointed like the others, not in memory; it is only written when a
summary or report is asked for. At the end, before the output is committed, the summary is
streamed from it entry by entry and the report fed to a bounded
:class:`~disclosure_nlp.analysis.report.ReportBuilder`, so memory does not grow with the number of
conversations; then it is removed. A failure while writing those two (a full disk) keeps
every partial file for ``resume``.

An error in the input (:class:`DisclosureError`) removes the partial files, because that run
cannot be continued as it stands; any other interruption (Ctrl-C, a kill, a full disk) keeps
them for ``resume``. Two runs cannot write the same output at once: the partial file is
locked.

How it is built
---------------
:func:`annotate` checks its options once (:class:`~disclosure_nlp.pipeline.options.AnnotateOptions`),
resolves and checks the run's files (:class:`~disclosure_nlp.pipeline.options.RunPlan`) and hands
both to a :class:`~disclosure_nlp.pipeline.runner.Runner`, which joins small stages window by
window: read (:class:`~disclosure_nlp.pipeline.stages.Reader`) → label
(:class:`~disclosure_nlp.pipeline.stages.Labeler`) → analyse
(:class:`~disclosure_nlp.pipeline.stages.Analyzer`) → write (:mod:`disclosure_nlp.pipeline.writers`),
and owns the checkpoints, resume and progress (:mod:`disclosure_nlp.pipeline.checkpoint`).
"""

from __future__ import annotations

import os
from typing import Sequence

# Names this module has always offered, re-exported from where they live now (issue 19).
from .errors import DataError, DisclosureError  # noqa: F401 (re-exported)
from .model.language import DEFAULT_POLICY, check_policy, detect_language  # noqa: F401 (re-exported)
from .layers import LAYERS  # noqa: F401 (re-exported)
from .pipeline.checkpoint import CHECKPOINT_VERSION, IDENTITY_BYTES  # noqa: F401 (re-exported)
from .pipeline.labeling import (  # noqa: F401 (re-exported)
    ANNOTATION_FIELDS,
    DEFAULT_MAX_CHARS,
    DEFAULT_WINDOW,
    DIGITS,
    INPUT_PREFIX,
    Prediction,
    label_conversation,
    output_row,
    screen_languages,
)
from .pipeline.options import AnnotateOptions, RunPlan
from .pipeline.runner import Runner
from .records import (  # noqa: F401 (re-exported)
    AnnotationSummary,
    ConversationRecord,
    SummaryKeys,
    summary_document,
)
from .io.transcripts import (  # noqa: F401 (re-exported)
    CORPUS_UTTERANCES,
    ColumnMap,
    Message,
    Reject,
    iter_conversations,
    read_messages,
)

REPORT_CONVERSATION_LIMIT = 200
"""Conversations whose messages the report shows (read when a run starts)."""


def annotate(
    inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    model: str | os.PathLike[str] | None = None,
    classifier=None,
    backend: str = "auto",
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
    resume: bool = False,
    language: str = DEFAULT_POLICY,
    max_chars: int | None = DEFAULT_MAX_CHARS,
) -> AnnotationSummary:
    """Label every message of ``inputs`` and write them, with reciprocity fields, to ``output``.

    ``max_chars`` caps the characters of one message that are labeled (``None``: no cap); a
    longer message keeps its whole text in the output and is counted in ``capped``.

    ``summary`` writes one JSON document keyed by conversation id with the conversation
    figures; ``report`` a self-contained HTML page. With ``on_error="skip"`` bad records go to
    ``rejects`` (default ``<output>.rejects.jsonl``) instead of stopping the run. ``resume``
    continues an interrupted run with the same arguments (see the module documentation).

    ``backend`` picks what runs the model (:mod:`.backends`). The default, ``auto``, is
    ``onnx-fp32`` where ONNX Runtime is installed: torch's fp32 probabilities, computed faster
    on CPUs (``scripts/bench_annotate.py`` measures both) by a model exported once into the
    user cache; on resume it is the backend of the interrupted run.

    ``language`` says what happens to a message that is not in English (the model was trained
    on English only; :mod:`.language`): ``mark`` (default) keeps its row with the language code
    and no layer, and leaves it out of the reciprocity figures; ``reject`` sends it to the rejects
    file instead; ``label`` labels it anyway. Every row carries the ``language`` code.

    ``classifier`` may be any object with ``predict_proba(texts, batch_size=...)`` returning
    one row of four layer probabilities per text, in input order; an ``identity`` string
    attribute, when present, stands for the model in checkpoints.

    Raises :class:`DisclosureError` (or a subclass naming file, line and field) for anything
    wrong with the inputs, outputs or checkpoint; in that case no output file appears.
    """
    options = AnnotateOptions(
        format=format, output_format=output_format, columns=columns, on_error=on_error, rejects=rejects,
        summary=summary, report=report, report_text=report_text, batch_size=batch_size, window=window,
        permutations=permutations, language=language, max_chars=max_chars, force=force, resume=resume,
        progress=progress, backend=backend,
    )
    plan = RunPlan.resolve(inputs, output, options)
    runner = Runner(plan, options, model=model, classifier=classifier,
                    report_conversations=REPORT_CONVERSATION_LIMIT)
    return runner.run()
