"""The disclosure-depth classifier: a fine-tuned transformer behind a small, stable API.

``DisclosureClassifier.load()`` gives the shipped default model, ``load(path)`` any model
directory written by ``disclosure train``; ``predict(texts)`` returns one :class:`Prediction`
per text. Batches are formed from messages of similar length (then returned in input order),
because padding a 5-word message to the length of a 100-word one is most of the cost of naive
batching on a CPU. The forward pass itself is done by a backend (:mod:`.backends`): PyTorch
fp32 by default, the same fp32 model on ONNX Runtime (``backend="onnx-fp32"``, which loads
without PyTorch), or ONNX Runtime int8 (``backend="onnx"``), which is faster on CPUs.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from .backends import AUTO, DEFAULT_BACKEND, ONNX_VARIANTS, Backend, TorchBackend, require_backend, resolve_backend
from ..layers import LAYERS, expected_depth
from .modelstore import enforce_offline, resolve_model_dir

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 32
DEFAULT_MAX_LENGTH = 256
WINDOW_OVERLAP = 64


@dataclass(frozen=True)
class Prediction:
    """The model's reading of one message."""

    layer: str
    """The most probable layer."""
    confidence: float
    """Probability of that layer."""
    probabilities: dict[str, float]
    """Probability of every layer, in depth order."""
    depth: float
    """Expected layer under the probabilities, 0.0 (none) to 3.0 (core)."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_probabilities(cls, probabilities: Sequence[float]) -> "Prediction":
        values = [float(p) for p in probabilities]
        best = max(range(len(values)), key=values.__getitem__)
        return cls(
            layer=LAYERS[best],
            confidence=values[best],
            probabilities=dict(zip(LAYERS, values)),
            depth=expected_depth(values),
        )


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> Iterator[list[int]]:
    """Indices grouped into batches of similar length, longest first.

    Longest first makes the first batch the largest allocation, so memory peaks early and
    predictably instead of at the end of a long run.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


