"""Interrupted runs: a killed annotate never damages an earlier output nor leaves a half-written
file under the target's name, and ``resume`` continues after the last complete conversations
and ends byte-identical to a run that was never interrupted.

The kills are real: a child process runs annotate with a slow fake classifier and is sent
SIGKILL at a random moment (the seed is in the failure message). Refusals to resume (changed
input, options, model; Parquet) and Ctrl-C are tested in-process, which is faster.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from disclosure_nlp.annotate import annotate
from disclosure_nlp.errors import DataError, DisclosureError
from disclosure_nlp.io.outputs import OutputError, checkpoint_path, open_resumable, partial_path
from tests.fakes import HashClassifier

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, sys
sys.path.insert(0, {root!r})
from disclosure_nlp.annotate import annotate
from tests.fakes import HashClassifier

args = json.loads(sys.argv[1])
stats = annotate(args["input"], args["output"], classifier=HashClassifier(delay=args["delay"]), on_error="skip",
                 summary=args["summary"], window=args["window"], permutations=10, force=True, resume=args["resume"])
print(json.dumps(stats.to_dict()))
"""

CONVERSATIONS = 120
WINDOW = 12


def make_input(folder: Path, suffix: str, conversations: int = CONVERSATIONS) -> Path:
    """Conversations of 3 to 7 messages, with a bad record every 50 lines."""
    rows, bad = [], set()
    rng = random.Random(7)
    for c in range(conversations):
        for m in range(rng.randint(3, 7)):
            if len(rows) % 50 == 49:
                bad.add(len(rows))
            rows.append((f"c{c}m{m}", f"c{c}", "ab"[m % 2], f"conversation {c}, message {m}: " + "x" * rng.randint(0, 40)))
    path = folder / f"in{suffix}"
    with path.open("w", encoding="utf-8", newline="") as handle:
        if suffix == ".csv":
            handle.write("id,conversation_id,speaker,text\n")
        for i, (mid, cid, speaker, text) in enumerate(rows):
            if suffix == ".csv":
                handle.write(f"{mid},{cid},{speaker}," + (f'"{text}"' if i not in bad else "  ") + "\n")
            else:
                handle.write(json.dumps({"id": mid, "conversation_id": cid, "speaker": speaker,
                                         "text": text if i not in bad else None}) + "\n")
    return path


def reference(folder: Path, source: Path, suffix: str) -> dict[str, bytes]:
    """The outputs of an uninterrupted run, in their own folder."""
    folder.mkdir()
    out = folder / f"out{suffix}"
    annotate(source, out, classifier=HashClassifier(), on_error="skip", summary=folder / "summary.json",
             window=WINDOW, permutations=10)
    return outputs_of(folder, out)


def outputs_of(folder: Path, out: Path) -> dict[str, bytes]:
    return {
        "output": out.read_bytes(),
        "rejects": Path(f"{out}.rejects.jsonl").read_bytes(),
        "summary": (folder / "summary.json").read_bytes(),
    }


def child(source: Path, out: Path, *, resume: bool, delay: float) -> subprocess.Popen:
    script = out.parent / "child.py"
    if not script.exists():
        script.write_text(CHILD.format(root=str(ROOT)), encoding="utf-8")
    args = {"input": str(source), "output": str(out), "summary": str(out.parent / "summary.json"),
            "window": WINDOW, "delay": delay, "resume": resume}
    return subprocess.Popen([sys.executable, str(script), json.dumps(args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=out.parent)


def written_conversations(out: Path) -> int:
    try:
        return json.loads(checkpoint_path(out).read_text())["conversations"]
    except (FileNotFoundError, ValueError):
        return 0


def kill_midway(process: subprocess.Popen, out: Path, rng: random.Random, after: int) -> int:
    """SIGKILL once the checkpoint shows more than ``after`` conversations, plus a random delay."""
    deadline = time.monotonic() + 60
    while written_conversations(out) <= after:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the child made no progress"
        time.sleep(0.005)
    time.sleep(rng.uniform(0.0, 0.25))
    process.send_signal(signal.SIGKILL)
    process.wait()
    return process.returncode


def visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".") and p.name != "child.py")


