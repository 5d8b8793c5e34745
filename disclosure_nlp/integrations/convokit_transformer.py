"""ConvoKit integration: a Transformer that labels every utterance of a Corpus.

ConvoKit (https://convokit.cornell.edu) is where many conversation researchers keep their data,
and its analyses are chained Transformers that read and write utterance and conversation
metadata. :class:`DisclosureTransformer` follows that API (``fit``/``transform``/
``fit_transform``/``summarize``) so disclosure depth becomes one more pipeline step::

    from convokit import Corpus
    from disclosure_nlp.integrations.convokit_transformer import DisclosureTransformer

    corpus = Corpus(filename="path/to/corpus")
    DisclosureTransformer().fit_transform(corpus)
    corpus.get_utterance("u42").meta["disclosure_layer"]          # "intermediate"
    corpus.get_conversation("c7").meta["disclosure_reciprocity"]  # reciprocity figures

Each conversation goes through :func:`disclosure_nlp.annotate.label_conversation`, the code
behind ``disclosure annotate``, so the values equal the CLI's for the same messages. A
conversation's order is the order of its utterances in the corpus (the order of
``utterances.jsonl`` for a loaded corpus), which is also what the CLI reads.

Everything written to metadata is plain JSON (strings, numbers, ``None``, lists and dicts), so
``corpus.dump()`` stores it in the JSON files and never falls back to pickled ``*-bin.p``
files. ``convokit`` is imported only when a transformer is created; install it with
``pip install "disclosure-nlp[convokit]"``.
"""

from __future__ import annotations

import json
import os
from dataclasses import KW_ONLY, dataclass
from typing import Any

from ..annotate import DEFAULT_WINDOW, label_conversation
from ..layers import LAYERS
from ..io.transcripts import Message

__all__ = ["DisclosureTransformer"]

INSTALL_HINT = 'ConvoKit is not installed; install it with: pip install "disclosure-nlp[convokit]"'


def _convokit():
    try:
        import convokit
    except ImportError as err:  # pragma: no cover - exercised only without the extra
        raise ImportError(INSTALL_HINT) from err
    return convokit


def _plain(value: Any) -> Any:
    """A JSON-native copy; fails loudly (instead of letting ConvoKit pickle) on anything else."""
    return json.loads(json.dumps(value, allow_nan=False))


def _reply_to(utterance) -> str | None:
    """The reply target; ConvoKit files spell it ``reply-to`` and hand-built corpora sometimes
    keep it in the metadata under either spelling."""
    target = getattr(utterance, "reply_to", None)
    if target is None:
        meta = utterance.meta or {}
        target = meta.get("reply-to", meta.get("reply_to"))
    return None if target in (None, "") else str(target)


