"""A message not in English is flagged, never labeled with confidence, unless the user asks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from disclosure_nlp.annotate import annotate
from disclosure_nlp.model.language import detect_language, predict_with_language
from tests.fakes import HashClassifier

SPANISH = "Mi madre murió el año pasado y todavía no puedo hablar de eso con nadie."
GERMAN = "Ich habe seit Monaten Panikattacken und habe es niemandem erzählt."
FRENCH = "J'ai honte de dire que je bois tous les soirs pour oublier."
SPANISH_MAIN_SWITCH = "I was so stressed today, pero la verdad es que mi jefe me trata fatal y no sé qué hacer con mi vida."
ENGLISH_MAIN_SWITCH = ("Honestly the worst week of my life, my boss yelled at me in front of everyone and I cried in the car, "
                       "la verdad es que ya no sé qué hacer.")
ENGLISH = [
    "I feel worthless and I never told anyone",
    "honestly i think my dad never really liked me and that hurts",
    "hungry af lol",
    "ok",
    "We moved to Leeds last year, loving it so far!",
    "my therapist told me to write it down",
]


@pytest.mark.parametrize(("text", "code"), [(SPANISH, "es"), (GERMAN, "de"), (FRENCH, "fr")])
def test_spanish_german_french_are_flagged(text: str, code: str) -> None:
    guess = detect_language(text)
    assert guess.code == code and not guess.supported


def test_code_switched_chat_names_both_languages_main_first() -> None:
    spanish_main = detect_language(SPANISH_MAIN_SWITCH)
    assert spanish_main.code == "es+en" and not spanish_main.supported
    english_main = detect_language(ENGLISH_MAIN_SWITCH)
    assert english_main.code == "en+es" and english_main.supported


@pytest.mark.parametrize("text", ENGLISH)
def test_english_chat_including_short_slang_is_supported(text: str) -> None:
    assert detect_language(text).supported


class _Recorder:
    def __init__(self) -> None:
        self.seen: list[str] = []

    def predict(self, texts, batch_size=32):
        from disclosure_nlp.model.classifier import Prediction

        self.seen.extend(texts)
        return [Prediction.from_probabilities([0.1, 0.2, 0.3, 0.4]) for _ in texts]


@pytest.mark.parametrize("policy", ["mark", "reject", "label"])
def test_predict_policies(policy: str) -> None:
    model = _Recorder()
    results = predict_with_language(model, [ENGLISH[0], GERMAN], policy=policy)
    assert [r.language for r in results] == ["en", "de"]
    assert results[0].prediction is not None and not results[0].rejected
    if policy == "label":
        assert model.seen == [ENGLISH[0], GERMAN] and results[1].prediction is not None
    else:
        assert model.seen == [ENGLISH[0]] and results[1].prediction is None
        assert results[1].rejected is (policy == "reject")


def test_unknown_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="mark"):
        predict_with_language(_Recorder(), ["hi"], policy="ignore")


def _transcript(tmp_path: Path) -> Path:
    rows = [
        {"conversation_id": "c1", "speaker": "A", "text": ENGLISH[0]},
        {"conversation_id": "c1", "speaker": "B", "text": SPANISH},
        {"conversation_id": "c1", "speaker": "A", "text": ENGLISH[1]},
        {"conversation_id": "c2", "speaker": "A", "text": FRENCH},
    ]
    path = tmp_path / "chat.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_annotate_marks_non_english_by_default(tmp_path: Path) -> None:
    model = HashClassifier()
    stats = annotate(_transcript(tmp_path), tmp_path / "out.jsonl", classifier=model)
    rows = _rows(tmp_path / "out.jsonl")
    assert [r["language"] for r in rows] == ["en", "es", "en", "fr"]
    assert rows[1]["layer"] is None and rows[1]["depth"] is None and rows[1]["turn"] is None
    assert rows[0]["layer"] is not None and rows[2]["layer"] is not None
    assert SPANISH not in model.texts and FRENCH not in model.texts
    assert stats.written == 4 and stats.rejected == 0 and stats.not_english == 2


def test_annotate_reject_reports_file_line_and_language(tmp_path: Path) -> None:
    stats = annotate(_transcript(tmp_path), tmp_path / "out.jsonl", classifier=HashClassifier(), language="reject")
    assert [r["text"] for r in _rows(tmp_path / "out.jsonl")] == ENGLISH[:2]
    rejects = _rows(tmp_path / "out.jsonl.rejects.jsonl")
    assert [(r["line"], r["field"]) for r in rejects] == [(2, "text"), (4, "text")]
    assert "language es" in rejects[0]["reason"] and "language fr" in rejects[1]["reason"]
    assert stats.read == 4 and stats.written == 2 and stats.rejected == 2


def test_annotate_label_anyway_keeps_the_code(tmp_path: Path) -> None:
    annotate(_transcript(tmp_path), tmp_path / "out.jsonl", classifier=HashClassifier(), language="label")
    rows = _rows(tmp_path / "out.jsonl")
    assert all(r["layer"] is not None for r in rows)
    assert rows[1]["language"] == "es"
