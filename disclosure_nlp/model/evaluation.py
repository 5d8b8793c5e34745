"""Scoring a model on labeled data, always next to the TF-IDF baseline.

The baseline is trained on the model's own training split (recorded in its ``training.json``),
so every evaluation shows what the transformer adds over word and character statistics.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .data import Columns, Source, load_labeled
from .calibration import CalibrationReport, calibration_report
from ..errors import DisclosureError
from ..layers import LAYERS, expected_depth
from .metrics import EvaluationReport, Interval, compute_report, macro_f1_interval


@dataclass
class Evaluation:
    data: str
    model_dir: str
    model: EvaluationReport
    baseline: EvaluationReport | None
    baseline_train: str | None = None
    baseline_c: float | None = None
    calibration: CalibrationReport | None = None
    """How far the model's confidence is from its accuracy (expected calibration error)."""
    macro_f1_interval: Interval | None = None
    """90% bootstrap interval of the model's macro-F1 on these messages."""
    gain_interval: Interval | None = None
    """90% bootstrap interval of the model's macro-F1 minus the baseline's, on the same resamples."""

    def to_dict(self) -> dict:
        return {
            "data": self.data,
            "model_dir": self.model_dir,
            "model": self.model.to_dict(),
            "baseline": self.baseline.to_dict() if self.baseline else None,
            "baseline_train": self.baseline_train,
            "baseline_c": self.baseline_c,
            "calibration": self.calibration.to_dict() if self.calibration else None,
            "macro_f1_interval": self.macro_f1_interval.to_dict() if self.macro_f1_interval else None,
            "gain_interval": self.gain_interval.to_dict() if self.gain_interval else None,
        }


def training_split_of(model_dir: Path) -> Source | None:
    """The training data recorded by ``disclosure train`` (a file, or a saved dataset and its
    split), if it can still be found."""
    record = model_dir / "training.json"
    if not record.exists():
        return None
    train = json.loads(record.read_text())["train"]
    path = Path(train["path"])
    for candidate in (path, model_dir / path):
        if candidate.exists():
            return Source(candidate, train.get("split"))
    return None


def evaluate(
    model: str | os.PathLike[str] | None,
    data: str | os.PathLike[str],
    *,
    columns: Columns = Columns(),
    baseline_train: str | os.PathLike[str] | None = None,
    baseline_split: str | None = None,
    with_baseline: bool = True,
    batch_size: int = 32,
    split: str | None = None,
    classifier=None,
    backend: str = "torch",
    progress: bool = False,
) -> Evaluation:
    """Evaluate a model directory (default: the shipped model) and the baseline on ``data``.

    ``backend`` is passed to :meth:`DisclosureClassifier.load` (see :mod:`.backends`).
    ``baseline_train`` overrides the baseline's training data (default: the split the model
    was trained on, from its ``training.json``); ``baseline_split`` names its split when it is
    a saved ``DatasetDict``. ``progress`` shows each step on stderr (labeling with a bar, then
    the baseline's cross-validated fit, the slow part), so a long evaluation never looks hung.
    """
    from .classifier import DisclosureClassifier
    from .modelstore import check_model_dir, default_model_dir

    if baseline_split is not None and baseline_train is None:
        raise DisclosureError("--baseline-split names a split of --baseline-train, which was not given")
    dataset = load_labeled(data, columns, split=split)
    texts, gold = list(dataset["text"]), list(dataset["label"])
    source_dir = check_model_dir(default_model_dir() if model is None else model)
    with _Steps(progress) as steps:
        steps.start("loading the model")
        classifier = classifier or DisclosureClassifier.load(source_dir, backend=backend)
        probs = steps.label(classifier, texts, batch_size)
        result = _finish(steps, data, source_dir, texts, gold, probs, columns, with_baseline, baseline_train,
                         baseline_split)
    return result