# A dataclass: the settings are its fields, so the constructor and repr() list them once.
@dataclass(eq=False)
class DisclosureTransformer:
    """Label every utterance's disclosure layer and each conversation's reciprocity.

    Utterance metadata written by :meth:`transform` (names configurable):

    * ``disclosure_layer``: ``none`` | ``surface`` | ``intermediate`` | ``core``
    * ``disclosure_confidence``: probability of that layer
    * ``disclosure_probabilities``: ``{layer: probability}`` in depth order
    * ``disclosure_depth``: expected layer, 0.0–3.0
    * ``disclosure_turn``: ``{"turn", "prompt_turn", "depth_gap", "match"}`` — the utterance's
      turn and how that turn answers its prompt

    Conversation metadata: ``disclosure_reciprocity``, the figures of ``disclosure annotate
    --summary`` (reciprocity index, lag-1 correlation and permutation p-value, trajectory
    slope, asymmetry, per-speaker figures, and the reason for every figure left ``None``).

    ``backend`` is that of ``disclosure annotate`` (default ``auto``), so a corpus labeled here
    holds the same values as the CLI's file for the same messages; pass ``classifier`` instead to
    reuse a loaded :class:`~disclosure_nlp.model.classifier.DisclosureClassifier`.

    An utterance with no text (ConvoKit corpora keep deleted posts as empty utterances) gets
    ``None`` in every field and is left out of its conversation's analysis, as the CLI's
    ``--on-error skip`` would do.
    """

    model: str | os.PathLike[str] | None = None
    _: KW_ONLY
    classifier: Any = None
    backend: str = "auto"
    layer_attr: str = "disclosure_layer"
    confidence_attr: str = "disclosure_confidence"
    probabilities_attr: str = "disclosure_probabilities"
    depth_attr: str = "disclosure_depth"
    turn_attr: str = "disclosure_turn"
    reciprocity_attr: str = "disclosure_reciprocity"
    batch_size: int = 32
    window: int = DEFAULT_WINDOW
    permutations: int = 1000

    def __post_init__(self) -> None:
        convokit = _convokit()
        # A registered virtual subclass: isinstance(t, convokit.Transformer) holds, while this
        # module stays importable (and cheap to import) without ConvoKit.
        convokit.Transformer.register(type(self))

    # ConvoKit's Transformer API ----------------------------------------------------------
    def fit(self, corpus=None, y=None, **kwargs) -> "DisclosureTransformer":
        """Load the model (nothing is learned from the corpus: the classifier is pre-trained)."""
        if self.classifier is None:
            from ..model.classifier import DisclosureClassifier

            self.classifier = DisclosureClassifier.load(self.model, backend=self.backend)
        return self

    def transform(self, corpus, **kwargs):
        """Write the labels and figures into ``corpus`` (in place) and return it."""
        self.fit(corpus)
        pending: list[tuple[Any, list[Any], list[Message]]] = []  # (conversation, labeled utterances, messages)
        waiting = 0
        for conversation in corpus.iter_conversations():
            utterances, messages = [], []
            for utterance in conversation.iter_utterances():
                text = utterance.text
                if not isinstance(text, str) or not text.strip():
                    self._clear(utterance)
                    continue
                utterances.append(utterance)
                speaker = getattr(utterance, "speaker", None)
                messages.append(
                    Message(
                        id=str(utterance.id),
                        conversation_id=str(conversation.id),
                        speaker=str(speaker.id) if speaker is not None else None,
                        text=text,
                        reply_to=_reply_to(utterance),
                        timestamp=None if utterance.timestamp is None else str(utterance.timestamp),
                        fields={},
                        source="corpus",
                        line=0,
                    )
                )
            pending.append((conversation, utterances, messages))
            waiting += len(messages)
            if waiting >= self.window:
                self._flush(pending)
                pending, waiting = [], 0
        if pending:
            self._flush(pending)
        return corpus

    def fit_transform(self, corpus, y=None, **kwargs):
        return self.fit(corpus, y=y, **kwargs).transform(corpus, **kwargs)

    def summarize(self, corpus, **kwargs):
        """One row per transformed conversation: its figures and how many utterances reached
        each layer (a pandas DataFrame indexed by conversation id)."""
        import pandas as pd

        records = []
        for conversation in corpus.iter_conversations():
            figures = conversation.meta.get(self.reciprocity_attr)
            if figures is None:
                continue
            counts = dict.fromkeys(LAYERS, 0)
            for utterance in conversation.iter_utterances():
                layer = utterance.meta.get(self.layer_attr)
                if layer in counts:
                    counts[layer] += 1
            record = {key: value for key, value in figures.items() if not isinstance(value, dict)}
            record.update({f"n_{layer}": count for layer, count in counts.items()})
            records.append(record)
        if not records:
            raise ValueError(f"no conversation has '{self.reciprocity_attr}' metadata; run transform() first")
        return pd.DataFrame.from_records(records).set_index("conversation_id")

    # helpers ----------------------------------------------------------------------------
    def _attrs(self) -> tuple[str, ...]:
        return (self.layer_attr, self.confidence_attr, self.probabilities_attr, self.depth_attr, self.turn_attr)

    def _clear(self, utterance) -> None:
        for name in self._attrs():
            utterance.meta[name] = None

    def _flush(self, pending) -> None:
        texts = [m.text for _, _, messages in pending for m in messages]
        probabilities = self.classifier.predict_proba(texts, batch_size=self.batch_size)
        start = 0
        for conversation, utterances, messages in pending:
            chunk = probabilities[start : start + len(messages)]
            start += len(messages)
            rows, figures = label_conversation(str(conversation.id), messages, chunk, permutations=self.permutations)
            for utterance, row in zip(utterances, rows):
                self._write(utterance, row)
            conversation.meta[self.reciprocity_attr] = _plain(figures)

    def _write(self, utterance, row: dict[str, Any]) -> None:
        meta = utterance.meta
        meta[self.layer_attr] = row["layer"]
        meta[self.confidence_attr] = row["confidence"]
        meta[self.probabilities_attr] = _plain({layer: row[f"p_{layer}"] for layer in LAYERS})
        meta[self.depth_attr] = row["depth"]
        meta[self.turn_attr] = _plain({key: row[key] for key in ("turn", "prompt_turn", "depth_gap", "match")})

