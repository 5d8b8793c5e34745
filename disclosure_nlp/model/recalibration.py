"""Refit the calibration of a trained model on real held-out sentences, without retraining.

Training fits a calibration at its end (:func:`disclosure_nlp.model.training.calibrate_model`); this
does the same on a model that already exists: when more real sentences have been labeled since
it was trained, or to switch a temperature-calibrated model to vector scaling. Training takes
an hour on a laptop; this takes a minute, and its result is the same kind of directory (the new
map folded into the classification layer, compact again when the input was compact), so every
loader and backend sees it. The fitted map composes with the one already folded in, and the
model card records both.

Only real-dev is used to fit (never real-test), so real-test stays a fair check of the result.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import DisclosureError
from ..layers import LABEL2ID
from .modelstore import COMPACT_SPEC, enforce_offline, is_compact, read_json_file, resolve_model_dir
from ..io.outputs import AlreadyExists
from ..io.safe_files import replace_folder, staged_folder

__all__ = ["RecalibrationResult", "recalibrate"]


@dataclass
class RecalibrationResult:
    """Where the recalibrated model went and what was fitted (the record in its training.json)."""

    output_dir: Path
    calibration: dict
    compact: bool


def recalibrate(
    model_dir: str | os.PathLike[str] | None,
    output_dir: str | os.PathLike[str],
    *,
    real_csv: str | os.PathLike[str],
    real_labels: str | os.PathLike[str] | None = None,
    method: str = "vector",
    force: bool = False,
    progress: bool = False,
) -> RecalibrationResult:
    """Fit ``method`` on the real-dev sentences and write the calibrated model to ``output_dir``.

    ``model_dir`` ``None`` is the shipped default model. ``real_csv`` is the public CL-Aff
    OffMyChest CSV; the project's labels (``data/real/claff_labels.jsonl`` or ``real_labels``)
    are joined with it and their ``dev`` split is used. Refuses to replace ``output_dir``
    unless ``force``, and to write over the model it reads. ``progress`` shows each step on
    stderr (loading and labeling take most of a minute on a laptop).
    """
    from .realdata import default_labels_path, load_real
    from .training import _check_writable_parent

    from .calibration import METHODS

    enforce_offline()
    if method not in METHODS:
        raise DisclosureError(f"unknown calibration method {method!r}; expected one of {', '.join(METHODS)}")
    source = Path(model_dir) if model_dir is not None else None
    full = resolve_model_dir(source)
    target = Path(output_dir)
    if target.exists() and any(target.iterdir()) and not force:
        raise AlreadyExists(target, verb="replace")
    for given in {full, source} - {None}:
        if target.exists() and target.resolve() == Path(given).resolve():
            raise DisclosureError(f"{target}: is the model being recalibrated; write the result to another folder")
    _check_writable_parent(target)
    compact = is_compact(source) if source is not None else is_compact(_shipped_folder())
    labels_path = Path(real_labels) if real_labels is not None else default_labels_path()
    dev = [x for x in load_real(real_csv, labels_path=labels_path) if x.split == "dev"]
    if not dev:
        raise DisclosureError(f"{labels_path}: no sentences in the dev split to fit a calibration on")

    with _status(progress, "loading the model") as status:
        return _recalibrate(full, source, target, dev, labels_path, method, compact, status)


def _recalibrate(full, source, target, dev, labels_path, method, compact, status) -> RecalibrationResult:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from .realdata import labels_name
    from .training import _predict_logits, calibrate_model

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(full, local_files_only=True, trust_remote_code=False)
    model = AutoModelForSequenceClassification.from_pretrained(
        full, local_files_only=True, trust_remote_code=False, use_safetensors=True
    ).eval()
    training = read_json_file(full / "training.json") if (full / "training.json").exists() else {}
    metrics = read_json_file(full / "metrics.json") if (full / "metrics.json").exists() else {}
    max_length = int(((training.get("config") or {}).get("max_length")) or 256)
    encoded = tokenizer([x.text for x in dev], truncation=True, max_length=max_length)["input_ids"]
    gold = [LABEL2ID[x.layer] for x in dev]
    device = torch.device("cpu")
    status.update(f"labeling {len(dev)} real-dev sentences and fitting a {method} calibration")
    record = calibrate_model(model, encoded, gold, tokenizer.pad_token_id, device, "real-dev", method)
    record["labels"] = labels_name(labels_path)
    if training.get("calibration"):
        record["after"] = training["calibration"]
    training["calibration"] = record
    metrics["calibration"] = record
    metrics["real_dev"] = _report(_predict_logits(model, encoded, tokenizer.pad_token_id, device), gold)
    metrics.pop("evaluations", None)  # measured on the model before; evaluate the new one again

    base = None
    if compact:
        spec = read_json_file((source or _shipped_folder()) / COMPACT_SPEC)
        base = spec.get("base") if isinstance(spec, dict) else None
    status.update(f"writing {target}")
    _write(model, tokenizer, training, metrics, target, compact=compact, base=base)
    return RecalibrationResult(target, record, compact)


class _Quiet:
    def __enter__(self) -> "_Quiet":
        return self

    def __exit__(self, *exc: object) -> bool:
        return False

    def update(self, text: str) -> None:
        pass


def _status(enabled: bool, text: str):
    if not enabled:
        return _Quiet()
    from rich.console import Console

    return Console(stderr=True).status(text)


def _shipped_folder() -> Path:
    from .modelstore import default_model_dir

    return default_model_dir()


def _report(logits, gold) -> dict:
    from .calibration import softmax
    from ..layers import expected_depth
    from .metrics import compute_report

    probs = softmax(logits)
    return compute_report(gold, probs.argmax(axis=1).tolist(), [expected_depth(p) for p in probs]).to_dict()


def _write(model, tokenizer, training: dict, metrics: dict, target: Path, *, compact: bool, base: str | None) -> None:
    """The full directory in a staging folder, then packed into place when compact, else renamed."""
    from .modelstore import pack_compact
    from .training import write_records

    with staged_folder(target, mode=None) as staging:
        full_dir = staging / "full"
        model.save_pretrained(full_dir, safe_serialization=True)
        tokenizer.save_pretrained(full_dir)
        write_records(full_dir, target.name, training, metrics)
        if compact:  # packs beside the target and renames into place itself
            pack_compact(full_dir, target, **({"base": base} if base else {}))
        else:
            replace_folder(full_dir, target)
