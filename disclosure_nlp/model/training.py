"""Fine-tuning a transformer into a disclosure-layer classifier.

A plain PyTorch loop rather than ``transformers.Trainer``: the Trainer's checkpoints carry
pickles (optimizer state, ``training_args.bin``) that this project never writes, and on a
2-core CPU the loop's length-bucketed batches matter more than anything the Trainer adds.
The best epoch by dev macro-F1 is kept in memory and written once at the end, through a
staging directory that is renamed into place, so an interrupted run never leaves a directory
that looks like a finished model.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import random
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from .data import Columns, Source, load_labeled, training_sources
from ..errors import DataError, DisclosureError
from ..layers import ID2LABEL, LABEL2ID, LAYERS
from .metrics import EvaluationReport, compute_report
from .modelstore import DEFAULT_BASE_PACKAGE, base_model_path, enforce_offline
from .realdata import labels_name
from ..io.outputs import AlreadyExists
from ..io.safe_files import replace_folder, staged_folder


@dataclass
class TrainConfig:
    """Hyper-parameters of a training run; saved as JSON next to the model."""

    base_model: str = DEFAULT_BASE_PACKAGE
    epochs: int = 4
    batch_size: int = 16
    learning_rate: float = 8e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    patience: int = 2
    """Epochs without a better dev macro-F1 before stopping."""
    seed: int = 13
    data_seed: int | None = None
    """Seed of the batch order and the dropout draws (``None``: ``seed``). ``seed`` alone fixes
    the new classification layer's starting weights, so runs that share it and differ here can
    be averaged (``scripts/average_models.py``); runs of different seeds start from different
    layers, and their average is worse than either."""
    max_length: int = 256
    freeze_embeddings: bool = True
    """Keep the word embeddings of the base model: rare words seen only at test time keep
    their pre-trained meaning, and the shipped model can leave that matrix to the base package."""
    label_smoothing: float = 0.05
    device: str | None = None
    real_weight: int = 2
    """How many times each real training sentence is seen per epoch (with ``real_csv``): real
    sentences are fewer than the team's messages, and they are the text the model must hold on."""
    calibrate: bool = True
    """Fit a calibration on held-out data (real-dev when given, else dev) and fold it into the
    classification layer (see :mod:`.calibration`)."""
    calibration_method: str = "vector"
    """``vector`` (a scale and a bias per layer) or ``temperature`` (one number, labels kept)."""
    real_layer_weights: dict[str, int] | None = None
    """With ``real_csv``: times a real-train sentence of a layer is seen, on top of ``real_weight``
    (``{"core": 4}``: each of the 137 real `core` sentences four times as often). Real `core` is
    under 2% of real-train, and it is the layer real text is hardest on."""
    crowd_weight: float = 0.0
    """With ``real_csv``: the loss weight of the CL-Aff crowd labels as weak supervision (0: not
    used). Each unlabeled sentence of a real-train post joins training once per epoch with a soft
    target (see :func:`~disclosure_nlp.model.realdata.crowd_weak_examples`)."""
    teacher: str | None = None
    """A trained model folder (any size, any tokenizer) whose probabilities every training row
    also learns: knowledge distillation, so a model too large or slow to ship can still pass on
    what it learned to the small one that ships. Computed once, before the first epoch."""
    distill_weight: float = 0.5
    """With ``teacher``: the share of the loss that is the teacher's (0: gold labels only, 1:
    the teacher's distributions only)."""
    distill_temperature: float = 2.0
    """With ``teacher``: both distributions are flattened by this temperature before they are
    compared, so the teacher's second choices, not only its first, reach the student."""


@dataclass
class EpochLog:
    epoch: int
    train_loss: float
    dev_macro_f1: float
    dev_accuracy: float
    seconds: float
    real_dev_macro_f1: float | None = None


@dataclass
class TrainResult:
    output_dir: Path
    config: TrainConfig
    best_epoch: int
    dev_report: EvaluationReport
    history: list[EpochLog] = field(default_factory=list)
    seconds: float = 0.0
    train_size: int = 0
    dev_size: int = 0
    real_dev_report: EvaluationReport | None = None
    calibration: dict | None = None
    real: dict | None = None
    train_labels: list[int] = field(default_factory=list, repr=False)


