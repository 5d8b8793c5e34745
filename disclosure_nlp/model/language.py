"""Which language a message is in, so that the English-only model is not trusted elsewhere.

The classifier was trained on English; on a Spanish or German disclosure it still answers, with
high confidence and the wrong layer. Two small offline identifiers that ship their models inside
their PyPI packages vote: CLD2 (``pycld2``, compiled tables) and langid.py's model
(``py3langid``, a NumPy array file, no pickle). A message is called non-English only when both
agree, because each alone mistakes short English slang for another language ("hungry af" is
Danish to CLD2). Short texts that neither can place are ``und`` and treated as English: the
model's own register is chat, and "ok lol" must not be flagged.

Code-switched chat is read clause by clause: a message whose clauses are confidently in two
languages gets both codes, main one first ("en+es"), and is supported when English is the main
language.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Sequence

ENGLISH = "en"
UNDETERMINED = "und"
POLICIES = ("label", "mark", "reject")
"""What annotate and predict do with a message not in English: label it anyway, mark it
unsupported (kept, with no layer), or send it to the rejects."""
DEFAULT_POLICY = "mark"

_MIN_WORDS = 3
_CLAUSE = re.compile(r"[,.;:!?¿¡\n()\"“”]+|\s+-\s+")
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
_URL = re.compile(r"https?://\S+|www\.\S+|@\w+|#\w+")
_LANGID_MIN = 0.5
# Words common in English chat and rare in the other languages the identifiers confuse it with
# ("was", "me", "so", "in", "a" are left out: German, Spanish, Italian use them too).
_ENGLISH_WORDS = frozenset(
    "the and is are i you my that this with have it's i'm don't just but what when your they them were "
    "been would could about because really think know feel get got like".split()
)


@dataclass(frozen=True)
class LanguageGuess:
    """The language of one message."""

    code: str
    """ISO 639-1 code of the main language, ``und`` when undetermined, or two codes joined by
    ``+`` (main language first) for a code-switched message."""
    supported: bool
    """Whether the model's labels can be trusted: English, or undetermined."""

    @property
    def main(self) -> str:
        return self.code.split("+", 1)[0]


@lru_cache(maxsize=1)
def _langid():
    import py3langid.langid as langid

    return langid.LanguageIdentifier.from_modelpath(langid.MODEL_DIR / langid.MODEL_FILE, norm_probs=True)


def _cld2(text: str) -> tuple[bool, str]:
    import pycld2

    try:
        reliable, _, details = pycld2.detect(text, bestEffort=True)
    except pycld2.error:  # invalid UTF-8 inside (lone surrogates): no guess
        return False, UNDETERMINED
    code = details[0][1] if details else "un"
    return bool(reliable) or code != "un", (UNDETERMINED if code in ("un", "xx-Qaai") else code.split("-")[0])


def _vote(text: str) -> str:
    """The language both identifiers agree on, English when either says English, else ``und``."""
    words = _WORD.findall(text)
    if len(words) < _MIN_WORDS:
        return UNDETERMINED
    ok, cld = _cld2(text)
    if not ok or cld == UNDETERMINED:
        return UNDETERMINED
    if cld == ENGLISH:
        return ENGLISH
    lid, prob = _langid().classify(text)
    if lid == ENGLISH:
        return ENGLISH
    if lid == cld and prob >= _LANGID_MIN:
        return cld
    return UNDETERMINED


def _plainly_english(text: str) -> bool:
    """ASCII text where common English words are a third of the words: English, no vote needed.

    Most chat is plainly English, and this check costs a few microseconds where the two
    identifiers cost a hundred, so annotate stays as fast with language checks as without.
    """
    if not text.isascii():
        return False
    words = text.lower().split()
    hits = sum(w.strip(".,!?;:\"()") in _ENGLISH_WORDS for w in words)
    return hits >= 2 and hits * 3 >= len(words)


def detect_language(text: str) -> LanguageGuess:
    """Guess the language of ``text`` (see the module documentation for the rules)."""
    if _plainly_english(text or ""):
        return LanguageGuess(ENGLISH, True)
    cleaned = _URL.sub(" ", text or "")
    whole = _vote(cleaned)
    shares: dict[str, int] = {}
    for clause in _CLAUSE.split(cleaned):
        code = _vote(clause)
        if code != UNDETERMINED:
            shares[code] = shares.get(code, 0) + len(clause)
    if whole != UNDETERMINED:
        shares[whole] = shares.get(whole, 0) + 1  # the whole message breaks ties
    if not shares:
        return LanguageGuess(UNDETERMINED, True)
    ranked = sorted(shares, key=lambda c: -shares[c])
    code = "+".join(ranked[:2])
    return LanguageGuess(code, ranked[0] == ENGLISH)


def check_policy(policy: str) -> str:
    if policy not in POLICIES:
        raise ValueError(f"unknown language policy {policy!r}; expected one of {', '.join(POLICIES)}")
    return policy


@dataclass(frozen=True)
class ScreenedPrediction:
    """One message's prediction under a language policy."""

    language: str
    prediction: Any
    """The :class:`~disclosure_nlp.model.classifier.Prediction`, or ``None`` when not labeled."""
    rejected: bool = False


def predict_with_language(classifier: Any, texts: Sequence[str], *, policy: str = DEFAULT_POLICY,
                          batch_size: int = 32) -> list[ScreenedPrediction]:
    """``classifier.predict`` with each message's language checked first (see :data:`POLICIES`).

    Only the messages the policy lets through reach the model, so a marked or rejected message
    costs no inference and never carries a confident wrong label.
    """
    check_policy(policy)
    guesses = [detect_language(text) for text in texts]
    todo = [i for i, g in enumerate(guesses) if g.supported or policy == "label"]
    predicted = dict(zip(todo, classifier.predict([texts[i] for i in todo], batch_size=batch_size))) if todo else {}
    return [ScreenedPrediction(g.code, predicted.get(i), rejected=not g.supported and policy == "reject")
            for i, g in enumerate(guesses)]
