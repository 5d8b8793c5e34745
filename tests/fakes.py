"""A stand-in for the model, so annotate's behaviour can be tested in milliseconds.

Annotation's guarantees (every message out once, in order; byte-identical reruns; resumable
after a kill) do not depend on what the model says, only on the model being a deterministic
function of the text. ``HashClassifier`` is exactly that: each text's four probabilities come
from the SHA-256 of its UTF-8 bytes, so equal texts get equal rows whatever batch they are in.
"""

from __future__ import annotations

import hashlib
import time
from typing import Sequence

import numpy as np


def hash_probabilities(text: str) -> np.ndarray:
    """The four layer probabilities :class:`HashClassifier` gives ``text`` (all above 0)."""
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
    weights = np.frombuffer(digest[:4], dtype=np.uint8).astype(np.float64) + 1.0
    return weights / weights.sum()


class HashClassifier:
    """``predict_proba`` like :class:`~disclosure_nlp.model.classifier.DisclosureClassifier`.

    ``delay`` seconds are slept per call (to give a kill something to interrupt);
    ``interrupt_after`` raises KeyboardInterrupt on that call (1-based), like Ctrl-C.
    """

    identity = "tests.fakes.HashClassifier/1"

    def __init__(self, delay: float = 0.0, interrupt_after: int | None = None) -> None:
        self.delay = delay
        self.interrupt_after = interrupt_after
        self.calls = 0
        self.texts: list[str] = []

    def predict_proba(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        texts = list(texts)
        self.calls += 1
        if self.interrupt_after is not None and self.calls >= self.interrupt_after:
            raise KeyboardInterrupt
        if self.delay:
            time.sleep(self.delay)
        self.texts.extend(texts)
        out = np.zeros((len(texts), 4), dtype=np.float64)
        for row, text in enumerate(texts):
            out[row] = hash_probabilities(text)
        return out
