"""disclosure_nlp: how deeply each person in a chat opens up, and whether the other meets them.

The public API is importable from here. Heavy parts (torch, transformers) load on first use,
not at import, so importing the package is cheap, and it never trains or touches the network:
the Hugging Face offline switches are set here unless ``DISCLOSURE_NLP_ALLOW_NETWORK=1``.
The integrations (``annotate_frame``/``analyze_frame`` for pandas, ``DisclosureTransformer`` for
ConvoKit) are exported the same lazy way, so their optional extras are imported only by a
program that uses them.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .model.modelstore import enforce_offline

__version__ = "0.1.0"

enforce_offline()

_EXPORTS = {
    "DisclosureClassifier": "model.classifier",
    "Prediction": "model.classifier",
    "LAYERS": "layers",
    "analyze_conversation": "analysis.reciprocity",
    "LabeledMessage": "analysis.reciprocity",
    "ConversationReciprocity": "analysis.reciprocity",
    "annotate": "annotate",
    "AnnotationSummary": "records",
    "evaluate": "model.evaluation",
    "evaluate_real": "model.evaluation",
    "train": "model.training",
    "TrainConfig": "model.training",
    "read_messages": "io.transcripts",
    "annotate_frame": "integrations.frame",
    "analyze_frame": "integrations.frame",
    "DisclosureTransformer": "integrations.convokit_transformer",
    "DisclosureError": "errors",
    "DataError": "errors",
    "ModelError": "errors",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from .annotate import annotate
    from .records import AnnotationSummary
    from .model.classifier import DisclosureClassifier, Prediction
    from .integrations.convokit_transformer import DisclosureTransformer
    from .errors import DataError, DisclosureError, ModelError
    from .model.evaluation import evaluate, evaluate_real
    from .integrations.frame import analyze_frame, annotate_frame
    from .layers import LAYERS
    from .analysis.reciprocity import ConversationReciprocity, LabeledMessage, analyze_conversation
    from .model.training import TrainConfig, train
    from .io.transcripts import read_messages


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'disclosure_nlp' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
