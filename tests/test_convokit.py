"""DisclosureTransformer on real ConvoKit Corpus objects, built offline from Utterances.

The transformer must write what ``disclosure annotate`` computes for the same conversations
(checked against annotate_frame and against the CLI's engine reading the dumped corpus), keep
every value JSON so ``Corpus.dump`` never pickles, and follow ConvoKit's Transformer API.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

convokit = pytest.importorskip("convokit")
pd = pytest.importorskip("pandas")

from disclosure_nlp.annotate import annotate  # noqa: E402
from disclosure_nlp.integrations.convokit_transformer import DisclosureTransformer  # noqa: E402
from disclosure_nlp.integrations.frame import analyze_frame  # noqa: E402
from disclosure_nlp.layers import LAYERS  # noqa: E402
from tests.fakes import HashClassifier  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data" / "conversations" / "samples.jsonl"
UTTERANCE_FIELDS = ("disclosure_layer", "disclosure_confidence", "disclosure_probabilities", "disclosure_depth",
                    "disclosure_turn")


def sample_records(conversations: int = 3) -> list[dict]:
    records = [json.loads(line) for line in SAMPLES.read_text(encoding="utf-8").splitlines() if line.strip()]
    keep = list(dict.fromkeys(r["conversation_id"] for r in records))[:conversations]
    return [r for r in records if r["conversation_id"] in keep]


def build_corpus(records: list[dict], *, deleted_after: str | None = None):
    """A Corpus from Utterance objects (no download, no files); optionally a deleted (empty)
    post inserted after the message ``deleted_after``."""
    speakers: dict[str, object] = {}
    utterances = []
    for position, record in enumerate(records):
        speaker = speakers.setdefault(record["speaker"], convokit.Speaker(id=record["speaker"]))
        utterances.append(convokit.Utterance(
            id=record["id"], speaker=speaker, conversation_id=record["conversation_id"], reply_to=record["reply_to"],
            timestamp=position, text=record["text"], meta={"gold_layer": record["meta"]["gold_layer"]},
        ))
        if record["id"] == deleted_after:
            utterances.append(convokit.Utterance(
                id="deleted-1", speaker=speaker, conversation_id=record["conversation_id"], reply_to=record["id"],
                timestamp=position, text="", meta={},
            ))
    return convokit.Corpus(utterances=utterances)


def utterance_fields(corpus) -> dict[str, dict]:
    return {u.id: {name: u.meta.get(name) for name in UTTERANCE_FIELDS} for u in corpus.iter_utterances()}


def expected_from_frame(records: list[dict], classifier) -> tuple[dict[str, dict], dict[str, dict]]:
    """What annotate_frame (the CLI's code) gives for the same messages, in the transformer's shape."""
    frame = pd.DataFrame.from_records([{k: r[k] for k in ("id", "conversation_id", "speaker", "text", "reply_to")} for r in records])
    result = analyze_frame(frame, classifier=classifier)
    fields = {}
    for row in result.messages.to_dict("records"):
        fields[row["id"]] = {
            "disclosure_layer": row["layer"],
            "disclosure_confidence": row["confidence"],
            "disclosure_probabilities": {layer: row[f"p_{layer}"] for layer in LAYERS},
            "disclosure_depth": row["depth"],
            "disclosure_turn": {
                "turn": row["turn"],
                "prompt_turn": None if pd.isna(row["prompt_turn"]) else int(row["prompt_turn"]),
                "depth_gap": None if pd.isna(row["depth_gap"]) else row["depth_gap"],
                "match": row["match"],
            },
        }
    figures = {cid: {"conversation_id": cid, **row} for cid, row in result.conversations.to_dict("index").items()}
    return fields, figures


def test_follows_the_transformer_api() -> None:
    corpus = build_corpus(sample_records(1))
    transformer = DisclosureTransformer(classifier=HashClassifier())
    assert isinstance(transformer, convokit.Transformer)
    assert transformer.fit(corpus) is transformer
    assert transformer.fit_transform(corpus) is corpus
    with pytest.raises(ValueError, match="run transform"):
        DisclosureTransformer(classifier=HashClassifier(), reciprocity_attr="other").summarize(corpus)


def test_transform_writes_what_the_cli_code_computes() -> None:
    records = sample_records(3)
    corpus = build_corpus(records)
    DisclosureTransformer(classifier=HashClassifier()).transform(corpus)
    fields, figures = expected_from_frame(records, HashClassifier())
    assert utterance_fields(corpus) == fields
    assert {c.id: c.meta["disclosure_reciprocity"] for c in corpus.iter_conversations()} == figures
    assert corpus.get_utterance(records[0]["id"]).meta["gold_layer"] == records[0]["meta"]["gold_layer"]  # kept


def test_empty_utterances_get_none_and_stay_out_of_the_analysis() -> None:
    records = sample_records(1)
    plain = build_corpus(records)
    with_deleted = build_corpus(records, deleted_after=records[2]["id"])
    for corpus in (plain, with_deleted):
        DisclosureTransformer(classifier=HashClassifier()).transform(corpus)
    assert all(value is None for value in utterance_fields(with_deleted)["deleted-1"].values())
    labeled = {k: v for k, v in utterance_fields(with_deleted).items() if k != "deleted-1"}
    assert labeled == utterance_fields(plain)


def test_dump_writes_json_only_and_the_cli_reads_the_same_values(tmp_path: Path) -> None:
    records = sample_records(3)
    corpus = build_corpus(records, deleted_after=records[4]["id"])
    DisclosureTransformer(classifier=HashClassifier()).transform(corpus)
    corpus.dump("labeled", base_path=str(tmp_path))
    folder = tmp_path / "labeled"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["utterances.jsonl", "speakers.json", "conversations.json", "corpus.json", "index.json"])
    assert not list(folder.rglob("*-bin.p"))  # nothing was pickled
    dumped = [json.loads(line) for line in (folder / "utterances.jsonl").read_text().splitlines()]
    assert "reply-to" in dumped[1] and "reply_to" not in dumped[1]  # ConvoKit's own spelling

    reloaded = convokit.Corpus(filename=str(folder))
    assert utterance_fields(reloaded) == utterance_fields(corpus)

    # The CLI's engine on the dumped directory (reading "reply-to"), skipping the empty post:
    out = tmp_path / "cli.jsonl"
    stats = annotate(folder, out, classifier=HashClassifier(), on_error="skip", summary=tmp_path / "s.json")
    assert stats.rejected == 1
    for row in map(json.loads, out.read_text().splitlines()):
        meta = corpus.get_utterance(row["id"]).meta
        assert meta["disclosure_layer"] == row["layer"] and meta["disclosure_depth"] == row["depth"]
        assert meta["disclosure_turn"] == {k: row[k] for k in ("turn", "prompt_turn", "depth_gap", "match")}
    summary = json.loads((tmp_path / "s.json").read_text())
    assert {c.id: c.meta["disclosure_reciprocity"] for c in corpus.iter_conversations()} == summary


def test_reply_target_kept_in_metadata_under_either_spelling() -> None:
    def corpus(meta_key: str | None):
        a, b, c = (convokit.Speaker(id=name) for name in "abc")
        third_meta = {meta_key: "m1"} if meta_key else {}
        return convokit.Corpus(utterances=[
            convokit.Utterance(id="m1", speaker=a, conversation_id="m1", text="one"),
            convokit.Utterance(id="m2", speaker=b, conversation_id="m1", text="two"),
            convokit.Utterance(id="m3", speaker=c, conversation_id="m1", text="three", meta=third_meta),
        ])

    prompts = {}
    for key in (None, "reply-to", "reply_to"):
        labeled = DisclosureTransformer(classifier=HashClassifier()).transform(corpus(key))
        prompts[key] = labeled.get_utterance("m3").meta["disclosure_turn"]["prompt_turn"]
    assert prompts == {None: 1, "reply-to": 0, "reply_to": 0}


def test_summarize_counts_layers_per_conversation() -> None:
    records = sample_records(3)
    corpus = build_corpus(records)
    transformer = DisclosureTransformer(classifier=HashClassifier(), layer_attr="depth_layer")
    table = transformer.fit_transform(corpus) and transformer.summarize(corpus)
    assert list(table.index) == list(dict.fromkeys(r["conversation_id"] for r in records))
    counts = table[[f"n_{layer}" for layer in LAYERS]].sum(axis=1)
    assert list(counts) == list(table["n_messages"])
    assert "reciprocity_index" in table.columns and "speakers" not in table.columns
    layers = [u.meta["depth_layer"] for u in corpus.iter_utterances()]
    assert table["n_core"].sum() == layers.count("core")


def test_real_model_in_the_transformer(tiny_model: Path) -> None:
    records = sample_records(2)
    corpus = build_corpus(records)
    transformer = DisclosureTransformer(tiny_model).fit(corpus)
    transformer.transform(corpus)
    fields, figures = expected_from_frame(records, transformer.classifier)
    assert utterance_fields(corpus) == fields
    assert {c.id: c.meta["disclosure_reciprocity"] for c in corpus.iter_conversations()} == figures


def test_model_path_alone_uses_annotates_default_backend_and_writes_the_clis_values(tiny_model: Path, tmp_path: Path) -> None:
    from disclosure_nlp.model.backends import resolve_backend

    records = sample_records(2)
    corpus = build_corpus(records)
    transformer = DisclosureTransformer(tiny_model)
    transformer.fit_transform(corpus)
    assert transformer.classifier.backend_name == resolve_backend("auto")

    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    out = tmp_path / "cli.jsonl"
    annotate(source, out, model=tiny_model, summary=tmp_path / "s.json")  # the CLI's defaults
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == len(records)
    for row in rows:
        meta = corpus.get_utterance(row["id"]).meta
        assert meta["disclosure_probabilities"] == {layer: row[f"p_{layer}"] for layer in LAYERS}
        assert (meta["disclosure_layer"], meta["disclosure_depth"]) == (row["layer"], row["depth"])
    summary = json.loads((tmp_path / "s.json").read_text())
    assert {c.id: c.meta["disclosure_reciprocity"] for c in corpus.iter_conversations()} == summary

    torch_run = DisclosureTransformer(tiny_model, backend="torch").fit()
    assert torch_run.classifier.backend_name == "torch"
