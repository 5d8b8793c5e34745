"""The library never touches the network: the Hugging Face offline switches are set on import
(unless the user explicitly allows the network), and a whole annotate run, model loading
included, works with networking blocked: in-process by a socket guard, and (slow) in a child
process inside a network namespace with no interfaces (``unshare -n``)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from disclosure_nlp.annotate import annotate

ROOT = Path(__file__).resolve().parents[1]
SWITCHES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY")
TRANSCRIPT = "".join(
    json.dumps({"id": f"m{i}", "conversation_id": f"c{i // 3}", "speaker": "ab"[i % 2], "text": text}) + "\n"
    for i, text in enumerate(["hi!", "I'm a nurse in Leeds", "honestly I'm scared about money", "me too", "ok", "bye"])
)


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any switch the package may have set in this test process."""
    env = {k: v for k, v in os.environ.items() if k not in SWITCHES and not k.startswith("DISCLOSURE_NLP_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def switches_after_import(env: dict[str, str]) -> dict[str, str | None]:
    code = (
        "import json, os, disclosure_nlp; "
        f"print(json.dumps({{k: os.environ.get(k) for k in {list(SWITCHES)!r}}}))"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_importing_the_package_sets_the_offline_switches() -> None:
    assert switches_after_import(clean_env()) == {name: "1" for name in SWITCHES}


def test_allow_network_leaves_the_switches_unset() -> None:
    assert switches_after_import(clean_env(DISCLOSURE_NLP_ALLOW_NETWORK="1")) == {name: None for name in SWITCHES}


def test_a_switch_the_user_set_is_respected() -> None:
    seen = switches_after_import(clean_env(HF_HUB_OFFLINE="0"))
    assert seen["HF_HUB_OFFLINE"] == "0" and seen["TRANSFORMERS_OFFLINE"] == "1"


class SocketGuard:
    """Makes every outgoing network connection and name lookup fail, and records the attempt."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.attempts: list[str] = []
        real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

        def connect(sock, address):
            if sock.family == getattr(socket, "AF_UNIX", None):
                return real_connect(sock, address)
            self.attempts.append(f"connect {address!r}")
            raise OSError("network blocked by the test")

        def connect_ex(sock, address):
            if sock.family == getattr(socket, "AF_UNIX", None):
                return real_connect_ex(sock, address)
            self.attempts.append(f"connect_ex {address!r}")
            raise OSError("network blocked by the test")

        def lookup(*args, **kwargs):
            self.attempts.append(f"getaddrinfo {args[:2]!r}")
            raise socket.gaierror("name lookup blocked by the test")

        monkeypatch.setattr(socket.socket, "connect", connect)
        monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
        monkeypatch.setattr(socket, "getaddrinfo", lookup)
        monkeypatch.setattr(socket, "gethostbyname", lookup)


def test_guard_blocks_connections(monkeypatch) -> None:
    guard = SocketGuard(monkeypatch)
    with pytest.raises(OSError):
        socket.create_connection(("example.org", 443), timeout=1)
    assert guard.attempts


def test_annotate_loads_the_model_and_runs_with_sockets_blocked(tmp_path: Path, tiny_model: Path, monkeypatch) -> None:
    source = tmp_path / "chat.jsonl"
    source.write_text(TRANSCRIPT, encoding="utf-8")
    guard = SocketGuard(monkeypatch)
    stats = annotate(source, tmp_path / "out.jsonl", model=tiny_model, summary=tmp_path / "s.json", permutations=20)
    assert (stats.read, stats.written) == (6, 6)
    assert guard.attempts == [], f"the run tried the network: {guard.attempts}"


def _default_model_present() -> bool:
    return (ROOT / "models" / "default" / "config.json").exists()


@pytest.mark.slow
@pytest.mark.skipif(not _default_model_present(), reason="models/default is not in this checkout")
def test_default_model_is_rebuilt_and_used_with_sockets_blocked(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # a first run: the compact model is rebuilt
    source = tmp_path / "chat.jsonl"
    source.write_text(TRANSCRIPT, encoding="utf-8")
    guard = SocketGuard(monkeypatch)
    stats = annotate(source, tmp_path / "out.jsonl", permutations=20)
    assert stats.written == 6 and guard.attempts == []


def _unshare_works() -> bool:
    if shutil.which("unshare") is None:
        return False
    try:
        return subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.slow
@pytest.mark.skipif(not _unshare_works(), reason="unshare -n is not permitted here (needs root or user namespaces)")
@pytest.mark.parametrize("which", ["tiny", "default"])
def test_cli_annotate_in_a_network_namespace_without_interfaces(tmp_path: Path, tiny_model: Path, which: str) -> None:
    if which == "default" and not _default_model_present():
        pytest.skip("models/default is not in this checkout")
    probe = subprocess.run(
        ["unshare", "-n", sys.executable, "-c", "import socket; socket.create_connection(('1.1.1.1', 53), timeout=2)"],
        capture_output=True, text=True, timeout=60,
    )
    assert probe.returncode != 0, "the namespace still has a network"
    source = tmp_path / "chat.jsonl"
    source.write_text(TRANSCRIPT, encoding="utf-8")
    out = tmp_path / "out.jsonl"
    command = ["unshare", "-n", sys.executable, "-m", "disclosure_nlp.cli", "annotate", str(source), "-o", str(out),
               "--summary", str(tmp_path / "s.json"), "-q"]
    if which == "tiny":
        command += ["--model", str(tiny_model)]
    env = clean_env(XDG_CACHE_HOME=str(tmp_path / "cache"))
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "read 6 messages, wrote 6, rejected 0" in done.stdout
    assert len(out.read_text(encoding="utf-8").splitlines()) == 6
