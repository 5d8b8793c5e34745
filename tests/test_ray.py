"""--engine ray: the local engine's rows and values, computed on Ray Data.

The slow tests start a real local Ray (``ray.init(num_cpus=2)``, seconds) once for the module
and run the real model (the session's tiny model) through both engines on the sample
transcripts. The fast tests check what happens before Ray is needed: the install hint without
Ray, and the options the Ray engine refuses.
"""

from __future__ import annotations

import builtins
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from disclosure_nlp.annotate import annotate
from disclosure_nlp.cli import app

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data" / "conversations" / "samples.jsonl"
runner = CliRunner()


def test_without_ray_the_engine_says_how_to_install_it(tmp_path: Path, monkeypatch) -> None:
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    result = runner.invoke(app, ["annotate", str(SAMPLES), "-o", str(tmp_path / "out.parquet"), "--engine", "ray"])
    assert result.exit_code == 2
    assert 'pip install "disclosure-nlp[ray]"' in result.output
    assert not (tmp_path / "out.parquet").exists()


@pytest.mark.parametrize(
    ("extra", "named"),
    [(["--report", "r.html"], "--report"), (["--on-error", "skip"], "--on-error skip"), (["--resume"], "--resume"),
     (["--backend", "onnx"], "--backend"), (["--backend", "onnx-fp32"], "--backend"),
     (["--language", "reject"], "--language reject")],
)
def test_options_the_ray_engine_does_not_offer_are_refused_up_front(tmp_path: Path, extra, named) -> None:
    result = runner.invoke(app, ["annotate", str(SAMPLES), "-o", str(tmp_path / "o.jsonl"), "--engine", "ray", *extra])
    assert result.exit_code == 2
    assert named in result.output and "--engine local" in result.output


def test_ray_options_need_the_ray_engine(tmp_path: Path) -> None:
    result = runner.invoke(app, ["annotate", str(SAMPLES), "-o", str(tmp_path / "o.jsonl"), "--num-actors", "2"])
    assert result.exit_code == 2 and "need --engine ray" in result.output
    result = runner.invoke(app, ["annotate", str(SAMPLES), "-o", str(tmp_path / "o.jsonl"), "--engine", "spark"])
    assert result.exit_code == 2 and "--engine must be" in result.output


# --------------------------------------------------------------------------------------------
# On a real local Ray


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def assert_same(got, expected, where: str = "") -> None:
    """Equal, floats within one unit of the 4th rounded digit (1e-4, plus the float error of
    that difference): batches of other sizes may move the last float bits, which can flip it.
    A permutation p-value counts the shuffles at least as extreme as the observed r, so a depth
    moved in its last bits can move a shuffle across that line: it may differ by a few shuffles
    (0.005 is five of the default 1,000)."""
    if isinstance(expected, float) and isinstance(got, (int, float)) and where.endswith("p_value"):
        assert got == pytest.approx(expected, abs=0.005), where
    elif isinstance(expected, float) and isinstance(got, (int, float)):
        assert got == pytest.approx(expected, abs=1.5e-4), where
    elif isinstance(expected, dict):
        assert isinstance(got, dict) and list(got) == list(expected), where
        for key in expected:
            assert_same(got[key], expected[key], f"{where}/{key}")
    elif isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected), where
        for index, (mine, theirs) in enumerate(zip(got, expected)):
            assert_same(mine, theirs, f"{where}[{index}]")
    else:
        assert got == expected, where


