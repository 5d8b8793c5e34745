"""README.md, run top to bottom as a new user would: every bash and python block, in order.

The blocks run in a fresh folder that holds what a clone holds (``data/``, ``scripts/``) and a
``.venv`` link to this environment, with the environment's ``bin`` on ``PATH`` (as the README
suggests by activating it). Each python block runs in a fresh interpreter, as pasted into a
new session. Blocks in other languages (``json``, plain output) are examples of output and are
not run. A block that must not run says so on the line before its fence, with the reason:

    <!-- readme-test: skip: why -->
    <!-- readme-test: from "text": why the part before "text" is left out -->

so the README stays true from now on: an example that breaks, or breaks the next one (a file
made twice, a path that does not exist yet), fails CI.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RUNNABLE = {"bash": "bash", "sh": "bash", "python": "python"}
MARKER = re.compile(r'<!--\s*readme-test:\s*(skip|from\s+"([^"]+)")\s*:\s*(\S.*?)\s*-->')
BLOCK_TIMEOUT = 1800


@dataclass
class Block:
    line: int
    language: str
    code: str
    skip: str | None = None
    start: str | None = None


def readme_blocks(text: str) -> list[Block]:
    """Every fenced block with its language, its first line number and its marker, if any."""
    found: list[Block] = []
    lines = text.splitlines()
    fence: Block | None = None
    body: list[str] = []
    for number, line in enumerate(lines, start=1):
        if fence is None and line.startswith("```"):
            fence = Block(number, line[3:].strip(), "")
            marker = MARKER.search(lines[number - 2]) if number >= 2 else None
            if marker is None and number >= 2 and "readme-test" in lines[number - 2]:
                raise AssertionError(f"README.md line {number - 1}: unreadable readme-test marker")
            if marker is not None:
                if marker.group(1) == "skip":
                    fence.skip = marker.group(3)
                else:
                    fence.start = marker.group(2)
            body = []
        elif fence is not None and line.startswith("```"):
            fence.code = "\n".join(body) + "\n"
            found.append(fence)
            fence = None
        elif fence is not None:
            body.append(line)
    assert fence is None, f"README.md line {fence.line}: a code block is never closed"
    return found


def test_markers_are_read_and_every_skip_gives_a_reason() -> None:
    sample = '\n'.join([
        "text", "<!-- readme-test: skip: too slow -->", "```bash", "sleep 1000", "```",
        '<!-- readme-test: from "b": a is an install -->', "```bash", "a && b", "```",
        "```json", "{}", "```", "```python", "print(1)", "```",
    ])
    blocks = readme_blocks(sample)
    assert [(b.line, b.language, b.skip, b.start) for b in blocks] == [
        (3, "bash", "too slow", None), (7, "bash", None, "b"), (10, "json", None, None), (13, "python", None, None)]
    with pytest.raises(AssertionError, match="unreadable"):
        readme_blocks("<!-- readme-test: skip -->\n```bash\nx\n```\n")
    real = readme_blocks(README.read_text(encoding="utf-8"))
    assert sum(b.language in RUNNABLE and not b.skip for b in real) >= 10


def _workspace(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    folder = tmp_path / "project"
    folder.mkdir()
    for name in ("data", "scripts"):
        shutil.copytree(ROOT / name, folder / name)
    venv = Path(sys.executable).parent.parent
    (folder / ".venv").symlink_to(venv, target_is_directory=True)
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["HF_HUB_OFFLINE"] = "1"
    env["HF_DATASETS_CACHE"] = str(tmp_path / "hf-datasets")
    env["MPLBACKEND"] = "Agg"
    env.pop("PYTHONPATH", None)
    return folder, env


@pytest.mark.slow
def test_the_readme_runs_top_to_bottom(tmp_path: Path) -> None:
    folder, env = _workspace(tmp_path)
    ran = []
    for block in readme_blocks(README.read_text(encoding="utf-8")):
        if block.language not in RUNNABLE or block.skip:
            continue
        code = block.code
        if block.start is not None:
            assert block.start in code, f"README.md line {block.line}: {block.start!r} is not in the block"
            code = code[code.index(block.start):]
        command = (["bash", "-euo", "pipefail", "-c", code] if RUNNABLE[block.language] == "bash"
                   else [sys.executable, "-c", code])
        result = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True,
                                timeout=BLOCK_TIMEOUT, stdin=subprocess.DEVNULL)
        assert result.returncode == 0, (
            f"README.md line {block.line} ({block.language}) failed with exit {result.returncode}:\n"
            f"{code}\n--- stdout ---\n{result.stdout[-3000:]}\n--- stderr ---\n{result.stderr[-3000:]}"
        )
        ran.append(block.line)
    assert len(ran) >= 10
    # What the walk-through made is what the README says it makes.
    for made in ("annotated.jsonl", "summary.json", "report.html", "annotated.parquet", "exported/hf/config.json",
                 "exported/onnx/model.onnx", "models/mine/config.json", "runs/from-datasets/config.json", "labeled"):
        assert (folder / made).exists(), made
