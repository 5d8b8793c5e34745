"""The sample conversations, with their gold layers, give the reciprocity figures their arcs describe.

data/conversations/README.md describes each conversation's arc; these tests check that the
analyzer, fed the gold layers, agrees with that description, and (slow) that the shipped model's
layers rank the conversations by reciprocity much as the gold layers do.
"""

import json
from collections import defaultdict
from pathlib import Path

import pytest

from disclosure_nlp.analysis.reciprocity import analyze_conversation

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "conversations" / "samples.jsonl"
MUTUAL = ["demo", "c02", "c19", "c23"]
ONE_SIDED = ["c03", "c04", "c21"]
DEFLECTION = ["c07", "c08", "c20"]


def _conversations():
    grouped = defaultdict(list)
    for line in SAMPLES.open(encoding="utf-8"):
        row = json.loads(line)
        grouped[row["conversation_id"]].append(row)
    return grouped


def _gold_figures():
    return {
        cid: analyze_conversation(
            [{"id": r["id"], "speaker": r["speaker"], "layer": r["meta"]["gold_layer"], "reply_to": r["reply_to"]} for r in rows],
            cid,
        )
        for cid, rows in _conversations().items()
    }


def test_mutual_deepening_is_more_reciprocal_than_one_sided_or_deflected():
    gold = _gold_figures()
    lowest_mutual = min(gold[c].reciprocity_index for c in MUTUAL)
    highest_other = max(gold[c].reciprocity_index for c in ONE_SIDED + DEFLECTION)
    assert lowest_mutual > highest_other
    assert all(gold[c].reciprocity_index < 0.35 for c in ONE_SIDED + DEFLECTION)


def test_one_sided_conversations_are_asymmetric_and_name_the_discloser():
    gold = _gold_figures()
    assert gold["c03"].most_disclosing == "rosa"
    assert gold["c21"].most_disclosing == "hollis"
    assert gold["c04"].most_disclosing == "quietharbor"
    for cid in ONE_SIDED:
        assert gold[cid].asymmetry > max(gold[c].asymmetry for c in ("demo", "c02"))


def test_single_speaker_and_two_message_conversations_give_reasons_not_figures():
    gold = _gold_figures()
    assert gold["c18"].n_speakers == 1
    assert gold["c18"].reciprocity_index is None and "reciprocity_index" in gold["c18"].reasons
    assert gold["c17"].lag1_correlation is None and "lag1_correlation" in gold["c17"].reasons


def test_conversations_that_deepen_have_positive_slopes():
    gold = _gold_figures()
    for cid in ("demo", "c02", "c09", "c14", "c19", "c22", "c24"):
        assert gold[cid].trajectory_slope > 0, cid


@pytest.mark.slow
def test_model_ranking_of_conversations_is_close_to_the_gold_ranking():
    from scipy.stats import spearmanr

    from disclosure_nlp.model.classifier import DisclosureClassifier

    clf = DisclosureClassifier.load()
    gold = _gold_figures()
    predicted = {}
    for cid, rows in _conversations().items():
        predictions = clf.predict([r["text"] for r in rows])
        predicted[cid] = analyze_conversation(
            [{"id": r["id"], "speaker": r["speaker"], "layer": p.layer, "depth": p.depth, "reply_to": r["reply_to"]}
             for r, p in zip(rows, predictions)],
            cid,
        )
    ids = [cid for cid in gold if gold[cid].reciprocity_index is not None and predicted[cid].reciprocity_index is not None]
    rho = spearmanr([gold[c].reciprocity_index for c in ids], [predicted[c].reciprocity_index for c in ids]).statistic
    assert rho >= 0.6, f"Spearman rho of reciprocity rankings: {rho:.3f}"
