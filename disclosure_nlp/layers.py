"""The four disclosure layers of the label spec (``../shared/CODEBOOK.md``).

Kept in one place so that the model config, data validation, evaluation and the reciprocity
analysis all agree on names, order and ids: the order is the depth order, and a layer's id is
its depth (0 = ``none`` … 3 = ``core``), which is what makes an expected-layer depth score and
ordinal figures meaningful.
"""

from __future__ import annotations

from typing import Mapping, Sequence

LAYERS: tuple[str, ...] = ("none", "surface", "intermediate", "core")
"""Layer names in depth order; the index of a name is its id and its depth."""

ID2LABEL: dict[int, str] = dict(enumerate(LAYERS))
LABEL2ID: dict[str, int] = {name: i for i, name in ID2LABEL.items()}
MAX_DEPTH: float = float(len(LAYERS) - 1)

DESCRIPTIONS: dict[str, str] = {
    "none": "nothing personal: greetings, thanks, backchannels, questions to the partner, "
    "empathy, logistics, facts about the world or others",
    "surface": "peripheral, low-risk facts and tastes anyone could learn: job, home town, "
    "routines, hobbies, likes and dislikes",
    "intermediate": "attitudes, contested opinions, values, goals with personal stakes, "
    "everyday emotions and worries, moderate difficulties",
    "core": "central, high-risk, intimate material: deep fears and shame, self-worth, trauma, "
    "mental-health crises, addiction, secrets never told",
}


def layer_id(layer: str | int) -> int:
    """Return the id of a layer given by name or id, or raise ``ValueError`` naming the set.

    Accepts an int (or a digit string) because spreadsheets and other tools often store the
    ordinal instead of the name; both must mean the same thing everywhere in the project.
    """
    if isinstance(layer, bool):
        raise ValueError(f"invalid layer {layer!r}: expected one of {', '.join(LAYERS)} or 0-3")
    if isinstance(layer, int):
        if layer in ID2LABEL:
            return layer
    elif isinstance(layer, str):
        key = layer.strip().lower()
        if key in LABEL2ID:
            return LABEL2ID[key]
        if key.isdigit() and int(key) in ID2LABEL:
            return int(key)
    raise ValueError(f"invalid layer {layer!r}: expected one of {', '.join(LAYERS)} or 0-3")


def layer_name(layer: str | int) -> str:
    """Return the canonical name of a layer given by name or id."""
    return ID2LABEL[layer_id(layer)]


def expected_depth(probabilities: Sequence[float] | Mapping[str, float]) -> float:
    """Depth score: the expected layer id under the class probabilities, in [0, 3].

    The codebook defines the continuous score this way, so a message the model splits between
    ``intermediate`` and ``core`` lands between 2 and 3 instead of jumping.
    """
    if isinstance(probabilities, Mapping):
        values = [float(probabilities[name]) for name in LAYERS]
    else:
        values = [float(p) for p in probabilities]
    if len(values) != len(LAYERS):
        raise ValueError(f"expected {len(LAYERS)} probabilities, got {len(values)}")
    total = sum(values)
    if total <= 0:
        raise ValueError("probabilities must sum to a positive number")
    depth = sum(i * p for i, p in enumerate(values)) / total
    return min(MAX_DEPTH, max(0.0, depth))