def _sha256(path: Path) -> str | None:
    if not path.is_file():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _batches(lengths: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar-length examples (shuffle, sort in large windows, chunk)."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = batch_size * 32
    batches: list[list[int]] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lengths.__getitem__)
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def _collate(encoded: list[list[int]], batch: list[int], pad_id: int):
    """Padded token ids and their attention mask for one batch (targets are built by the caller:
    class ids, or distributions for weak rows)."""
    import torch

    width = max(len(encoded[i]) for i in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, index in enumerate(batch):
        ids[row, : len(encoded[index])] = torch.tensor(encoded[index])
        mask[row, : len(encoded[index])] = 1
    return ids, mask


def _soft_batch(data: "_Encoded", batch: list[int], crowd_weight: float):
    """Probability targets for a batch that mixes labeled rows (one-hot, weight 1) and weak rows
    (their distribution, weight ``crowd_weight``)."""
    import torch

    target = torch.zeros((len(batch), len(LAYERS)), dtype=torch.float32)
    weight = torch.ones(len(batch), dtype=torch.float32)
    for row, index in enumerate(batch):
        soft = data.soft_targets.get(index)
        if soft is None:
            target[row, data.train_labels[index]] = 1.0
        else:
            target[row] = torch.tensor(soft)
            weight[row] = crowd_weight
    return target, weight


def _predict_logits(model, encoded, pad_id, device, batch_size=64):
    import numpy as np
    import torch

    from .classifier import length_sorted_batches

    out = np.zeros((len(encoded), len(LAYERS)), dtype=np.float32)
    model.eval()
    with torch.inference_mode():
        for batch in length_sorted_batches([len(e) for e in encoded], batch_size):
            ids, mask = _collate(encoded, batch, pad_id)
            out[batch] = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float().cpu().numpy()
    return out


def _predict_ids(model, encoded, pad_id, device, batch_size=64):
    from .calibration import softmax

    return softmax(_predict_logits(model, encoded, pad_id, device, batch_size))


def _report(model, encoded, gold, pad_id, device) -> EvaluationReport:
    from ..layers import expected_depth

    probs = _predict_ids(model, encoded, pad_id, device)
    return compute_report(gold, probs.argmax(axis=1).tolist(), [expected_depth(p) for p in probs])


def _load_real(real_csv, real_labels, crowd: bool = False):
    """Real train and dev sentences (text, label id) joined from the CL-Aff CSV, or empty lists;
    with ``crowd``, also the weak examples and their table (else an empty list and ``None``)."""
    if real_csv is None:
        return [], [], None, [], None
    from .realdata import crowd_weak_examples, default_labels_path, load_real, read_labels

    labels_path = Path(real_labels) if real_labels is not None else default_labels_path()
    examples = load_real(real_csv, labels_path=labels_path)
    train = [(x.text, LABEL2ID[x.layer]) for x in examples if x.split == "train"]
    dev = [(x.text, LABEL2ID[x.layer]) for x in examples if x.split == "dev"]
    weak, table = crowd_weak_examples(real_csv, read_labels(labels_path)) if crowd else ([], None)
    if crowd and not weak:
        # Since labeling round 6 every sentence of real-train posts is labeled, so the shipped
        # labels leave the crowd nothing to add; a run that asked for it must not pass for one.
        raise DataError(f"{labels_path}: labels every sentence of the real-train posts in {real_csv}, so crowd "
                        "weak supervision has no sentence to use; give --real-labels an earlier round's file "
                        "(e.g. data/real/claff_labels_rounds1-5.jsonl) or leave --crowd-weight at 0")
    return train, dev, labels_path, weak, table


@dataclass
class _Encoded:
    """Token ids and labels of every split a run uses (real-train already folded into train)."""

    train_ids: list[list[int]]
    train_labels: list[int]
    dev_ids: list[list[int]]
    dev_labels: list[int]
    pad_id: int
    real_dev_ids: list[list[int]] = field(default_factory=list)
    real_dev_labels: list[int] = field(default_factory=list)
    soft_targets: dict[int, tuple[float, ...]] = field(default_factory=dict)
    """Rows of train that learn a distribution (weak examples; their label is -1), by index."""
    train_texts: list[str] = field(default_factory=list, repr=False)
    """The text of each train row, in row order (the teacher reads it with its own tokenizer)."""
    teacher_targets: object | None = None
    """With a teacher: its distribution of each train row, flattened by the temperature (array n×4)."""


def weight_real_layers(real_train: list[tuple[str, int]], weights: dict[str, int] | None) -> list[tuple[str, int]]:
    """Real-train with the sentences of each weighted layer repeated: ``weights[layer] - 1`` more
    copies, appended after the whole list in the order of :data:`LAYERS`."""
    weights = weights or {}
    unknown = sorted(set(weights) - set(LAYERS))
    if unknown:
        raise DisclosureError(f"real layer weights: unknown layer(s) {', '.join(unknown)}; the layers are {', '.join(LAYERS)}")
    if any(not isinstance(w, int) or w < 1 for w in weights.values()):
        raise DisclosureError(f"real layer weights must be whole numbers of at least 1, not {weights}")
    extra = [row for layer in LAYERS for row in [r for r in real_train if r[1] == LABEL2ID[layer]] * (weights.get(layer, 1) - 1)]
    return real_train + extra


def _encode_all(tokenizer, config: TrainConfig, train_set, dev_set, real_train, real_dev, weak) -> _Encoded:
    """Token ids of every split: real-train appended ``config.real_weight`` times, weak rows last."""

    def encode(texts):
        return tokenizer(list(texts), truncation=True, max_length=config.max_length)["input_ids"]

    data = _Encoded(encode(train_set["text"]), list(train_set["label"]), encode(dev_set["text"]), list(dev_set["label"]),
                    pad_id=tokenizer.pad_token_id or 0, train_texts=list(train_set["text"]))
    if real_train:
        real_ids = encode([t for t, _ in real_train])
        for _ in range(config.real_weight):
            data.train_ids += real_ids
            data.train_labels += [y for _, y in real_train]
            data.train_texts += [t for t, _ in real_train]
    if weak:
        start = len(data.train_ids)
        data.train_ids += encode([x.text for x in weak])
        data.train_labels += [-1] * len(weak)
        data.train_texts += [x.text for x in weak]
        data.soft_targets = {start + i: x.target for i, x in enumerate(weak)}
    data.real_dev_ids = encode([t for t, _ in real_dev]) if real_dev else []
    data.real_dev_labels = [y for _, y in real_dev]
    return data


def flatten(probabilities, temperature: float):
    """Distributions raised to ``1 / temperature`` and renormalised: the same as dividing the
    logits by the temperature, from probabilities (all a loaded model folder gives)."""
    import numpy as np

    from .calibration import softmax

    logp = np.log(np.clip(np.asarray(probabilities, dtype=np.float64), 1e-12, 1.0))
    return softmax(logp, temperature).astype(np.float32)


def check_teacher(config: TrainConfig) -> Path | None:
    """The teacher's folder, checked before any other work: a wrong path or setting is reported
    at once, not after the data and the base model are loaded."""
    if config.teacher is None:
        return None
    if not 0.0 <= config.distill_weight <= 1.0:
        raise DisclosureError(f"distill weight must be between 0 and 1, not {config.distill_weight}")
    if not config.distill_temperature > 0:
        raise DisclosureError(f"distill temperature must be above 0, not {config.distill_temperature}")
    folder = Path(config.teacher)
    if not (folder / "config.json").is_file():
        raise DisclosureError(f"{folder}: not a model folder (no config.json); --teacher takes a model that "
                              "`disclosure train` wrote")
    return folder


def teacher_targets(folder: Path, texts: list[str], temperature: float, max_length: int):
    """The teacher's flattened distribution of each text, each distinct text run once.

    The teacher is loaded like any model folder (safetensors only, its labels checked against
    the four layers), so a teacher is data, never code.
    """
    from .classifier import DisclosureClassifier

    teacher = DisclosureClassifier.load(folder, backend="torch", max_length=max_length)
    distinct = list(dict.fromkeys(texts))
    probs = teacher.predict_proba(distinct)
    row = {text: i for i, text in enumerate(distinct)}
    del teacher
    return flatten(probs[[row[t] for t in texts]], temperature)


def _base_model(base_dir: Path, config: TrainConfig, device: str):
    """The base model with a fresh four-layer head, and its tokenizer, loaded from local files only."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(base_dir, local_files_only=True)
    tokenizer.model_max_length = config.max_length
    model = AutoModelForSequenceClassification.from_pretrained(
        base_dir,
        num_labels=len(LAYERS),
        id2label=ID2LABEL,
        label2id=LABEL2ID,
        local_files_only=True,
        use_safetensors=True,
    )
    if config.freeze_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    model.to(device)
    return model, tokenizer


def _distill_loss(logits, targets, temperature: float):
    """KL divergence from the teacher's flattened distribution to the student's, times the
    temperature squared so that its gradients keep the scale of the gold-label loss (Hinton et
    al. 2015)."""
    import torch

    target = torch.as_tensor(targets, device=logits.device)
    student = torch.log_softmax(logits / temperature, dim=1)
    return torch.nn.functional.kl_div(student, target, reduction="batchmean") * temperature**2


def _fit(model, data: _Encoded, config: TrainConfig, device: str, progress: bool,
         on_epoch: Callable[[EpochLog], None] | None):
    """The epochs: train, score dev (and real-dev), keep the best state, stop after ``patience``
    epochs without gain. Returns the history, the best epoch, its weights and its reports."""
    import torch
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
    from transformers import get_linear_schedule_with_warmup

    rng = random.Random(config.seed if config.data_seed is None else config.data_seed)
    steps_per_epoch = -(-len(data.train_ids) // config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.learning_rate, weight_decay=config.weight_decay)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.warmup_ratio * total_steps), total_steps)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    soft_loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=config.label_smoothing, reduction="none")

    history: list[EpochLog] = []
    best_f1, best_epoch, best_state, best_report, stale = -1.0, 0, None, None, 0
    best_real_report = None
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.3f}"),
        TimeRemainingColumn(),
        disable=not progress,
    )
    with bar:
        for epoch in range(1, config.epochs + 1):
            epoch_start = time.perf_counter()
            task = bar.add_task(f"epoch {epoch}/{config.epochs}", total=steps_per_epoch, loss=0.0)
            model.train()
            running = 0.0
            for step, batch in enumerate(_batches([len(x) for x in data.train_ids], config.batch_size, rng), 1):
                ids, mask = _collate(data.train_ids, batch, data.pad_id)
                logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
                if data.soft_targets:
                    target, weight = _soft_batch(data, batch, config.crowd_weight)
                    loss = (soft_loss_fn(logits, target.to(device)) * weight.to(device)).sum() / len(batch)
                else:
                    loss = loss_fn(logits, torch.tensor([data.train_labels[i] for i in batch], device=device))
                if data.teacher_targets is not None:
                    loss = (1 - config.distill_weight) * loss + config.distill_weight * _distill_loss(
                        logits, data.teacher_targets[batch], config.distill_temperature)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(trainable, 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                running += loss.item()
                bar.update(task, advance=1, loss=running / step)
            report = _report(model, data.dev_ids, data.dev_labels, data.pad_id, device)
            real_report = (_report(model, data.real_dev_ids, data.real_dev_labels, data.pad_id, device)
                           if data.real_dev_ids else None)
            score = report.macro_f1 if real_report is None else (report.macro_f1 + real_report.macro_f1) / 2
            log = EpochLog(epoch, running / steps_per_epoch, report.macro_f1, report.accuracy, time.perf_counter() - epoch_start,
                           real_dev_macro_f1=None if real_report is None else real_report.macro_f1)
            history.append(log)
            bar.update(task, description=f"epoch {epoch}/{config.epochs} dev macro-F1 {report.macro_f1:.3f}")
            if on_epoch:
                on_epoch(log)
            if score > best_f1:
                best_f1, best_epoch, best_report, stale = score, epoch, report, 0
                best_real_report = real_report
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                stale += 1
                if stale >= config.patience:
                    break
    return history, best_epoch, best_state, best_report, best_real_report


def train(
    train_path: str | os.PathLike[str],
    dev_path: str | os.PathLike[str] | None,
    output_dir: str | os.PathLike[str],
    config: TrainConfig | None = None,
    *,
    columns: Columns = Columns(),
    force: bool = False,
    progress: bool = True,
    on_epoch: Callable[[EpochLog], None] | None = None,
    train_split: str | None = None,
    dev_split: str | None = None,
    real_csv: str | os.PathLike[str] | None = None,
    real_labels: str | os.PathLike[str] | None = None,
) -> TrainResult:
    """Fine-tune ``config.base_model`` on ``train_path``, pick the best epoch on ``dev_path``.

    Either may be a ``datasets`` ``DatasetDict`` saved with ``save_to_disk``: ``train_split``
    defaults to ``train`` and ``dev_split`` to ``validation`` or ``dev``, and ``dev_path=None``
    takes the dev split from ``train_path`` (see :func:`~disclosure_nlp.model.data.training_sources`).
    ``real_csv`` is the public CL-Aff OffMyChest CSV: the project's own labels of its sentences
    (``data/real/claff_labels.jsonl``, or ``real_labels``) are joined with it, real-train joins
    the training data (``config.real_weight`` times), and the best epoch is the one with the
    best mean of dev and real-dev macro-F1, so neither kind of text is given up for the other.
    Writes a model directory that ``transformers`` loads directly, with ``metrics.json``,
    ``training.json`` (which records the paths and splits) and a model card. Refuses to
    replace an existing directory unless ``force``.
    """
    enforce_offline()
    config = config or TrainConfig()
    target = Path(output_dir)
    if target.exists() and any(target.iterdir()) and not force:
        raise AlreadyExists(target, verb="replace")
    _check_writable_parent(target)
    started = time.perf_counter()
    # The data and the base model are checked before PyTorch is imported, so that a wrong
    # label or path is reported at once, not after seconds of imports.
    train_source, dev_source = training_sources(train_path, dev_path, train_split=train_split, dev_split=dev_split)
    train_set = load_labeled(train_source.path, columns, split=train_source.split)
    dev_set = load_labeled(dev_source.path, columns, split=dev_source.split)
    if config.crowd_weight and real_csv is None:
        raise DisclosureError("crowd_weight needs real_csv (the CL-Aff CSV whose crowd labels it uses)")
    if config.real_layer_weights and real_csv is None:
        raise DisclosureError("real_layer_weights (--real-layer-weight) needs real_csv (--real-csv, the CL-Aff CSV whose sentences it weights)")
    weight_real_layers([], config.real_layer_weights)  # a wrong layer name is reported before any loading
    teacher_dir = check_teacher(config)
    real_train, real_dev, real_labels_path, weak, crowd_table = _load_real(real_csv, real_labels, crowd=config.crowd_weight > 0)
    real_sentences = len(real_train)
    real_train = weight_real_layers(real_train, config.real_layer_weights)
    base_dir = base_model_path(config.base_model)

    import torch

    seed_everything(config.seed)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    device = config.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model, tokenizer = _base_model(base_dir, config, device)

    data = _encode_all(tokenizer, config, train_set, dev_set, real_train, real_dev, weak)
    if teacher_dir is not None:
        with torch.random.fork_rng(devices=[]):  # loading the teacher must not move the run's random draws
            data.teacher_targets = teacher_targets(teacher_dir, data.train_texts, config.distill_temperature, config.max_length)
    if config.data_seed is not None:
        seed_everything(config.data_seed)  # dropout draws; the classification layer is already made
    history, best_epoch, best_state, best_report, best_real_report = _fit(model, data, config, device, progress, on_epoch)
    model.load_state_dict(best_state)
    calibration = calibrate_model(model, data.real_dev_ids or data.dev_ids, data.real_dev_labels or data.dev_labels,
                                  data.pad_id, device, "real-dev" if data.real_dev_ids else "dev",
                                  config.calibration_method) if config.calibrate else None
    result = TrainResult(
        output_dir=target, config=config, best_epoch=best_epoch, dev_report=best_report, history=history,
        seconds=time.perf_counter() - started, train_size=len(data.train_ids), dev_size=len(data.dev_ids),
        real_dev_report=best_real_report, calibration=calibration, train_labels=data.train_labels,
        real={"csv": str(real_csv), "labels": labels_name(real_labels_path), "train": real_sentences, "dev": len(real_dev),
              "weight": config.real_weight, "views_per_epoch": len(real_train) * config.real_weight,
              **({"layer_weights": config.real_layer_weights} if config.real_layer_weights else {}),
              **({"crowd_weak": len(weak), "crowd_weight": config.crowd_weight, "crowd_table": crowd_table} if weak else {})}
        if real_csv is not None else None,
    )
    _write_model_dir(model, tokenizer, result, train_source, dev_source, train_set, force=force)
    return result


def calibrate_model(model, encoded, gold, pad_id, device, name: str, method: str = "vector") -> dict:
    """Fit a calibration on held-out data and fold it into the model; returns the record."""
    from .calibration import (
        METHODS,
        VECTOR_BIAS_PENALTY,
        calibration_report,
        fit_temperature,
        fit_vector_scaling,
        fold_temperature,
        fold_vector_scaling,
        softmax,
    )

    if method not in METHODS:
        raise DisclosureError(f"unknown calibration method {method!r}; expected one of {', '.join(METHODS)}")
    logits = _predict_logits(model, encoded, pad_id, device)
    before = calibration_report(softmax(logits), gold)
    record: dict = {"method": method}
    if method == "temperature":
        temperature = fit_temperature(logits, gold)
        fold_temperature(model, temperature)
        record["temperature"] = round(temperature, 4)
    else:
        scales, biases = fit_vector_scaling(logits, gold)
        fold_vector_scaling(model, scales, biases)
        record.update(scales=[round(v, 4) for v in scales], biases=[round(v, 4) for v in biases],
                      bias_penalty=VECTOR_BIAS_PENALTY)
    after = calibration_report(softmax(_predict_logits(model, encoded, pad_id, device)), gold)
    record.update(fitted_on=name, n=len(gold), ece_before=round(before.ece, 4), ece_after=round(after.ece, 4))
    return record


def _check_writable_parent(target: Path) -> None:
    """Before an hour of training, not after it: the model is written next to ``target`` and
    renamed into place, so its folder must take a new directory now."""
    if target.exists() and not target.is_dir():
        raise DisclosureError(f"{target}: exists and is not a directory")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        probe = Path(tempfile.mkdtemp(prefix=f".{target.name}-probe-", dir=target.parent))
        probe.rmdir()
    except OSError as err:
        raise DisclosureError(f"{target}: cannot write the model there ({err.strerror or err}); "
                              "choose another --output") from None


def write_records(directory: Path, name: str, training: dict, metrics: dict) -> None:
    """A model folder's own records: how it was trained, its metrics, and the model card made of them."""
    from .modelcard import render_model_card

    (directory / "training.json").write_text(json.dumps(training, indent=2) + "\n")
    (directory / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (directory / "README.md").write_text(render_model_card(name, training, metrics))


def _training_record(result: TrainResult, train_source: Source, dev_source: Source, train_set) -> dict:
    """training.json: enough to reproduce the run and to judge what the model has seen."""
    import torch
    import transformers

    registers: dict[str, int] = {}
    for name in train_set["register"]:
        registers[name or "(none)"] = registers.get(name or "(none)", 0) + 1
    if result.real:
        registers["claff_offmychest (real, CC BY 4.0)"] = result.real["views_per_epoch"]
        if result.real.get("crowd_weak"):
            registers["claff_offmychest crowd labels (weak, soft targets)"] = result.real["crowd_weak"]
    layer_counts = {LAYERS[i]: 0 for i in range(len(LAYERS))}
    for label in result.train_labels:
        if label >= 0:  # weak rows (-1) have a distribution, not a layer
            layer_counts[LAYERS[label]] += 1
    return {
        "config": asdict(result.config),
        "train": {"path": str(train_source.path), "split": train_source.split, "sha256": _sha256(train_source.path),
                  "rows": result.train_size, "layers": layer_counts, "registers": registers},
        "dev": {"path": str(dev_source.path), "split": dev_source.split, "sha256": _sha256(dev_source.path),
                "rows": result.dev_size},
        "real": result.real,
        "calibration": result.calibration,
        "best_epoch": result.best_epoch,
        "history": [asdict(h) for h in result.history],
        "seconds": round(result.seconds, 1),
        "environment": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "device": str(result.config.device or ("cuda" if torch.cuda.is_available() else "cpu")),
        },
    }


def _write_model_dir(model, tokenizer, result: TrainResult, train_source: Source, dev_source: Source, train_set, *, force: bool) -> None:
    target = result.output_dir
    target.parent.mkdir(parents=True, exist_ok=True)
    with staged_folder(target, mode=None) as staging:
        model.to("cpu")
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        metrics = {"dev": result.dev_report.to_dict()}
        if result.real_dev_report is not None:
            metrics["real_dev"] = result.real_dev_report.to_dict()
        if result.calibration is not None:
            metrics["calibration"] = result.calibration
        write_records(staging, target.name, _training_record(result, train_source, dev_source, train_set), metrics)
        if target.exists() and not force and any(target.iterdir()):
            raise DisclosureError(f"{target} appeared during training; not replacing it")
        replace_folder(staging, target)
