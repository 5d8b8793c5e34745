"""Slow steps say what they do on a terminal, and nothing when stderr is not one."""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def notes_handler(monkeypatch):
    logger = logging.getLogger("disclosure_nlp")
    before = list(logger.handlers), logger.level
    yield logger
    logger.handlers[:] = before[0]
    logger.setLevel(before[1])


@pytest.mark.parametrize(("tty", "argv", "shown"), [(True, ["annotate"], True), (True, ["annotate", "-q"], False),
                                                     (False, ["annotate"], False)])
def test_the_first_use_rebuild_says_it_happens_once_only_on_a_terminal(tmp_path: Path, monkeypatch, capsys,
                                                                       notes_handler, tty, argv, shown) -> None:
    from disclosure_nlp import cli
    from disclosure_nlp.model.modelstore import resolve_model_dir

    monkeypatch.setenv("DISCLOSURE_NLP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(sys, "argv", ["disclosure", *argv])
    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty, raising=False)
    cli._say_slow_steps()
    model = tmp_path / "default"
    shutil.copytree(ROOT / "models" / "default", model)
    resolve_model_dir(model)
    err = capsys.readouterr().err
    assert ("rebuilding its full weights" in err and "once" in err) == shown
    resolve_model_dir(model)  # built: nothing more to say
    assert "rebuilding" not in capsys.readouterr().err


def test_evaluate_shows_its_steps_on_stderr_when_asked(tmp_path: Path, tiny_model: Path, tiny_file: Path, capsys,
                                                       monkeypatch) -> None:
    from disclosure_nlp.model.evaluation import evaluate

    quiet = evaluate(tiny_model, tiny_file, baseline_train=tiny_file, progress=False)
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich draws as on a terminal, 200 columns wide
    monkeypatch.setenv("COLUMNS", "200")
    shown = evaluate(tiny_model, tiny_file, baseline_train=tiny_file, progress=True)
    err = capsys.readouterr().err
    assert "loading the model" in err and "TF-IDF baseline on 8 messages (--no-baseline skips it)" in err
    assert shown.model.macro_f1 == pytest.approx(quiet.model.macro_f1)
