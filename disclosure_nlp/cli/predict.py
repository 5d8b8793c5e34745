"""``disclosure predict``: label messages from the command line or stdin."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Optional

import typer

from ..errors import DisclosureError
from ._app import BackendOption, LanguageOption, ModelOption, app, _fail


@app.command()
def predict(
    texts: Annotated[Optional[list[str]], typer.Argument(help="Messages to label; '-' reads one per line from stdin.")] = None,
    model: ModelOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per message.")] = False,
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
    backend: BackendOption = "auto",
    language: LanguageOption = "mark",
) -> None:
    """Label messages given on the command line (or stdin) with their disclosure layer."""
    items = list(texts or [])
    if items == ["-"]:
        items = []
        # Bytes, decoded line by line: a line that is not UTF-8 is named, not a traceback.
        for number, raw in enumerate(sys.stdin.buffer, start=1):
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as err:
                _fail(DisclosureError(f"stdin, line {number}: not valid UTF-8 (byte {err.start + 1}); "
                                      "save the messages as UTF-8"))
            if line.strip():
                items.append(line)
    if not items:
        _fail(DisclosureError("give at least one message, or '-' to read them from stdin"))
    from ..model.classifier import DisclosureClassifier
    from ..model.language import POLICIES, predict_with_language

    if language not in POLICIES:
        _fail(DisclosureError(f"--language must be one of {', '.join(POLICIES)}, not {language!r}"))
    try:
        classifier = DisclosureClassifier.load(model, backend=backend)
    except DisclosureError as err:
        _fail(err)
    results = predict_with_language(classifier, items, policy=language, batch_size=batch_size)
    for text, result in zip(items, results):
        prediction = result.prediction
        if result.rejected:
            typer.secho(f"rejected (language {result.language}, not English): {text}", err=True, fg=typer.colors.YELLOW)
            continue
        if as_json:
            fields = prediction.to_dict() if prediction is not None else {"layer": None, "confidence": None,
                                                                         "probabilities": None, "depth": None}
            typer.echo(json.dumps({"text": text, **fields, "language": result.language}, ensure_ascii=False))
        elif prediction is None:
            typer.echo(f"{'unsupported':<12} language={result.language} (not English: not labeled; --language label labels it anyway)")
            if len(items) > 1:
                typer.echo(f"  ↳ {text}")
        else:
            probs = " ".join(f"{k}={v:.2f}" for k, v in prediction.probabilities.items())
            typer.echo(f"{prediction.layer:<12} confidence={prediction.confidence:.2f} depth={prediction.depth:.2f}  [{probs}]")
            if len(items) > 1:
                typer.echo(f"  ↳ {text}")