def kill_and_resume(tmp_path: Path, suffix: str, kills: int, seed: int) -> None:
    rng = random.Random(seed)
    source = make_input(tmp_path, ".csv" if suffix == ".csv" else ".jsonl")
    expected = reference(tmp_path / "reference", source, suffix)
    work = tmp_path / "work"
    work.mkdir()
    out = work / f"out{suffix}"
    # An earlier result that a killed run must leave alone.
    out.write_bytes(b"earlier results\n")
    os.utime(out, (1_000_000_000, 1_000_000_000))
    before = out.stat()

    progress = 0
    for attempt in range(kills):
        process = child(source, out, resume=attempt > 0, delay=0.03)
        code = kill_midway(process, out, rng, after=progress)
        assert code == -signal.SIGKILL, f"seed {seed}: the child ended before the kill"
        assert out.read_bytes() == b"earlier results\n" and out.stat().st_mtime_ns == before.st_mtime_ns, f"seed {seed}"
        assert visible(work) == [out.name], f"seed {seed}: nothing new under a visible name"
        assert partial_path(out).exists() and checkpoint_path(out).exists(), f"seed {seed}"
        now = written_conversations(out)
        assert 0 < now < CONVERSATIONS and now >= progress, f"seed {seed}"
        progress = now

    final = child(source, out, resume=True, delay=0.0)
    stdout, stderr = final.communicate(timeout=120)
    assert final.returncode == 0, stderr
    stats = json.loads(stdout)
    assert stats["resumed_conversations"] >= progress > 0
    assert stats["read"] == stats["written"] + stats["rejected"]
    assert stats["conversations"] == CONVERSATIONS
    assert outputs_of(work, out) == expected, f"seed {seed}: the resumed output differs from an uninterrupted run"
    assert [p.name for p in work.iterdir() if p.name.startswith(".")] == [], "no partial files left"


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_sigkill_leaves_earlier_output_alone_and_resume_matches_uninterrupted_run(tmp_path: Path, suffix: str) -> None:
    kill_and_resume(tmp_path, suffix, kills=1, seed=random.randrange(2**32))


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".tsv"])
@pytest.mark.parametrize("round_", range(3))
def test_repeated_sigkills_at_random_points(tmp_path: Path, suffix: str, round_: int) -> None:
    kill_and_resume(tmp_path, suffix, kills=3, seed=random.randrange(2**32))


def test_sigkill_of_a_first_run_leaves_no_file_under_the_target_name_and_a_fresh_run_replaces_it(tmp_path: Path) -> None:
    source = make_input(tmp_path, ".jsonl")
    expected = reference(tmp_path / "reference", source, ".jsonl")
    work = tmp_path / "work"
    work.mkdir()
    out = work / "out.jsonl"
    process = child(source, out, resume=False, delay=0.03)
    assert kill_midway(process, out, random.Random(), after=0) == -signal.SIGKILL
    assert visible(work) == [], "no output, rejects or summary appears before the run ends"
    # Without --resume the leftover partial files are replaced, not continued.
    annotate(source, out, classifier=HashClassifier(), on_error="skip", summary=work / "summary.json",
             window=WINDOW, permutations=10)
    assert outputs_of(work, out) == expected
    assert [p.name for p in work.iterdir() if p.name.startswith(".")] == []


# ------------------------------------------------------------------------------------------
# In-process: Ctrl-C, input errors, refusals


def run(source: Path, out: Path, classifier=None, **kwargs):
    kwargs.setdefault("on_error", "skip")
    kwargs.setdefault("window", WINDOW)
    kwargs.setdefault("permutations", 10)
    return annotate(source, out, classifier=classifier or HashClassifier(), **kwargs)


def interrupted(source: Path, out: Path, calls: int = 4, **kwargs) -> None:
    with pytest.raises(KeyboardInterrupt):
        run(source, out, HashClassifier(interrupt_after=calls), **kwargs)
    assert not out.exists() and partial_path(out).exists() and checkpoint_path(out).exists()


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".tsv"])
def test_ctrl_c_then_resume_gives_the_uninterrupted_output_and_summary(tmp_path: Path, suffix: str) -> None:
    source = make_input(tmp_path, ".jsonl")
    expected = reference(tmp_path / "reference", source, suffix)
    work = tmp_path / "work"
    work.mkdir()
    out = work / f"out{suffix}"
    interrupted(source, out, summary=work / "summary.json")
    assert json.loads(checkpoint_path(out).read_text())["conversations"] > 0
    stats = run(source, out, summary=work / "summary.json", resume=True)
    assert stats.resumed_conversations > 0 and stats.conversations == CONVERSATIONS
    assert stats.read == stats.written + stats.rejected
    assert outputs_of(work, out) == expected
    assert sorted(p.name for p in work.iterdir()) == sorted([out.name, f"{out.name}.rejects.jsonl", "summary.json"])


