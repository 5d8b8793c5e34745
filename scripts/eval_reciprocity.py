"""Reciprocity on real conversations: ESConv supporter self-disclosure, and a corpus view.

Why this exists
---------------
The reciprocity figures are only worth reporting if their per-turn signals track something
people coded by hand. ESConv (Liu et al. 2021) codes every supporter turn with a strategy, one
of them "Self-disclosure". This script rebuilds ESConv's conversations from its context windows
(``../shared/data/esconv/SOURCE.md``: one line per supporter turn, the dialogue so far joined by
`` EOS ``; a new conversation starts where the turn index goes back), labels every turn, and
measures how well each per-turn signal separates supporter self-disclosure turns from the
other supporter turns (ROC-AUC, with n):

* ``message_depth``: the model's depth of the supporter's own utterance;
* ``turn_depth``: the depth of the analyzer's turn holding it (consecutive utterances of one
  speaker are one turn);
* ``depth_gap``: turn depth minus the depth of the seeker turn it answers;
* ``rlsm``: turn-level depth matching with that prompt (:mod:`disclosure_nlp.analysis.matching`): a
  supporter who discloses after a seeker's disclosure matches; one who discloses after a
  question does not, so rLSM is not expected to separate well, and is reported anyway.

It also reports whether seekers deepen over a conversation (the pooled within-conversation
slope of seeker turn depth on turn position, with a bootstrap CI over conversations), and the
corpus view (:func:`disclosure_nlp.analysis.corpus.analyze_labeled`) on ESConv and on the first
``--dialogues`` DailyDialog test dialogues. Labels come from the shipped default model on CPU.
ESConv and DailyDialog are CC BY-NC (-SA): their text is read at run time and never written
into the project; ``--export DIR`` writes the rebuilt conversations as JSONL there for
``disclosure reciprocity`` (keep DIR outside the repository).

    python scripts/eval_reciprocity.py --data ../shared/data -o /tmp/eval_reciprocity.json
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from disclosure_nlp.analysis.corpus import analyze_labeled  # noqa: E402
from disclosure_nlp.layers import LAYERS  # noqa: E402
from disclosure_nlp.analysis.matching import turn_matches  # noqa: E402
from disclosure_nlp.analysis.reciprocity import LabeledMessage, analyze_conversation  # noqa: E402

SEEKER, SUPPORTER = "seeker", "supporter"
SELF_DISCLOSURE = "Self-disclosure"
_TURN = re.compile(r"^(\S+) ([01]) (\d+) (.*)$", re.S)
_STRATEGY = re.compile(r"^\[([^\]]+)\]\s*(.*)$", re.S)

Labeler = Callable[[Sequence[str]], list[tuple[str, float]]]


@dataclass(frozen=True)
class Utterance:
    index: int
    speaker: str
    text: str
    strategy: str | None


@dataclass
class Dialogue:
    conversation_id: str
    turns: list[Utterance] = field(default_factory=list)
    gaps: int = 0


# --------------------------------------------------------------------------- readers


def read_esconv(path: Path) -> list[Dialogue]:
    """ESConv conversations rebuilt from the context windows, utterances in index order.

    Every utterance seen in any window is kept (later windows repeat earlier ones verbatim); a
    conversation starts where the target's turn index is not above the previous target's.
    Indices never seen in a window (``gaps``) are missing from the rebuilt conversation.
    """
    dialogues: list[Dialogue] = []
    seen: dict[int, Utterance] = {}
    previous = None

    def close() -> None:
        if seen:
            ordered = [seen[i] for i in sorted(seen)]
            dialogues.append(Dialogue(f"esconv-{len(dialogues):03d}", ordered, max(seen) + 1 - len(seen)))

    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parsed = []
        for part in line.split(" EOS "):
            match = _TURN.match(part.strip())
            if match is None:
                raise ValueError(f"{path}, line {number}: a turn is not '<flag> <speaker> <index> <text>'")
            speaker = SUPPORTER if match.group(2) == "1" else SEEKER
            text, strategy = match.group(4).strip(), None
            tagged = _STRATEGY.match(text)
            if speaker == SUPPORTER and tagged:
                strategy, text = tagged.group(1), tagged.group(2).strip()  # the tag names the label: stripped
            parsed.append(Utterance(int(match.group(3)), speaker, text, strategy))
        target = parsed[-1].index
        if previous is not None and target <= previous:
            close()
            seen = {}
        for utterance in parsed:
            seen[utterance.index] = utterance
        previous = target
    close()
    return dialogues


def read_dailydialog(path: Path, limit: int) -> list[Dialogue]:
    """The first ``limit`` DailyDialog dialogues; speakers alternate A, B."""
    dialogues = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        if len(dialogues) >= limit:
            break
        texts = [t.strip() for t in line.split("__eou__") if t.strip()]
        if texts:
            dialogues.append(Dialogue(f"dailydialog-{number:04d}",
                                      [Utterance(i, "AB"[i % 2], t, None) for i, t in enumerate(texts)]))
    return dialogues


# --------------------------------------------------------------------------- labels


_FIRST_PERSON = re.compile(r"\b(i|i'm|i've|i'd|i'll|me|my|mine|myself)\b", re.I)


def pronoun_labels(texts: Sequence[str]) -> list[tuple[str, float]]:
    """Fixed labels for tests (no model): the count of first-person words, capped at 3, as the
    layer; a crude stand-in that makes numbers reproducible without weights."""
    out = []
    for text in texts:
        level = min(3, len(_FIRST_PERSON.findall(text)))
        out.append((LAYERS[level], float(level)))
    return out


def model_labeler(model: str | None = None, backend: str = "auto") -> Labeler:
    from disclosure_nlp.model.classifier import DisclosureClassifier, Prediction

    classifier = DisclosureClassifier.load(model, backend=backend)

    def label(texts: Sequence[str]) -> list[tuple[str, float]]:
        rows = classifier.predict_proba(list(texts), batch_size=32)
        predictions = [Prediction.from_probabilities(r) for r in rows.tolist()]
        return [(p.layer, p.depth) for p in predictions]

    return label


def labeled_dialogues(dialogues: Sequence[Dialogue], labeler: Labeler) -> list[tuple[str, list[LabeledMessage]]]:
    texts = [u.text for d in dialogues for u in d.turns]
    labels = iter(labeler(texts))
    out = []
    for d in dialogues:
        messages = []
        for u in d.turns:
            layer, depth = next(labels)
            messages.append(LabeledMessage(id=f"{d.conversation_id}-{u.index}", speaker=u.speaker, layer=layer,
                                           depth=depth))
        out.append((d.conversation_id, messages))
    return out


# --------------------------------------------------------------------------- figures


def roc_auc(scores: Sequence[float], positive: Sequence[bool]) -> dict[str, Any]:
    """Mann-Whitney AUC (ties count half) with the numbers of positives and negatives."""
    pos = [s for s, p in zip(scores, positive) if p]
    neg = [s for s, p in zip(scores, positive) if not p]
    if not pos or not neg:
        return {"auc": None, "n_positive": len(pos), "n_negative": len(neg), "reason": "one class is empty"}
    import numpy as np
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([pos, neg]))
    auc = (ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))
    return {"auc": round(float(auc), 4), "n_positive": len(pos), "n_negative": len(neg)}


def separation(dialogues: Sequence[Dialogue], labeled: Sequence[tuple[str, list[LabeledMessage]]]) -> dict[str, Any]:
    """Per supporter utterance with a strategy: its signals, and each signal's AUC for
    Self-disclosure vs the other strategies."""
    signals: dict[str, list[tuple[float, bool]]] = {"message_depth": [], "turn_depth": [], "depth_gap": [], "rlsm": []}
    for d, (_, messages) in zip(dialogues, labeled):
        result = analyze_conversation(messages, d.conversation_id, permutations=0)
        turn_of = {mid: t for t in result.turns for mid in t.message_ids}
        rlsm = {m.index: m.rlsm for m in turn_matches(result.turns)}
        for u, m in zip(d.turns, messages):
            if u.speaker != SUPPORTER or u.strategy is None:
                continue
            positive = u.strategy == SELF_DISCLOSURE
            turn = turn_of[m.id]
            signals["message_depth"].append((m.depth, positive))
            signals["turn_depth"].append((turn.depth, positive))
            if turn.depth_gap is not None:
                signals["depth_gap"].append((turn.depth_gap, positive))
                signals["rlsm"].append((rlsm[turn.index], positive))
    return {name: roc_auc([s for s, _ in pairs], [p for _, p in pairs]) for name, pairs in signals.items()}


def _corpus_view(labeled, *, seed: int, surrogates: int, bootstrap: int, name: str) -> dict[str, Any]:
    started = time.perf_counter()
    result = analyze_labeled(labeled, seed=seed, surrogates=surrogates, bootstrap=bootstrap, inputs=[name])
    data = result.to_dict()
    data.pop("conversations")
    data["seconds"] = round(time.perf_counter() - started, 2)
    return data


def evaluate(dialogues: Sequence[Dialogue], labeler: Labeler, *, seed: int = 0, surrogates: int = 200,
             bootstrap: int = 2000) -> dict[str, Any]:
    """All ESConv figures of ``dialogues`` labelled by ``labeler``."""
    labeled = labeled_dialogues(dialogues, labeler)
    supporter = [u for d in dialogues for u in d.turns if u.speaker == SUPPORTER and u.strategy is not None]
    corpus = _corpus_view(labeled, seed=seed, surrogates=surrogates, bootstrap=bootstrap, name="esconv")
    return {
        "n_conversations": len(dialogues),
        "n_utterances": sum(len(d.turns) for d in dialogues),
        "n_missing_utterances": sum(d.gaps for d in dialogues),
        "n_supporter_turns": len(supporter),
        "n_self_disclosure": sum(u.strategy == SELF_DISCLOSURE for u in supporter),
        "separation": separation(dialogues, labeled),
        "seeker_deepening": corpus["deepening"]["by_speaker"].get(SEEKER),
        "supporter_deepening": corpus["deepening"]["by_speaker"].get(SUPPORTER),
        "corpus": corpus,
    }


def export_jsonl(dialogues: Sequence[Dialogue], path: Path) -> None:
    """Rebuilt conversations as transcript JSONL for ``disclosure reciprocity`` (keep ``path``
    outside the repository: the text is non-commercial)."""
    with path.open("w", encoding="utf-8") as handle:
        for d in dialogues:
            for u in d.turns:
                row = {"id": f"{d.conversation_id}-{u.index}", "conversation_id": d.conversation_id,
                       "speaker": u.speaker, "text": u.text}
                if u.strategy:
                    row["strategy"] = u.strategy
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data", help="folder of the public corpora")
    parser.add_argument("--model", default=None, help="model directory (default: the shipped default model)")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--dialogues", type=int, default=300, help="DailyDialog dialogues in the corpus view")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--surrogates", type=int, default=200)
    parser.add_argument("--bootstrap", type=int, default=2000)
    parser.add_argument("--fixed-labels", action="store_true", help="first-person-word counts instead of the model (no weights)")
    parser.add_argument("--export", type=Path, default=None, help="also write esconv.jsonl and dailydialog.jsonl here")
    parser.add_argument("-o", "--output", type=Path, default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)

    esconv_path = args.data / "esconv" / "testWithStrategy_short.tsv"
    daily_path = args.data / "dailydialog" / "dialogues.txt"
    if not esconv_path.exists():
        print(f"error: {esconv_path} not found (see ../shared/data/esconv/SOURCE.md)", file=sys.stderr)
        return 2
    started = time.perf_counter()
    labeler = pronoun_labels if args.fixed_labels else model_labeler(args.model, args.backend)
    esconv = read_esconv(esconv_path)
    daily = read_dailydialog(daily_path, args.dialogues) if daily_path.exists() else []
    if args.export:
        args.export.mkdir(parents=True, exist_ok=True)
        export_jsonl(esconv, args.export / "esconv.jsonl")
        if daily:
            export_jsonl(daily, args.export / "dailydialog.jsonl")
    report: dict[str, Any] = {"labels": "fixed (first-person words)" if args.fixed_labels else "model",
                              "esconv": evaluate(esconv, labeler, seed=args.seed, surrogates=args.surrogates,
                                                 bootstrap=args.bootstrap)}
    if daily:
        report["dailydialog"] = _corpus_view(labeled_dialogues(daily, labeler), seed=args.seed,
                                             surrogates=args.surrogates, bootstrap=args.bootstrap, name="dailydialog")
    report["seconds"] = round(time.perf_counter() - started, 1)
    text = json.dumps(report, indent=2, ensure_ascii=False)
    print(text)
    if args.output:
        args.output.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
