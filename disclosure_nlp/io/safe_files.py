"""Files that are replaced whole or not at all, and output paths checked before any work.

Every output of the package goes through here: a hidden partial file next to the target, moved
into place by an atomic rename after fsync only on success, never through a planted symlink,
never over an existing file without ``force``, never over one of the run's own inputs. The
writers (:mod:`.row_writers`) and the resumable files (:mod:`.outputs`) build on it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from ..errors import DisclosureError

from .values import _json_value


class OutputError(DisclosureError):
    """An output that cannot be written as asked (exists, wrong shape, unwritable value)."""

    def __init__(self, message: str, *, path: str | Path | None = None) -> None:
        self.path = str(path) if path is not None else None
        self.reason = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


class AlreadyExists(OutputError):
    """An output that exists and may not be replaced. One message, two phrasings: the Python
    API names its argument (``force=True``) and the command line its flag (``--force``)."""

    def __init__(self, path: str | Path, *, verb: str = "overwrite", flag: str = "--force",
                 argument: str = "force=True", label: str | None = None) -> None:
        self.verb, self.flag, self.argument, self.label = verb, flag, argument, label
        prefix = f"{label}: " if label else ""
        super().__init__(f"{prefix}already exists; pass {argument} to {verb} it", path=path)

    def for_cli(self) -> str:
        prefix = f"{self.label}: " if self.label else ""
        return f"{self.path}: {prefix}already exists; pass {self.flag} to {self.verb} it"


# --------------------------------------------------------------------------------------------
# Atomic file replacement


def _check_target(path: Path, force: bool) -> None:
    """Refuse before anything is written, so a mistaken path costs nothing."""
    if path.is_dir():
        raise OutputError("is a directory; give a file name", path=path)
    if not path.parent.is_dir():
        raise OutputError(f"folder {path.parent} does not exist", path=path)
    if path.exists() and not force:
        raise AlreadyExists(path)


def _same_file(a: Path, b: Path) -> bool:
    """Whatever the spelling (``./x`` and ``x``, a symlink, a hard link): one file?"""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)


def check_output_paths(inputs: Iterable[str | os.PathLike[str]], outputs: Mapping[str, str | os.PathLike[str] | None],
                       *, force: bool) -> None:
    """Check every output before the first message is labeled: none may be an input or another
    output (``--force`` would otherwise destroy the input), each needs an existing, writable
    folder, and an existing one needs ``force``. ``outputs`` maps an option name (``-o``,
    ``--summary``…) to its path."""
    given = [(name, Path(path)) for name, path in outputs.items() if path is not None]
    sources = [Path(p) for p in inputs]
    for index, (name, path) in enumerate(given):
        for source in sources:
            if _same_file(path, source):
                raise OutputError(f"{name} is the input file {source}; write the results to another file", path=path)
        for other_name, other in given[:index]:
            if _same_file(path, other):
                raise OutputError(f"{name} and {other_name} name the same file", path=path)
        if path.is_dir():
            raise OutputError(f"{name} is a directory; give a file name", path=path)
        folder = path.parent
        if not folder.is_dir():
            raise OutputError(f"{name}: folder {folder} does not exist", path=path)
        if not os.access(folder, os.W_OK | os.X_OK):
            raise OutputError(f"{name}: folder {folder} is not writable", path=path)
        if path.exists() and not force:
            raise AlreadyExists(path, label=name)


NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
PARTIAL_MODE = 0o600
"""Partial files hold message text: only the owner reads them until they become the output."""


def _final_mode(path: Path) -> int:
    """An existing target keeps its permissions; a new one gets what the umask gives any file."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def _reserve_temp(path: Path) -> tuple[Path, int]:
    """Create the hidden partial file next to the target (same filesystem, so rename is atomic).

    ``O_EXCL | O_NOFOLLOW`` with a fresh random name: a symlink planted there is never followed.
    The file is private (0600) while written; :func:`_commit` gives it its final permissions.
    """
    while True:
        temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW | getattr(os, "O_BINARY", 0),
                         PARTIAL_MODE)
        except FileExistsError:
            continue
        return temp, fd


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    """Make the rename itself durable; not possible on every platform, hence best effort."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _commit(temp: Path, target: Path, force: bool) -> None:
    """Move the finished file into place; without force, never replace a file made meanwhile."""
    try:
        os.chmod(temp, _final_mode(target), follow_symlinks=False)
    except (OSError, NotImplementedError):
        pass
    if force:
        os.replace(temp, target)
    else:
        try:
            os.link(temp, target)  # fails if the target appeared while we were writing
        except FileExistsError:
            raise OutputError(
                "was created by something else while writing; not overwritten (use force)",
                path=target,
            ) from None
        except OSError:  # filesystems without hard links
            if target.exists():
                raise OutputError(
                    "was created by something else while writing; not overwritten (use force)",
                    path=target,
                ) from None
            os.replace(temp, target)
        else:
            os.unlink(temp)
    _fsync_dir(target.parent)


def _remove_quietly(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def write_text_atomic(path: str | Path, text: str, force: bool = False) -> None:
    """Write a whole text document (an HTML report) with the all-or-nothing guarantee."""
    write_bytes_atomic(path, text.encode("utf-8"), force=force)


def write_bytes_atomic(path: str | Path, data: bytes, force: bool = False) -> None:
    """Write a whole file (a PNG, a document) with the all-or-nothing guarantee; the target is
    replaced by rename, so a symlink planted at its name is replaced, never written through."""
    target = Path(path)
    _check_target(target, force)
    temp, fd = _reserve_temp(target)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        _commit(temp, target, force)
    except BaseException:
        _remove_quietly(temp)
        raise


def write_json_atomic(path: str | Path, obj: Any, force: bool = False) -> None:
    """Write one JSON document (a summary) with the same all-or-nothing guarantee.

    The document is serialised before any file is touched, so an unserialisable value leaves no
    trace; NaN becomes ``null`` because strict JSON readers reject ``NaN``.
    """
    target = Path(path)
    try:
        data = json.dumps(_json_value(obj, "(document)"), ensure_ascii=False, indent=2, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise OutputError(f"cannot be written as JSON: {err}", path=target) from None
    write_text_atomic(target, data + "\n", force=force)


# --------------------------------------------------------------------------------------------
# Folders (model directories, ONNX exports, Parquet datasets) replaced whole


@contextmanager
def staged_folder(target: Path, *, prefix: str | None = None, mode: int | None = 0o755) -> Iterator[Path]:
    """A fresh hidden folder beside ``target`` to build a whole folder in.

    Beside, so that the final :func:`replace_folder` is a rename on one file system; removed on
    the way out unless it was moved into place, so a failed build leaves nothing that looks
    finished. ``mode`` widens mkdtemp's 0700, which would hide a model or export meant to be shared.
    """
    staging = Path(tempfile.mkdtemp(prefix=prefix or f".{target.name}-", dir=target.parent))
    try:
        if mode is not None:
            staging.chmod(mode)
        yield staging
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def replace_folder(staging: Path, target: Path) -> None:
    """Move a finished folder onto ``target``, removing what stood there first (a folder, a file,
    or a link, which is unlinked and never followed)."""
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        target.unlink()
    elif target.exists():
        shutil.rmtree(target)
    staging.rename(target)