def evaluate_real(
    model: str | os.PathLike[str] | None,
    claff_csv: str | os.PathLike[str],
    *,
    split: str = "test",
    labels_path: str | os.PathLike[str] | None = None,
    baseline_train: str | os.PathLike[str] | None = None,
    baseline_split: str | None = None,
    with_baseline: bool = True,
    batch_size: int = 32,
    classifier=None,
    backend: str = "torch",
    progress: bool = False,
) -> Evaluation:
    """Evaluate on one split of the project's labeled CL-Aff sentences, read from the user's CSV.

    Why not ``evaluate(data=...)``: the corpus text may not be copied into a labeled file that
    ships, so the labels (ids only) are joined with the public CSV at run time, as training does.
    The baseline is fitted on what the model was fitted on: its team-written split, plus, when
    its ``training.json`` records real training data, real-train repeated as often as it was
    (``real.weight``), so the gap to it is what the transformer adds, not what more data adds.
    """
    from .classifier import DisclosureClassifier
    from .modelstore import check_model_dir, default_model_dir, read_json_file
    from .realdata import REAL_SPLITS, default_labels_path, labels_name, load_real

    if baseline_split is not None and baseline_train is None:
        raise DisclosureError("--baseline-split names a split of --baseline-train, which was not given")
    if split not in REAL_SPLITS:
        raise DisclosureError(f"unknown split {split!r}; expected one of {', '.join(REAL_SPLITS)}")
    labels = Path(labels_path) if labels_path is not None else default_labels_path()
    examples = load_real(claff_csv, labels_path=labels)  # one read of the CSV for the scored split and real-train
    scored = [x for x in examples if x.split == split]
    if not scored:
        raise DisclosureError(f"{labels}: no sentence is labeled for split {split!r}")
    texts, gold = [x.text for x in scored], [LAYERS.index(x.layer) for x in scored]
    source_dir = check_model_dir(default_model_dir() if model is None else model)
    extra: tuple[list[str], list[int]] = ([], [])
    record = source_dir / "training.json"
    real = read_json_file(record).get("real") if record.exists() else None
    if with_baseline and real:
        weight = int(real.get("weight", 1))
        train = [x for x in examples if x.split == "train"]
        extra = ([x.text for x in train] * weight, [LAYERS.index(x.layer) for x in train] * weight)
    with _Steps(progress) as steps:
        steps.start("loading the model")
        classifier = classifier or DisclosureClassifier.load(source_dir, backend=backend)
        probs = steps.label(classifier, texts, batch_size)
        return _finish(steps, f"{claff_csv} (real-{split}, labels {labels_name(labels)})", source_dir, texts, gold, probs,
                       Columns(), with_baseline, baseline_train, baseline_split, extra_train=extra)


def _finish(steps, data, source_dir, texts, gold, probs, columns, with_baseline, baseline_train,
            baseline_split, extra_train: tuple[list[str], list[int]] = ([], [])) -> Evaluation:
    predicted = probs.argmax(axis=1).tolist()
    report = compute_report(gold, predicted, [expected_depth(p) for p in probs], system="model")

    baseline_report, train_file, c, gain = None, None, None, None
    if with_baseline:
        train_file = Source(Path(baseline_train), baseline_split) if baseline_train else training_split_of(source_dir)
        if train_file is None:
            raise DisclosureError(
                f"{source_dir}: its training split is not recorded or not found; pass --baseline-train "
                "FILE or --no-baseline"
            )
        from .baseline import TfidfBaseline

        train_set = load_labeled(train_file.path, columns, split=train_file.split, split_option="--baseline-split")
        train_texts = list(train_set["text"]) + extra_train[0]
        train_labels = list(train_set["label"]) + extra_train[1]
        steps.start(f"TF-IDF baseline on {len(train_texts)} messages (--no-baseline skips it)")
        baseline = TfidfBaseline.fit(train_texts, train_labels)
        base_probs = baseline.predict_proba(texts)
        baseline_report = compute_report(
            gold, base_probs.argmax(axis=1).tolist(), [expected_depth(p) for p in base_probs], system="tfidf-baseline"
        )
        c = baseline.c
        gain = macro_f1_interval(gold, predicted, base_probs.argmax(axis=1).tolist())
    baseline_name = None
    if train_file:
        baseline_name = str(train_file) + (f" + {len(extra_train[0])} real-train sentences" if extra_train[0] else "")
    return Evaluation(str(data), str(source_dir), report, baseline_report, baseline_name, c,
                      calibration=calibration_report(probs, gold), macro_f1_interval=macro_f1_interval(gold, predicted),
                      gain_interval=gain)