def test_report_after_resume_covers_every_conversation(tmp_path: Path) -> None:
    source = make_input(tmp_path, ".jsonl", conversations=12)
    out = tmp_path / "out.jsonl"
    interrupted(source, out, calls=2, window=4, report=tmp_path / "report.html")
    stats = run(source, out, window=4, report=tmp_path / "report.html", resume=True)
    assert 0 < stats.resumed_conversations < 12
    report = (tmp_path / "report.html").read_text(encoding="utf-8")
    # Conversations written before the interruption and after it both have their section.
    assert ">c0<" in report and ">c11<" in report
    assert report.count("<section") == 12


def test_resume_without_a_checkpoint_starts_from_the_beginning(tmp_path: Path) -> None:
    source = make_input(tmp_path, ".jsonl", conversations=10)
    stats = run(source, tmp_path / "out.jsonl", resume=True)
    assert stats.resumed_conversations == 0 and stats.conversations == 10


def test_input_error_removes_partial_files_and_checkpoint(tmp_path: Path) -> None:
    source = make_input(tmp_path, ".jsonl")
    out = tmp_path / "out.jsonl"
    out.write_text("earlier\n")
    with pytest.raises(DataError) as info:
        run(source, out, on_error="raise", force=True)
    assert info.value.line == 50  # the first bad record
    assert out.read_text() == "earlier\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_resume_refuses_a_changed_input_option_or_model_and_keeps_the_files(tmp_path: Path) -> None:
    source = make_input(tmp_path, ".jsonl")
    out = tmp_path / "out.jsonl"
    interrupted(source, out, summary=tmp_path / "s.json")
    saved = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith(".")}

    with pytest.raises(OutputError, match="option 'permutations' differs"):
        run(source, out, permutations=11, resume=True)
    with pytest.raises(OutputError, match="option 'on_error' differs"):
        run(source, out, on_error="raise", resume=True)

    class Other(HashClassifier):
        identity = "another model"

    with pytest.raises(OutputError, match="the model differs"):
        run(source, out, Other(), resume=True)
    with pytest.raises(OutputError, match="input files"):
        run([source, source], out, resume=True)
    original = source.read_bytes()
    source.write_bytes(original + b'{"text": "appended"}\n')
    with pytest.raises(OutputError, match="changed since the interrupted run") as info:
        run(source, out, resume=True)
    assert info.value.path == str(checkpoint_path(out)) and "without --resume" in str(info.value)
    source.write_bytes(original)
    # None of the refusals touched what the interrupted run saved.
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith(".")} == saved
    assert run(source, out, summary=tmp_path / "s.json", resume=True).resumed_conversations > 0


class _Fp32(HashClassifier):
    backend_name = "torch"


class _Int8(HashClassifier):
    backend_name = "onnx"


def test_resume_refuses_another_backend_naming_the_output_and_keeps_the_files(tmp_path: Path) -> None:
    source = make_input(tmp_path, ".jsonl")
    out = tmp_path / "out.jsonl"
    with pytest.raises(KeyboardInterrupt):
        run(source, out, _Fp32(interrupt_after=4))
    assert json.loads(checkpoint_path(out).read_text())["backend"] == "torch"
    saved = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith(".")}

    with pytest.raises(OutputError) as info:
        run(source, out, _Int8(), resume=True)
    message = str(info.value)
    assert "out.jsonl" in message and "'torch'" in message and "'onnx'" in message
    # Refused by name before any model is loaded (this model directory does not even exist).
    with pytest.raises(OutputError, match="computed with backend 'torch' and this run uses 'onnx-fp32'"):
        annotate(source, out, model=tmp_path / "no-such-model", backend="onnx-fp32", on_error="skip",
                 window=WINDOW, permutations=10, resume=True)
    # The same model under another identity is refused too, and the message names the output.
    class OtherModel(_Fp32):
        identity = "another model"

    with pytest.raises(OutputError, match="the model differs.*out.jsonl"):
        run(source, out, OtherModel(), resume=True)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith(".")} == saved
    assert run(source, out, _Fp32(), resume=True).resumed_conversations > 0


def _interrupt_real_classifier(monkeypatch, on_call: int) -> list[str]:
    """Make the real classifier raise Ctrl-C on its ``on_call``-th batch; returns the backend
    name of every call, so a test sees what computed the rows."""
    from disclosure_nlp.model.classifier import DisclosureClassifier

    real = DisclosureClassifier.predict_proba
    backends: list[str] = []

    def predict_proba(self, texts, batch_size=32):
        backends.append(self.backend_name)
        if len(backends) == on_call:
            monkeypatch.setattr(DisclosureClassifier, "predict_proba", real)
            raise KeyboardInterrupt
        return real(self, texts, batch_size=batch_size)

    monkeypatch.setattr(DisclosureClassifier, "predict_proba", predict_proba)
    return backends


