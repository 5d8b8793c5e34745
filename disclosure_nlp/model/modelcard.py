"""The model card (README.md) written into every model directory.

A model directory travels on its own (shared between labs, uploaded to a hub), so its card must
say what the labels mean, what it was trained on, how well it did and where it is weak without
the rest of the project at hand.
"""

from __future__ import annotations

from pathlib import Path

from ..layers import DESCRIPTIONS, LAYERS


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def metrics_table(report: dict) -> str:
    lines = [
        "| figure | value |",
        "|---|---|",
        f"| examples | {report['n']} |",
        f"| accuracy | {_pct(report['accuracy'])} |",
        f"| macro-F1 | {_pct(report['macro_f1'])} |",
        f"| mean absolute layer error | {_pct(report['mean_abs_error'])} |",
        f"| within-one accuracy | {_pct(report['within_one'])} |",
        f"| Spearman (depth vs gold) | {_pct(report['spearman'])} |",
    ]
    lines += ["", "| layer | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for name in LAYERS:
        s = report["per_layer"][name]
        lines.append(f"| {name} | {s['precision']:.3f} | {s['recall']:.3f} | {s['f1']:.3f} | {s['support']} |")
    return "\n".join(lines)


def _data(record: dict) -> str:
    """A data source as the card shows it: the path, and the split of a saved DatasetDict."""
    split = record.get("split")
    return f"`{record['path']}`" + (f" (split `{split}`)" if split is not None else "")


def _calibration_line(calibration: dict) -> str:
    earlier = calibration.get("after")
    if calibration.get("method", "temperature") == "temperature":
        what = f"temperature {calibration['temperature']}"
        effect = "Labels are unchanged by it."
    else:
        pairs = ", ".join(f"{name} ×{a:.2f} {b:+.2f}" for name, a, b in zip(LAYERS, calibration["scales"], calibration["biases"]))
        what = f"vector scaling (a scale and a bias per layer: {pairs})"
        effect = "It can change labels where two layers were close."
    line = (
        f"- Calibration: {what} fitted on {calibration['fitted_on']} ({calibration['n']} messages) and folded into "
        f"the classification layer, so any loader sees calibrated probabilities; expected calibration error there "
        f"{calibration['ece_before']:.3f} before, {calibration['ece_after']:.3f} after. {effect}"
    )
    if isinstance(earlier, dict):
        line += f" It was fitted on top of the training run's own calibration ({earlier.get('method', 'temperature')})."
    return line + "\n"


def _layer_weights(real: dict) -> str:
    weights = real.get("layer_weights") or {}
    return "".join(f", those labeled `{layer}` {n}× as often" for layer, n in weights.items())


def _training_lines(training: dict) -> str:
    """How the model was trained, from its training.json; a folder that `disclosure train` did not
    write (a model from elsewhere, recalibrated here) says so instead of failing."""
    try:
        config = training["config"]
        data_seed = f" (data seed {config['data_seed']})" if config.get("data_seed") is not None else ""
        registers = ", ".join(f"{k} ({v})" for k, v in sorted(training["train"]["registers"].items()))
        return (
            f"- Base model: `{config['base_model']}` (word embeddings {'frozen' if config['freeze_embeddings'] else 'trained'})\n"
            f"- Training data: {_data(training['train'])}, {training['train']['rows']} messages "
            f"(sha256 `{(training['train']['sha256'] or '')[:12]}`); layers {training['train']['layers']}\n"
            f"- Registers: {registers}\n"
            f"- Dev data: {_data(training['dev'])}, {training['dev']['rows']} messages\n"
            f"- Epochs run: {len(training['history'])} of {config['epochs']}, best epoch {training['best_epoch']} by {'the mean of dev and real-dev' if training.get('real') else 'dev'} macro-F1; "
            f"batch {config['batch_size']}, learning rate {config['learning_rate']}, seed {config['seed']}{data_seed}, "
            f"max length {config['max_length']} tokens\n"
            f"- Time: {training['seconds']} s on {training['environment']['machine']} ({training['environment']['device']}), "
            f"torch {training['environment']['torch']}, transformers {training['environment']['transformers']}\n"
        )
    except (KeyError, TypeError, AttributeError):
        return "- Not recorded: this folder's training.json is missing or was not written by `disclosure train`.\n"


def _ingredient(entry: dict) -> str:
    real = entry.get("real") or {}
    extra = f"; {real['train']} real training sentences from `{real.get('labels')}`" if real.get("train") else ""
    return f"`{entry['model']}` (weight {entry['weight']:.2f}{extra})"


def render_model_card(name: str, training: dict, metrics: dict) -> str:
    label_rows = "\n".join(f"| {i} | `{layer}` | {DESCRIPTIONS[layer]} |" for i, layer in enumerate(LAYERS))
    sections = [
        "---\nlibrary_name: transformers\npipeline_tag: text-classification\nlanguage: en\ntags:\n- self-disclosure\n- disclosure_nlp\n---\n",
        f"# disclosure_nlp model `{name}`\n",
        "Labels the depth of the writer's self-disclosure in one chat message, after the layers of "
        "Altman & Taylor's social penetration theory. Produced by `disclosure train` "
        "(disclosure_nlp).\n",
        "## Labels\n",
        "| id | layer | the message reveals about its writer |\n|---|---|---|\n" + label_rows + "\n",
        "The depth score is the expected layer under the class probabilities (0.0–3.0). "
        "Label what the message reveals about its writer, not its topic; a message that mixes "
        "layers takes the deepest one. Full codebook: `data/CODEBOOK.md` in the project.\n",
        "## Use\n",
        "```python\nfrom transformers import pipeline\nclf = pipeline(\"text-classification\", model=\"PATH/TO/THIS/DIR\", top_k=None)\n"
        "clf(\"honestly I've been so lonely since the move\")\n```\n"
        "or `disclosure predict --model PATH \"…\"`, or `DisclosureClassifier.load(PATH)` in Python.\n",
        "## Training\n",
        _training_lines(training),
    ]
    averaged = training.get("averaged_from")
    if averaged:
        sections.append("- Weights: the average of " + ", ".join(_ingredient(a) for a in averaged)
                        + " (`scripts/average_models.py`, a model soup); the other lines describe the first.\n")
    real = training.get("real")
    if real:
        sections.append(
            f"- Real training data: {real['train']} sentences of the CL-Aff OffMyChest corpus (Jaidka et al., "
            f"AffCon @ AAAI 2020; Reddit r/offmychest and r/CasualConversation; CC BY 4.0, credit to its authors), "
            f"labeled by the disclosure_nlp team to this codebook (two independent passes, then adjudication), "
            f"each seen {real['weight']}× per epoch{_layer_weights(real)}; {real['dev']} more (real-dev, other Reddit posts) pick the epoch "
            f"with the dev set. Only ids and labels ship with the project (`data/real/claff_labels.jsonl`); the text "
            f"is read from the public CSV.\n"
        )
    if real and real.get("crowd_weak"):
        sections.append(
            f"- Weak supervision: {real['crowd_weak']} unlabeled sentences of the same Reddit posts, each with the "
            f"distribution of layers that real-train sentences with its CL-Aff crowd labels have (loss weight "
            f"{real['crowd_weight']}).\n"
        )
    config = training.get("config") or {}
    if config.get("teacher"):
        sections.append(
            f"- Distilled from the model `{Path(config['teacher']).name}` (knowledge distillation: "
            f"{config['distill_weight']:g} of the loss is the teacher's distributions at temperature "
            f"{config['distill_temperature']:g}, the rest the gold labels).\n"
        )
    calibration = training.get("calibration")
    if calibration:
        sections.append(_calibration_line(calibration))
    sections.append("## Metrics\n")
    if metrics.get("dev"):
        sections.append("### Dev set (used for early stopping, so optimistic)\n\n" + metrics_table(metrics["dev"]) + "\n")
    if metrics.get("real_dev"):
        sections.append("### Real-dev set (CL-Aff sentences; used for early stopping and calibration, so optimistic)\n\n"
                        + metrics_table(metrics["real_dev"]) + "\n")
    for label, evaluation in metrics.get("evaluations", {}).items():
        sections.append(f"### {label}\n\n" + metrics_table(evaluation["model"]) + "\n")
        extras = []
        if evaluation.get("macro_f1_interval"):
            interval = evaluation["macro_f1_interval"]
            extras.append(f"macro-F1 {interval['level']:.0%} bootstrap interval {interval['low']:.3f}-{interval['high']:.3f}")
        if evaluation.get("calibration"):
            extras.append(f"expected calibration error {evaluation['calibration']['ece']:.3f}")
        if extras:
            line = "; ".join(extras)
            sections.append(line[0].upper() + line[1:] + ".\n")
        if evaluation.get("baseline"):
            trained_on = f" (fitted on {evaluation['baseline_train']})" if evaluation.get("baseline_train") else ""
            sections.append(
                f"TF-IDF + logistic-regression baseline{trained_on}, on the same messages: macro-F1 "
                f"{evaluation['baseline']['macro_f1']:.3f}, accuracy {evaluation['baseline']['accuracy']:.3f}.\n"
            )
    sections += [
        "## Limits\n",
        "- English chat messages only; disclosure_nlp flags other languages instead of labeling them.\n"
        + ("- Trained on messages written by the project team and on real Reddit sentences; other real registers "
           "(therapy, support chats, texting) are judged by the external checks in the project's README.\n"
           if real else
           "- Trained on messages written by the project team to its codebook, not on a sample of real "
           "conversations, so figures on real data will be lower.\n")
        +
        "- One message at a time: context (\"me too\" after a disclosure) is deliberately ignored, as the codebook says.\n"
        "- Messages longer than the model's window are split into windows by disclosure_nlp; plain "
        "`transformers.pipeline` truncates them.\n"
        "- Not a clinical instrument: a `core` label is not a risk assessment. Do not use it to make "
        "decisions about individuals.\n",
    ]
    return "\n".join(sections)