def read_rows(path: Path) -> list[dict]:
    """Rows of a JSONL file, or of a directory of JSON-lines part files in part order."""
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    return [json.loads(line) for f in files for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.slow
@pytest.mark.parametrize("num_actors", [1, 2])
def test_ray_engine_gives_the_local_engines_rows_and_values(local_ray, tiny_model: Path, tmp_path: Path, num_actors: int) -> None:
    from disclosure_nlp.integrations.ray_engine import RayOptions, annotate_ray

    local = annotate(SAMPLES, tmp_path / "local.jsonl", model=tiny_model, summary=tmp_path / "local.json")
    stats = annotate_ray(SAMPLES, tmp_path / "ray.jsonl", model=tiny_model, summary=tmp_path / "ray.json",
                         options=RayOptions(num_actors=num_actors))
    assert (tmp_path / "ray.jsonl").is_dir()
    assert (stats.written, stats.conversations) == (local.written, local.conversations) == (243, 24)
    expected, got = read_rows(tmp_path / "local.jsonl"), read_rows(tmp_path / "ray.jsonl")
    assert [r["id"] for r in got] == [r["id"] for r in expected]  # input order kept
    assert_same(got, expected)
    assert_same(json.loads((tmp_path / "ray.json").read_text()), json.loads((tmp_path / "local.json").read_text()))


@pytest.mark.slow
def test_several_files_keep_their_own_conversations(local_ray, tiny_model: Path, tmp_path: Path) -> None:
    """Files are grouped on their own, as locally: a file without conversation ids is one
    conversation named after the file, even when a batch joins the end of one file to the
    start of the next."""
    from disclosure_nlp.integrations.ray_engine import RayOptions, annotate_ray

    lines = SAMPLES.read_text(encoding="utf-8").splitlines()
    first = tmp_path / "first.jsonl"
    first.write_text("\n".join(lines[:100]) + "\n", encoding="utf-8")
    chat = tmp_path / "chat.jsonl"  # no conversation_id: the whole file is conversation "chat"
    chat.write_text("".join(json.dumps({k: v for k, v in json.loads(line).items() if k != "conversation_id"}) + "\n"
                            for line in lines[100:160]), encoding="utf-8")
    inputs = [first, chat]
    annotate(inputs, tmp_path / "local.jsonl", model=tiny_model, summary=tmp_path / "local.json")
    annotate_ray(inputs, tmp_path / "ray.jsonl", model=tiny_model, summary=tmp_path / "ray.json",
                 options=RayOptions(num_actors=1, rows_per_batch=128, partitions=6))
    expected, got = read_rows(tmp_path / "local.jsonl"), read_rows(tmp_path / "ray.jsonl")
    assert [r["id"] for r in got] == [r["id"] for r in expected]
    # Ray's dataset has one schema: a row of chat.jsonl also gets first.jsonl's conversation_id
    # column, empty (documented); apart from that, the same keys and values.
    assert all(r["conversation_id"] is None for r in got[100:])
    trimmed = [{k: v for k, v in mine.items() if k in theirs} for mine, theirs in zip(got, expected)]
    assert_same(trimmed, [{k: theirs[k] for k in mine} for mine, theirs in zip(trimmed, expected)])
    assert all(set(mine) == set(theirs) for mine, theirs in zip(trimmed, expected))
    summary = json.loads((tmp_path / "ray.json").read_text())
    assert_same(summary, json.loads((tmp_path / "local.json").read_text()))
    assert "chat" in summary and summary["chat"]["n_messages"] == 60


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["mark", "label"])
def test_ray_engine_screens_languages_as_the_local_engine_does(local_ray, tiny_model: Path, tmp_path: Path,
                                                              policy: str) -> None:
    from disclosure_nlp.integrations.ray_engine import annotate_ray

    lines = [json.loads(line) for line in SAMPLES.read_text(encoding="utf-8").splitlines()[:30]]
    foreign = {3: "Ayer mi padre murió y no sé cómo decírselo a mis hijos, estoy destrozada por dentro.",
               7: "Ich habe seit Monaten niemandem erzählt, dass ich meine Arbeit verloren habe und Angst habe."}
    for index, text in foreign.items():
        lines[index]["text"] = text
    source = tmp_path / "mixed.jsonl"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines), encoding="utf-8")
    local = annotate(source, tmp_path / "local.jsonl", model=tiny_model, summary=tmp_path / "local.json", language=policy)
    stats = annotate_ray(source, tmp_path / "ray.jsonl", model=tiny_model, summary=tmp_path / "ray.json", language=policy)
    expected, got = read_rows(tmp_path / "local.jsonl"), read_rows(tmp_path / "ray.jsonl")
    assert [got[i]["language"] for i in foreign] == ["es", "de"]
    if policy == "mark":
        assert all(got[i]["layer"] is None and got[i]["depth"] is None for i in foreign)
    else:
        assert all(got[i]["layer"] is not None for i in foreign)
    assert_same(got, expected)
    assert stats.not_english == local.not_english == 2
    assert_same(json.loads((tmp_path / "ray.json").read_text()), json.loads((tmp_path / "local.json").read_text()))


@pytest.mark.slow
def test_ray_engine_csv_in_parquet_out_through_the_cli(local_ray, tiny_model: Path, tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    records = [json.loads(line) for line in SAMPLES.read_text(encoding="utf-8").splitlines()][:60]
    table = pd.DataFrame.from_records(records).drop(columns=["meta"])
    table["id"] = [f"00{i}" for i in range(len(table))]  # ids that only survive as text
    table["reply_to"] = None
    source = tmp_path / "chats.csv"
    table.to_csv(source, index=False)
    local = tmp_path / "local.parquet"
    assert runner.invoke(app, ["annotate", str(source), "-o", str(local), "-q", "-m", str(tiny_model)]).exit_code == 0
    out = tmp_path / "ray.parquet"
    args = ["annotate", str(source), "-o", str(out), "-q", "-m", str(tiny_model), "--engine", "ray", "--num-actors", "2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "wrote 60" in result.output and "directory of part files" in result.output
    expected = pd.read_parquet(local)
    got = pd.read_parquet(out)
    assert list(got.columns) == list(expected.columns)
    assert list(got["id"]) == list(expected["id"]) == list(table["id"])
    for name in expected.columns:
        if expected[name].dtype.kind == "f":
            assert got[name].to_numpy() == pytest.approx(expected[name].to_numpy(), abs=1.5e-4, nan_ok=True), name
        else:
            assert [None if pd.isna(v) else v for v in got[name]] == [None if pd.isna(v) else v for v in expected[name]], name
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "already exists" in again.output
    assert runner.invoke(app, [*args, "--force"]).exit_code == 0


@pytest.mark.slow
def test_bad_record_stops_the_ray_run_with_its_place(local_ray, tiny_model: Path, tmp_path: Path) -> None:
    from disclosure_nlp.errors import DisclosureError
    from disclosure_nlp.integrations.ray_engine import annotate_ray

    source = tmp_path / "bad.jsonl"
    source.write_text(json.dumps({"id": "a", "text": "hello"}) + "\n" + json.dumps({"id": "b", "text": "  "}) + "\n")
    with pytest.raises(DisclosureError) as caught:
        annotate_ray(source, tmp_path / "out.jsonl", model=tiny_model)
    assert "bad.jsonl" in str(caught.value) and "message id 'b'" in str(caught.value) and "empty text" in str(caught.value)
    assert not (tmp_path / "out.jsonl").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.jsonl")]  # no partial output left