def test_default_backend_resumes_on_the_interrupted_runs_backend(tmp_path: Path, tiny_model, monkeypatch) -> None:
    """A run made with torch (as annotate ran before it defaulted to auto) continues on torch
    under the default, and ends byte-identical to an uninterrupted torch run; onnx-fp32's
    probabilities differ in the last digits, so the comparison would catch a switch."""
    source = make_input(tmp_path, ".jsonl", conversations=30)
    options = dict(model=tiny_model, on_error="skip", window=WINDOW, permutations=10)
    annotate(source, tmp_path / "ref.jsonl", backend="torch", **options)
    out = tmp_path / "out.jsonl"
    backends = _interrupt_real_classifier(monkeypatch, on_call=3)
    with pytest.raises(KeyboardInterrupt):
        annotate(source, out, backend="torch", **options)
    assert json.loads(checkpoint_path(out).read_text())["backend"] == "torch"
    stats = annotate(source, out, resume=True, **options)
    assert stats.resumed_conversations > 0
    assert backends == ["torch"] * 3
    assert out.read_bytes() == (tmp_path / "ref.jsonl").read_bytes()
    assert Path(f"{out}.rejects.jsonl").read_bytes() == Path(f"{tmp_path / 'ref.jsonl'}.rejects.jsonl").read_bytes()


def test_annotate_defaults_to_onnx_fp32_where_onnx_runtime_is_installed(tmp_path: Path, tiny_model, monkeypatch) -> None:
    from disclosure_nlp.model.backends import onnx_installed

    if not onnx_installed():
        pytest.skip("the onnx extra is not installed")
    source = make_input(tmp_path, ".jsonl", conversations=30)
    out = tmp_path / "out.jsonl"
    backends = _interrupt_real_classifier(monkeypatch, on_call=2)
    with pytest.raises(KeyboardInterrupt):
        annotate(source, out, model=tiny_model, on_error="skip", window=WINDOW, permutations=10)
    assert backends == ["onnx-fp32", "onnx-fp32"]
    assert json.loads(checkpoint_path(out).read_text())["backend"] == "onnx-fp32"


def test_resume_refuses_a_checkpoint_that_does_not_record_its_backend(tmp_path: Path) -> None:
    source = make_input(tmp_path, ".jsonl")
    out = tmp_path / "out.jsonl"
    with pytest.raises(KeyboardInterrupt):
        run(source, out, _Fp32(interrupt_after=4))
    data = json.loads(checkpoint_path(out).read_text())
    del data["backend"]  # as written before checkpoints recorded it
    checkpoint_path(out).write_text(json.dumps(data))
    with pytest.raises(OutputError, match="does not record which backend"):
        run(source, out, _Fp32(), resume=True)


def test_resume_refuses_a_report_the_interrupted_run_kept_no_figures_for(tmp_path: Path) -> None:
    source = make_input(tmp_path, ".jsonl", conversations=40)
    out = tmp_path / "out.jsonl"
    interrupted(source, out)
    with pytest.raises(OutputError, match="kept no figures"):
        run(source, out, summary=tmp_path / "s.json", resume=True)
    assert run(source, out, resume=True).resumed_conversations > 0


def test_resume_detects_a_changed_middle_of_a_large_input(tmp_path: Path) -> None:
    """Same size, same first and last 64 KiB: the conversations re-read must still match."""
    source = make_input(tmp_path, ".jsonl", conversations=800)
    assert source.stat().st_size > 3 * 64 * 1024
    out = tmp_path / "out.jsonl"
    interrupted(source, out, calls=120)
    assert json.loads(checkpoint_path(out).read_text())["conversations"] > 200
    data = source.read_bytes()
    middle = data.index(b'"c200m1"')
    assert 64 * 1024 < middle < len(data) - 64 * 1024
    source.write_bytes(data[:middle] + b'"c200mX"' + data[middle + 8 :])
    with pytest.raises(OutputError, match="no longer hold the conversations"):
        run(source, out, resume=True)
    assert partial_path(out).exists() and checkpoint_path(out).exists()


def test_parquet_refuses_resume_with_a_clear_message(tmp_path: Path) -> None:
    source = make_input(tmp_path, ".jsonl", conversations=5)
    with pytest.raises(OutputError, match="--resume needs a jsonl, csv, tsv output"):
        run(source, tmp_path / "out.parquet", resume=True)
    stats = run(source, tmp_path / "out.parquet")  # without --resume Parquet is fine
    assert stats.written == stats.read - stats.rejected


