"""The ``disclosure`` command line: a thin layer over the library, one module per command.

Each command parses options, calls one library function and prints what it returns; heavy
imports (torch, transformers, datasets) happen inside the commands, so ``disclosure --help`` and
the start of ``disclosure predict`` stay fast.
"""

from __future__ import annotations

import sys

import typer

# Importing a command module registers its command on the app, in this order in --help.
from . import predict, train, calibrate, evaluate, annotate, reciprocity, export  # noqa: F401
from ._app import app

__all__ = ["app", "main"]


def _say_slow_steps() -> None:
    """On a terminal, the library's notes on slow one-time steps (rebuilding the shipped model,
    exporting to ONNX) go to stderr, so a first run does not look hung; never with --quiet or
    when stderr is a file or a pipe."""
    import logging

    if not sys.stderr.isatty() or {"-q", "--quiet"} & set(sys.argv[1:]):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("disclosure_nlp")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def main() -> None:
    """The console script: an error of the machine (a full disk, a read-only folder, a file
    removed underneath) is one line and exit 1, like an input error is one line and exit 2.
    Outputs are committed by rename only on success, so nothing half-written is left under an
    output's name, and an interrupted annotate keeps its partial file for ``--resume``."""
    _say_slow_steps()
    try:
        app()
    except OSError as err:
        where = err.filename or "an output"
        typer.secho(f"error: {where}: {err.strerror or err} (nothing was written under the output's "
                    "name; annotate --resume continues from the last saved conversation)", fg=typer.colors.RED, err=True)
        raise SystemExit(1) from None