class _Steps:
    """What evaluate is doing, on stderr: a spinner per step and a bar while labeling."""

    def __init__(self, enabled: bool) -> None:
        self.progress = None
        self.task = None
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                     MofNCompleteColumn(), TimeElapsedColumn(), console=Console(stderr=True),
                                     transient=True)

    def __enter__(self) -> "_Steps":
        if self.progress is not None:
            self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> bool:
        if self.progress is not None:
            self.progress.__exit__(*exc)
        return False

    def start(self, description: str, total: int | None = None) -> None:
        if self.progress is None:
            return
        if self.task is not None:
            self.progress.update(self.task, visible=False)
        self.task = self.progress.add_task(description, total=total)

    def label(self, classifier, texts: list[str], batch_size: int):
        """Class probabilities of ``texts``, in chunks so the bar moves."""
        import numpy as np

        if self.progress is None:
            return classifier.predict_proba(texts, batch_size=batch_size)
        self.start(f"labeling {len(texts)} messages", total=len(texts))
        parts = []
        for start in range(0, len(texts), 256):
            parts.append(classifier.predict_proba(texts[start:start + 256], batch_size=batch_size))
            self.progress.update(self.task, advance=len(parts[-1]))
        return np.concatenate(parts) if parts else np.zeros((0, 4))


def record_evaluation(model_dir: str | os.PathLike[str], label: str, evaluation: Evaluation) -> None:
    """Add an evaluation to the model's ``metrics.json`` and re-render its model card."""
    from .modelcard import render_model_card

    directory = Path(model_dir)
    metrics_path, training_path = directory / "metrics.json", directory / "training.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    entry = evaluation.to_dict()
    entry.pop("model_dir")  # the folder it is written into; an absolute path would name this machine in a shipped file
    metrics.setdefault("evaluations", {})[label] = entry
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n")
    if training_path.exists():  # the card says what it cannot show (no dev figures of an averaged model)
        training = json.loads(training_path.read_text())
        (directory / "README.md").write_text(render_model_card(directory.name, training, metrics))


def format_report(report: EvaluationReport) -> str:
    """Plain-text rendering of one report, for terminals and closing notes."""
    spearman = "n/a" if report.spearman is None else f"{report.spearman:.3f}"
    lines = [
        f"{report.system}: n={report.n}  accuracy={report.accuracy:.3f}  macro-F1={report.macro_f1:.3f}  "
        f"MAE={report.mean_abs_error:.3f}  within-one={report.within_one:.3f}  spearman={spearman}",
        f"  {'layer':<13}{'precision':>10}{'recall':>9}{'F1':>8}{'support':>9}",
    ]
    for name in LAYERS:
        s = report.per_layer[name]
        lines.append(f"  {name:<13}{s.precision:>10.3f}{s.recall:>9.3f}{s.f1:>8.3f}{s.support:>9d}")
    lines.append("  confusion (rows gold, columns predicted): " + "  ".join(f"{n[:4]:>5}" for n in LAYERS))
    for name, row in zip(LAYERS, report.confusion):
        lines.append(f"  {name:<13}" + " " * 29 + "  ".join(f"{v:>5d}" for v in row))
    return "\n".join(lines)