def test_damaged_partial_file_is_refused(tmp_path: Path) -> None:
    source = make_input(tmp_path, ".jsonl")
    out = tmp_path / "out.jsonl"
    interrupted(source, out)
    partial_path(out).write_bytes(b"")
    with pytest.raises(OutputError, match="shorter"):
        run(source, out, resume=True)


def test_two_runs_cannot_write_the_same_output_at_once(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    with open_resumable(target) as first:
        first.write({"a": 1})
        with pytest.raises(OutputError, match="another run is writing"):
            with open_resumable(target):
                pass
        assert first.mark().rows == 1
    assert target.read_text() == '{"a": 1}\n'


def test_resumable_writer_continues_a_csv_without_a_second_header(tmp_path: Path) -> None:
    target = tmp_path / "t.csv"
    writer = open_resumable(target)
    with pytest.raises(KeyboardInterrupt):
        with writer:
            writer.write({"a": 1, "b": "x,y"})
            state = writer.mark()
            writer.write({"a": 2, "b": "lost"})
            raise KeyboardInterrupt
    assert not target.exists() and state.columns == ("a", "b") and state.rows == 1
    with open_resumable(target, resume=state) as again:
        assert again.rows_written == 1
        again.write({"a": 3, "b": "z"})
    assert target.read_text() == 'a,b\n1,"x,y"\n3,z\n'
    with pytest.raises(DisclosureError):
        with open_resumable(target):  # exists: refused without force
            pass


def test_cli_ctrl_c_keeps_the_work_and_resume_finishes_it(tmp_path: Path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from disclosure_nlp.model import classifier as classifier_module
    from disclosure_nlp.cli import app

    fakes = iter([HashClassifier(interrupt_after=3), HashClassifier()])
    monkeypatch.setattr(classifier_module.DisclosureClassifier, "load", classmethod(lambda cls, *a, **k: next(fakes)))
    source = make_input(tmp_path, ".jsonl", conversations=30)
    expected = reference(tmp_path / "reference", source, ".csv")
    work = tmp_path / "work"
    work.mkdir()
    out = work / "out.csv"
    args = ["annotate", str(source), "-o", str(out), "--summary", str(work / "summary.json"), "--on-error", "skip", "-q"]
    import functools

    import disclosure_nlp.annotate as annotate_module

    # The CLI's window and permutations, made small so the run has several checkpoints and is quick.
    monkeypatch.setattr(annotate_module, "annotate", functools.partial(annotate, window=WINDOW, permutations=10))
    runner = CliRunner()
    stopped = runner.invoke(app, args)
    assert stopped.exit_code == 130 and "--resume" in stopped.output
    assert not out.exists() and checkpoint_path(out).exists()
    resumed = runner.invoke(app, [*args, "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert "resumed after" in resumed.output and "read " in resumed.output
    assert outputs_of(work, out) == expected


@pytest.mark.parametrize("policy", ["reject", "mark"])
def test_resume_with_messages_not_in_english_matches_the_uninterrupted_run(tmp_path: Path, policy: str) -> None:
    """Non-English messages in the part already written: with reject they were sent to the
    rejects file, so the run read more messages than it wrote; resume must accept that and
    keep counting them (found when annotate became stages, issue 19)."""
    source = tmp_path / "in.jsonl"
    spanish = "No le he contado a nadie que perdí mi trabajo y que tengo mucho miedo del futuro"
    with source.open("w", encoding="utf-8") as handle:
        for c in range(40):
            for m in range(4):
                text = spanish if (c % 3 == 0 and m == 1) else f"conversation {c}, message {m}: I work at the bakery"
                handle.write(json.dumps({"id": f"c{c}m{m}", "conversation_id": f"c{c}", "speaker": "ab"[m % 2],
                                         "text": text}) + "\n")
    clean = run(source, tmp_path / "clean.jsonl", language=policy, summary=tmp_path / "clean-summary.json")
    assert clean.not_english == 14
    out = tmp_path / "out.jsonl"
    interrupted(source, out, calls=3, language=policy, summary=tmp_path / "summary.json")
    resumed = run(source, out, language=policy, summary=tmp_path / "summary.json", resume=True)
    assert resumed.resumed_conversations > 0
    assert (resumed.read, resumed.written, resumed.rejected, resumed.not_english) == (
        clean.read, clean.written, clean.rejected, clean.not_english)
    assert out.read_bytes() == (tmp_path / "clean.jsonl").read_bytes()
    assert Path(f"{out}.rejects.jsonl").read_bytes() == (tmp_path / "clean.jsonl.rejects.jsonl").read_bytes()