class DisclosureClassifier:
    """A loaded model and tokenizer, ready to label messages."""

    def __init__(
        self,
        model,
        tokenizer,
        path: Path,
        *,
        max_length: int = DEFAULT_MAX_LENGTH,
        backend: Backend | None = None,
        config=None,
    ) -> None:
        self.model = model
        """The PyTorch model (``None`` with the onnx backend, which does not load one)."""
        self.tokenizer = tokenizer
        self.path = path
        self.max_length = max_length
        self.config = config if config is not None else model.config
        self.backend: Backend = backend if backend is not None else TorchBackend(model)
        self._check_labels()

    @property
    def backend_name(self) -> str:
        return self.backend.name

    def _check_labels(self) -> None:
        labels = [self.config.id2label[i] for i in range(self.config.num_labels)]
        if labels != list(LAYERS):
            from ..errors import ModelError

            raise ModelError(
                f"{self.path}: model labels {labels} are not the disclosure layers {list(LAYERS)}"
            )

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str] | None = None,
        *,
        device: str | None = None,
        max_length: int | None = None,
        backend: str = DEFAULT_BACKEND,
        threads: int | None = None,
    ) -> "DisclosureClassifier":
        """Load a model directory (default: the shipped default model), offline and safely.

        ``backend`` picks what runs the forward pass: ``"torch"`` (fp32, the default),
        ``"onnx-fp32"`` (the same fp32 model on ONNX Runtime: the same probabilities, loaded in
        about a second because neither PyTorch nor transformers is imported), ``"onnx"`` (ONNX
        Runtime int8, within a point of macro-F1 of fp32 and faster), or ``"auto"``
        (``onnx-fp32`` when ONNX Runtime is installed, else ``torch``; a failed ONNX load falls
        back to ``torch`` with a warning). The ONNX backends run on the CPU and export the model
        once into the user cache. ``load`` defaults to ``torch``, the reference, because a program
        that loads the classifier itself may want ``.model``, the PyTorch module (``None`` with
        the ONNX backends); :func:`~disclosure_nlp.annotate.annotate`, which only needs the
        labels, defaults to ``auto``. ``threads`` sets the compute threads (default:
        ``OMP_NUM_THREADS`` or the number of physical cores).
        """
        from .backends import FastTokenizer, LabelConfig, load_backend
        from ..errors import ModelError

        chosen = resolve_backend(backend, device)
        require_backend(chosen)
        enforce_offline()
        directory = resolve_model_dir(path)
        if chosen in ONNX_VARIANTS:
            # Neither PyTorch nor transformers is imported here: the exported model, the fast
            # tokenizer and the label names are all that is needed, so this starts in ~1 s.
            if device not in (None, "cpu"):
                raise ModelError(f"the {chosen} backend runs on the CPU only (asked for device '{device}')")
            try:
                tokenizer = FastTokenizer(directory)
                limit = max_length or min(tokenizer.model_max_length, DEFAULT_MAX_LENGTH)
                runner = load_backend(chosen, directory, threads=threads)
                return cls(None, tokenizer, directory, max_length=limit, backend=runner, config=LabelConfig(directory))
            except Exception as err:
                if backend != AUTO:
                    raise
                # auto promised the fastest backend that works, not this one: an export that
                # fails (an architecture the exporter does not know) must not stop the run.
                log.warning("the onnx-fp32 backend could not be used for %s (%s); using torch", directory, err)
                chosen = "torch"

        model, tokenizer, limit = _torch_parts(directory, device, max_length)
        runner = load_backend(chosen, directory, model=model, threads=threads)
        return cls(model, tokenizer, directory, max_length=limit, backend=runner)

    @property
    def device(self):
        if self.model is None:
            return "cpu"
        return next(self.model.parameters()).device

    def windows(self, texts: Sequence[str]) -> tuple[list[int], list[list[int]]]:
        """Token windows to run: one per message, several for a message longer than the model.

        A long message is cut into overlapping windows rather than truncated, because a long
        post often builds up to its disclosure at the end; the caller keeps the deepest window.
        Returns the message index of every window and the windows' token ids.
        """
        encoded = self.tokenizer(list(texts), add_special_tokens=False, truncation=False)["input_ids"]
        special = self.tokenizer("")["input_ids"]
        starters = {self.tokenizer.cls_token_id, self.tokenizer.bos_token_id} - {None}
        prefix = special[:1] if special and special[0] in starters else []
        suffix = special[len(prefix) :]
        span = self.max_length - len(special)
        overlap = min(WINDOW_OVERLAP, span // 2)
        owners: list[int] = []
        pieces: list[list[int]] = []
        for index, ids in enumerate(encoded):
            starts = [0]
            while starts[-1] + span < len(ids):
                starts.append(starts[-1] + span - overlap)
            for start in starts:
                owners.append(index)
                pieces.append(prefix + ids[start : start + span] + suffix)
        return owners, pieces

    def _forward(self, pieces: list[list[int]], batch_size: int):
        """Probabilities for token windows, computed in length-sorted batches, input order kept."""
        import numpy as np

        out = np.zeros((len(pieces), len(LAYERS)), dtype=np.float32)
        lengths = [len(ids) for ids in pieces]
        pad_id = self.tokenizer.pad_token_id or 0
        for batch in length_sorted_batches(lengths, batch_size):
            width = max(lengths[i] for i in batch)
            ids = np.full((len(batch), width), pad_id, dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, index in enumerate(batch):
                ids[row, : lengths[index]] = pieces[index]
                mask[row, : lengths[index]] = 1
            logits = self.backend.logits(ids, mask).astype(np.float32, copy=False)
            shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
            out[batch] = shifted / shifted.sum(axis=1, keepdims=True)
        return out

    def predict_proba(self, texts: Sequence[str], *, batch_size: int = DEFAULT_BATCH_SIZE):
        """Class probabilities, shape (len(texts), 4), rows in input order.

        For a message split into windows, the row is the deepest window's (highest depth score).
        """
        import numpy as np

        texts = list(texts)
        out = np.zeros((len(texts), len(LAYERS)), dtype=np.float32)
        if not texts:
            return out
        owners, pieces = self.windows(texts)
        probs = self._forward(pieces, batch_size)
        if len(pieces) == len(texts):
            return probs
        depth = probs @ np.arange(len(LAYERS), dtype=np.float32)
        best = np.full(len(texts), -1.0, dtype=np.float32)
        for row, owner in enumerate(owners):
            if depth[row] > best[owner]:
                best[owner] = depth[row]
                out[owner] = probs[row]
        return out

    def predict(self, texts: Iterable[str] | str, *, batch_size: int = DEFAULT_BATCH_SIZE) -> list[Prediction]:
        """One :class:`Prediction` per text, in input order (a single string gives a list of one)."""
        items = [texts] if isinstance(texts, str) else list(texts)
        for position, text in enumerate(items):
            if not isinstance(text, str):
                raise TypeError(f"text {position} is {type(text).__name__}, not str")
        return [Prediction.from_probabilities(row) for row in self.predict_proba(items, batch_size=batch_size)]


def _torch_parts(directory: Path, device: str | None, max_length: int | None):
    """The PyTorch model (in eval mode, on ``device``), its tokenizer and the token limit; every
    load failure becomes one ModelError that names the folder's config.json."""
    from ..errors import ModelError

    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True, trust_remote_code=False)
    except (ValueError, KeyError, OSError) as err:  # e.g. a model_type transformers does not know
        raise ModelError(f"{directory / 'config.json'}: transformers cannot load this model "
                         f"({str(err).splitlines()[0][:200]})") from None
    limit = max_length or min(int(getattr(tokenizer, "model_max_length", DEFAULT_MAX_LENGTH)), DEFAULT_MAX_LENGTH)

    import torch
    from transformers import AutoModelForSequenceClassification

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    # On a CPU, chat messages are tens of tokens long, and at that size PyTorch's fused
    # attention kernel (sdpa) is about three times slower than a plain matmul and softmax
    # (2.6 ms against 0.9 ms for a batch of 32 × 28 tokens); profiled on the shipped model,
    # attention falls from 11 % of the forward pass to 8 % with the copies it adds. Outputs
    # agree within 1e-5. On a GPU the fused kernel is the faster one.
    attention = "eager" if str(device).startswith("cpu") else None
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            directory, local_files_only=True, trust_remote_code=False, use_safetensors=True,
            **({"attn_implementation": attention} if attention else {}),
        )
    except (ValueError, KeyError, OSError, RuntimeError) as err:
        raise ModelError(f"{directory / 'config.json'}: transformers cannot load this model "
                         f"({str(err).splitlines()[0][:200] if str(err) else type(err).__name__})") from None
    model.eval()
    model.to(device)
    return model, tokenizer, limit
