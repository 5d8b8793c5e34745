"""The labeling pieces every engine shares: one conversation's rows and figures, language screening.

:func:`label_conversation` is the one place a classified conversation becomes output rows and
reciprocity figures; the local pipeline, :mod:`disclosure_nlp.integrations.frame`, the Ray engine and the
ConvoKit transformer all go through it, so their rows agree. :func:`screen_languages` decides
which messages the model labels under a ``--language`` policy.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from ..model.classifier import Prediction
from ..model.language import detect_language
from ..layers import LAYERS
from ..io.transcripts import Message, Reject

ANNOTATION_FIELDS: tuple[str, ...] = (
    "layer",
    "confidence",
    *(f"p_{name}" for name in LAYERS),
    "depth",
    "language",
    "turn",
    "prompt_turn",
    "depth_gap",
    "match",
)
"""Columns added to every message, in this order, after its input fields."""
INPUT_PREFIX = "input_"
DEFAULT_WINDOW = 1024
DEFAULT_MAX_CHARS = 20_000
"""Characters of one message that are labeled (and language-checked). A chat message is rarely
over a few thousand; a pasted book is not a message, and one of 1M tokens once took ten minutes
and 1.2 GB. A longer message keeps its whole text in the output and is counted as capped."""
DIGITS = 4


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


def _annotation(prediction: Prediction | None, reciprocity: dict[str, Any], language: str | None = None) -> dict[str, Any]:
    """The annotation columns of one message: its prediction, rounded, and its turn's fields.

    ``prediction`` is ``None`` for a message marked unsupported: every model column is then
    empty, and ``language`` says why.
    """
    if prediction is None:
        out: dict[str, Any] = {"layer": None, "confidence": None}
        out.update({f"p_{name}": None for name in LAYERS})
        out["depth"] = None
    else:
        out = {"layer": prediction.layer, "confidence": round(prediction.confidence, DIGITS)}
        out.update({f"p_{name}": round(value, DIGITS) for name, value in prediction.probabilities.items()})
        out["depth"] = round(prediction.depth, DIGITS)
    out["language"] = language
    out.update({key: reciprocity.get(key) for key in ("turn", "prompt_turn", "depth_gap", "match")})
    return out


def label_conversation(
    conversation_id: str,
    messages: list[Message],
    probabilities,
    *,
    permutations: int = 1000,
    languages: Sequence[str | None] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Output rows and reciprocity figures for one conversation whose messages are classified."""
    from ..analysis.reciprocity import LabeledMessage, analyze_conversation, message_fields

    # One prediction per message serves both the analysis and the row, so a row's layer is
    # always the layer its turn was built from. Rows of Python floats (tolist) are read several
    # times faster than NumPy rows, and give the same values.
    if hasattr(probabilities, "tolist"):
        probabilities = probabilities.tolist()
    # A message marked unsupported (not English) has no probabilities: it keeps its row, with no
    # layer, and stays out of the analysis, so no figure rests on a label the model cannot give.
    predictions = [None if probs is None else Prediction.from_probabilities(probs) for probs in probabilities]
    labeled = [
        LabeledMessage(
            id=message.id,
            speaker=message.speaker if message.speaker is not None else "(unknown)",
            layer=prediction.layer,
            depth=prediction.depth,
            reply_to=message.reply_to,
        )
        for message, prediction in zip(messages, predictions)
        if prediction is not None
    ]
    result = analyze_conversation(labeled, conversation_id, permutations=permutations)
    per_message = message_fields(result)
    codes = languages if languages is not None else [None] * len(messages)
    rows = [output_row(m, _annotation(p, per_message.get(m.id, {}), code))
            for m, p, code in zip(messages, predictions, codes)]
    figures = result.to_dict()
    figures.pop("turns", None)
    return rows, figures


def screen_languages(
    messages: list[Message], policy: str, on_reject: Callable[[Reject], None],
    on_unsupported: Callable[[], None] = lambda: None, *, max_chars: int | None = None,
) -> tuple[list[Message], list[str], list[bool]]:
    """The messages kept, their language codes, and which of them the model labels.

    ``reject`` reports a non-English message (text field, its language) and drops it; ``mark``
    keeps it unlabeled; ``label`` labels everything but still records the language.
    """
    kept, codes, labeled = [], [], []
    for message in messages:
        guess = detect_language(message.text if max_chars is None else message.text[:max_chars])
        if not guess.supported:
            on_unsupported()
        if not guess.supported and policy == "reject":
            on_reject(Reject(str(message.source), message.line, "text",
                             f"not English (language {guess.code}); use --language label to label it anyway",
                             message.text[:80]))
            continue
        kept.append(message)
        codes.append(guess.code)
        labeled.append(guess.supported or policy == "label")
    return kept, codes, labeled
