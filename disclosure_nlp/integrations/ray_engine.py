"""Scale-out annotation on Ray Data: the local engine's results, computed on a cluster.

``disclosure annotate … --engine ray`` runs this module instead of :func:`annotate.annotate`.
The work is the same, split into Ray Data stages::

    read_json / read_csv / read_parquet   one dataset per input file (its path and stem kept)
      → map_batches on an actor pool      one model load per actor; class probabilities
      → groupby(conversation).map_groups  reciprocity of each conversation, via
                                          frame.annotate_group → annotate.label_conversation
      → sort(file, row id)                rows come out in input order, as locally
      → write_parquet / write_json / write_csv

Each conversation is labeled by the code the local engine and :func:`frame.annotate_frame`
use, so the values agree (up to float noise of batching, below the 4 printed digits).

Where it differs from the local engine, by design:

* the output is a **directory** of part files (``…_000000.parquet``, ``…_000001.parquet`` …;
  in name order they hold the rows in input order), because the workers write in parallel;
  pandas, pyarrow, DuckDB and Ray read such a directory as one table;
* a conversation's messages need not be contiguous in the input (they are grouped);
* input values go through Arrow's readers: a JSON field mixing integers and decimals
  becomes decimal, a record lacking a field gets ``null`` for it, ISO timestamps that Arrow
  parsed are written back as ``YYYY-MM-DDTHH:MM:SS`` strings, CSV columns other than the
  six named ones (text, id, conversation, speaker, reply-to, time) get numeric types, and with
  several input files every row has every file's columns (``null`` where its file has none);
* bad records stop the run (no ``--on-error skip``), and the HTML report is not available.

The model directory is read on the machine that starts the run and shipped to the actors
through Ray's object store, so it need not exist on the cluster's nodes; the input and
output paths, however, are opened by the workers and must be reachable from every node
(a shared file system or object storage such as ``s3://``).

Why one module of ~610 lines: everything that imports Ray lives here and nowhere else, so the
rest of the package never pays for Ray's import or its version quirks; the actors, the reader
and the writer must agree on the same column names and row keys, which this file owns.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..annotate import DEFAULT_MAX_CHARS
from ..pipeline.options import AnnotateOptions
from ..records import AnnotationSummary, summary_document
from ..errors import DataError, DisclosureError
from ..io.outputs import AlreadyExists
from ..io.safe_files import replace_folder
from ..io.transcripts import ColumnMap

__all__ = ["RAY_INSTALL_HINT", "RayOptions", "annotate_ray", "require_ray"]

RAY_INSTALL_HINT = (
    '--engine ray needs Ray, an optional extra: pip install "disclosure-nlp[ray]" '
    "(or use the default --engine local)"
)
INTERNAL = "__dnlp_"
SOURCE, STEM, FILE, UID, KEY, FIGURES, LANGUAGE, FOREIGN = (
    INTERNAL + name for name in ("source", "stem", "file", "uid", "key", "figures", "language", "foreign"))
PROBS = tuple(f"{INTERNAL}p{i}" for i in range(4))
INPUT_FORMATS = {
    ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl",
    ".csv": "csv", ".tsv": "tsv", ".parquet": "parquet",
}
OUTPUT_FORMATS = {".parquet": "parquet", ".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv"}
DEFAULT_ROWS_PER_BATCH = 1024
PARTITION_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class RayOptions:
    """How to reach Ray and how much of it to use."""

    address: str | None = None
    """``None``: start a local Ray for this run; ``auto``: join the cluster this machine is part
    of; ``ray://host:10001``: connect to a remote cluster through Ray Client."""
    num_actors: int = 1
    """Model replicas (actors); each loads the model once and labels batches in parallel."""
    cpus_per_actor: float = 1.0
    """CPUs reserved per actor (torch in the actor uses that many threads); lowered when the
    actors would otherwise take every CPU of the cluster, which would starve reading."""
    gpus_per_actor: float = 0.0
    rows_per_batch: int = DEFAULT_ROWS_PER_BATCH
    """Messages per map_batches call (the classifier batches them again by length)."""
    partitions: int | None = None
    """Blocks to read into and partitions to group and sort by; default: from the input size
    (about one per 32 MiB, at least four per actor so every actor gets work)."""
    progress: bool = False


def require_ray():
    """Import Ray, or explain how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise DisclosureError(RAY_INSTALL_HINT) from None
    return ray


def _is_uri(path: str) -> bool:
    return "://" in path


def _strip_gz(name: str) -> str:
    return name[:-3] if name.lower().endswith(".gz") else name


def _input_files(inputs: Sequence[str | os.PathLike[str]], format: str | None) -> tuple[str, list[str]]:
    """The one format and the files to read; a ConvoKit corpus directory means its utterances."""
    files: list[str] = []
    formats: set[str] = set()
    for item in inputs:
        text = str(item)
        if not _is_uri(text):
            path = Path(text)
            if not path.exists():
                raise DataError("no such file or directory", path=path)
            if path.is_dir():
                utterances = path / "utterances.jsonl"
                if not utterances.is_file():
                    raise DataError("is a directory but not a ConvoKit corpus (it has no utterances.jsonl)", path=path)
                text = str(utterances)
            elif format is None and Path(_strip_gz(text)).suffix.lower() == ".json":
                _refuse_chat_export(path)
        suffix = Path(_strip_gz(text)).suffix.lower()
        fmt = {"convokit": "jsonl"}.get(format or "", format) or INPUT_FORMATS.get(suffix)
        if fmt not in ("jsonl", "csv", "tsv", "parquet"):
            raise DataError(
                "the Ray engine reads JSONL, CSV, TSV and Parquet files (and ConvoKit corpora); "
                "convert chat logs with the local engine first, or name the format with --format",
                path=text,
            )
        formats.add(fmt)
        files.append(text)
    if not files:
        raise DisclosureError("no input files given")
    if len(formats) > 1:
        raise DisclosureError(f"the Ray engine reads one format per run; got {', '.join(sorted(formats))}")
    return formats.pop(), files


def _refuse_chat_export(path: Path) -> None:
    """A .json file that is a Telegram, Discord or Messenger export, not JSON Lines: Ray Data
    would read it as something else, so it is refused with what to do."""
    from ..io.chat_exports import _detect
    from ..io.transcripts import _resolve

    source = _resolve(path, None)
    if source.fmt == "json" and _detect(source) is not None:
        raise DataError(
            "is a chat export (one JSON document), which the Ray engine cannot split; annotate it "
            "with --engine local, or convert it to JSON Lines first",
            path=path,
        )


def _output_format(output: str, output_format: str | None) -> str:
    if output_format is not None:
        if output_format not in ("parquet", "jsonl", "csv"):
            raise DisclosureError(f"the Ray engine writes parquet, jsonl or csv, not '{output_format}'")
        return output_format
    fmt = OUTPUT_FORMATS.get(Path(output).suffix.lower())
    if fmt is None:
        raise DisclosureError(
            f"{output}: cannot tell the output format from the extension; use .parquet, .jsonl or "
            ".csv (the Ray engine writes a directory of part files under that name)"
        )
    return fmt


def _model_payload(model: str | os.PathLike[str] | None) -> dict[str, bytes]:
    """The files of a full model directory, to send to the actors through the object store."""
    from ..model.modelstore import enforce_offline, resolve_model_dir

    enforce_offline()
    directory = resolve_model_dir(model)
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


# --------------------------------------------------------------------------------------------
# Stages (run on the workers)


def _row_names(batch, columns: ColumnMap) -> list[str]:
    if columns.id in batch.columns:
        return [f"message id {str(value)[:40]!r}" for value in batch[columns.id].tolist()]
    return ["a message without an id"] * len(batch)


def _user_columns(frame) -> list[str]:
    return [name for name in frame.columns if not str(name).startswith(INTERNAL)]


class _Classify:
    """The actor: loads the model once, then adds class probabilities and the group key."""

    def __init__(self, payload, columns: ColumnMap, batch_size: int, backend: str = "torch",
                 language: str = "mark", max_chars: int | None = None) -> None:
        import ray

        from ..model.classifier import DisclosureClassifier

        if isinstance(payload, (list, tuple)):  # (ObjectRef,): the files, fetched from the object store
            payload = ray.get(payload[0])
        elif isinstance(payload, ray.ObjectRef):
            payload = ray.get(payload)

        folder = Path(tempfile.mkdtemp(prefix="disclosure-model-"))
        try:
            for name, data in payload.items():
                (folder / name).write_bytes(data)
            self.classifier = DisclosureClassifier.load(folder, backend=backend)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        self.columns = columns
        self.batch_size = batch_size
        self.language = language
        self.max_chars = max_chars

    def __call__(self, batch):
        from .frame import frame_messages

        if len(batch) == 0:
            return batch
        batch = batch.reset_index(drop=True)
        users = batch[_user_columns(batch)]
        names = _row_names(users, self.columns)
        keys: list[str] = [""] * len(batch)
        texts: list[str] = [""] * len(batch)
        # A batch can join the tail of one file to the head of the next: each file's rows keep
        # their own source and default conversation (the file's stem).
        for (source, stem), positions in batch.groupby([SOURCE, STEM], sort=False).indices.items():
            part = users.iloc[positions]
            messages = frame_messages(part, self.columns, source=str(source), default_conversation=str(stem),
                                      row_names=[names[p] for p in positions])
            for position, message in zip(positions, messages):
                keys[position] = f"{source}\x1f{message.conversation_id}"
                texts[position] = message.text if self.max_chars is None else message.text[: self.max_chars]
        import numpy as np

        from ..model.language import detect_language

        # The same screen as the local engine: a message not in English keeps its row, with its
        # language code and no probabilities (NaN here, None once grouped), unless told to label.
        guesses = [detect_language(text) for text in texts]
        todo = [i for i, g in enumerate(guesses) if g.supported or self.language == "label"]
        probabilities = np.full((len(texts), len(PROBS)), np.nan)
        if todo:
            probabilities[todo] = self.classifier.predict_proba([texts[i] for i in todo], batch_size=self.batch_size)
        out = batch.copy()
        for index, name in enumerate(PROBS):
            out[name] = probabilities[:, index].astype("float64")
        out[LANGUAGE] = [g.code for g in guesses]
        out[FOREIGN] = [not g.supported for g in guesses]
        out[KEY] = keys
        return out


def _restore_times(frame) -> None:
    """Timestamps that Arrow parsed from text go back to ISO 8601 text, as they were read."""
    import pandas as pd

    for name in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[name]):
            frame[name] = [None if pd.isna(v) else v.isoformat() for v in frame[name]]


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        return _plain(value.tolist())
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _is_nested(value: Any) -> bool:
    import numpy as np

    return isinstance(value, (dict, list, tuple, np.ndarray))


def _nested(frame, as_json: bool) -> None:
    """Arrow structs and lists arrive as dicts and arrays; the local engine writes them as JSON
    text in CSV and Parquet and as JSON values in JSONL, so do the same."""
    for name in frame.columns:
        if frame[name].dtype != object:
            continue
        values = frame[name].tolist()
        if not any(_is_nested(v) for v in values):
            continue
        if as_json:
            frame[name] = [json.dumps(_plain(v), ensure_ascii=False, separators=(",", ":")) if _is_nested(v) else v
                           for v in values]
        else:
            frame[name] = [_plain(v) if _is_nested(v) else v for v in values]


def _guard_cells(frame) -> None:
    """Text cells of a CSV output as the local CSV writer writes them (no live formula, no NUL)."""
    import pandas as pd

    from ..io.outputs import csv_safe

    for name in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[name]):  # object, or pandas 3's str
            frame[name] = [csv_safe(v) if isinstance(v, str) else v for v in frame[name].tolist()]


def _label_group(group, *, columns: ColumnMap, permutations: int, restore_times: bool, nested_as_json: bool,
                 csv_cells: bool = False):
    """One conversation: reciprocity and annotation columns, in input order."""
    from .frame import annotate_group

    group = group.sort_values(UID, kind="stable").reset_index(drop=True)
    source, stem = str(group[SOURCE].iloc[0]), str(group[STEM].iloc[0])
    users = group[_user_columns(group)]
    # Arrow may turn the NaN of an unlabeled row into a null (pd.NA): both mean "no probabilities".
    import pandas as pd

    probabilities = [None if any(pd.isna(p) for p in row) else [float(p) for p in row]
                     for row in group[list(PROBS)].astype(object).to_numpy().tolist()]
    annotated, figures = annotate_group(
        users, probabilities, columns, source=source, default_conversation=stem,
        row_names=_row_names(users, columns), permutations=permutations, languages=group[LANGUAGE].tolist(),
    )
    if restore_times:
        _restore_times(annotated)
    _nested(annotated, nested_as_json)
    if csv_cells:
        _guard_cells(annotated)
    annotated[FILE] = group[FILE].to_numpy()
    annotated[UID] = group[UID].to_numpy()
    annotated[FOREIGN] = group[FOREIGN].to_numpy()
    (only,) = figures.values()
    annotated[FIGURES] = [json.dumps(only, ensure_ascii=False)] + [None] * (len(annotated) - 1)
    return annotated


# --------------------------------------------------------------------------------------------
# Driver


def _read(ray, fmt: str, files: list[str], columns: ColumnMap):
    """One dataset per file, tagged with its path, stem and position, with a row id that grows
    with the row's place in its file (``monotonically_increasing_id`` within one file's read;
    across files Ray gives no order, hence the file position)."""
    from ray.data.expressions import lit, monotonically_increasing_id

    datasets = []
    for position, path in enumerate(files):
        if fmt == "jsonl":
            ds = ray.data.read_json(path, file_extensions=None)
        elif fmt in ("csv", "tsv"):
            import pyarrow as pa
            import pyarrow.csv as pacsv

            # The named columns stay text, as in the local CSV reader (ids like "007" survive).
            named = {getattr(columns, a): pa.string() for a in ("text", "id", "conversation", "speaker", "reply_to", "time")}
            ds = ray.data.read_csv(
                path,
                parse_options=pacsv.ParseOptions(delimiter="\t" if fmt == "tsv" else ","),
                convert_options=pacsv.ConvertOptions(column_types=named),
                file_extensions=None,
            )
        else:
            ds = ray.data.read_parquet(path, file_extensions=None)
        name = Path(_strip_gz(path.rstrip("/"))).name
        stem = Path(path).parent.name if name == "utterances.jsonl" else (Path(name).stem or name)
        datasets.append(
            ds.with_column(UID, monotonically_increasing_id())
            .with_column(FILE, lit(position))
            .with_column(SOURCE, lit(path))
            .with_column(STEM, lit(stem))
        )
    return datasets[0].union(*datasets[1:]) if len(datasets) > 1 else datasets[0]


def _partitions(files: list[str], num_actors: int) -> int:
    size = 0
    for path in files:
        try:
            size += os.path.getsize(path)
        except OSError:  # a URI or a path only the cluster sees: assume a large input
            return 200
    return max(4 * num_actors, min(200, -(-size // PARTITION_BYTES)))


_REMOTE_ERROR = re.compile(r"^disclosure_nlp\.errors\.(\w+): (.+)$", re.M)


def _find_disclosure_error(err: BaseException) -> DisclosureError | None:
    """The user-facing error behind a failed Ray job: an exception in the cause chain, or (Ray
    Data keeps only the worker's traceback text) the last ``disclosure_nlp.errors`` line of it."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [err]
    while stack:
        item = stack.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, DisclosureError):
            return item
        stack.extend([getattr(item, "cause", None), item.__cause__, item.__context__])
    found = _REMOTE_ERROR.findall(str(err))
    return DisclosureError(found[-1][1]) if found else None


def _write(ds, fmt: str, path: str) -> None:
    if fmt == "parquet":
        ds.write_parquet(path)
    elif fmt == "jsonl":
        ds.write_json(path, force_ascii=False, double_precision=15)
    else:
        ds.write_csv(path)


def annotate_ray(
    inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    model: str | os.PathLike[str] | None = None,
    format: str | None = None,
    output_format: str | None = None,
    columns: ColumnMap = ColumnMap(),
    summary: str | os.PathLike[str] | None = None,
    batch_size: int = 32,
    permutations: int = 1000,
    force: bool = False,
    backend: str = "torch",
    language: str = "mark",
    max_chars: int | None = DEFAULT_MAX_CHARS,
    options: RayOptions = RayOptions(),
) -> AnnotationSummary:
    """Label every message of ``inputs`` on Ray and write the annotated rows under ``output``.

    Rows and values are those of :func:`disclosure_nlp.annotate.annotate`; ``output`` becomes
    a directory of part files in input order (see the module docstring for the differences).
    ``summary`` writes the per-conversation figures as one JSON document, as locally. Uses the
    running Ray instance when there is one (``ray.init`` already called), else starts or joins
    one as ``options.address`` says and shuts it down at the end. ``backend`` is passed to
    :meth:`DisclosureClassifier.load` in every actor (``onnx`` exports once per node's cache).
    ``language`` is ``mark`` (a message not in English keeps its row and language code, with no
    layer, as locally) or ``label``; ``reject`` needs a rejects file, which Ray does not write.
    """
    from ..io.outputs import write_json_atomic

    from ..model.backends import require_backend

    ray = require_ray()
    require_backend(backend)  # a wrong name or a missing onnx extra fails here, not in every actor
    if options.num_actors < 1:
        raise DisclosureError("--num-actors must be at least 1")
    if language not in ("mark", "label"):
        raise DisclosureError(f"--language {language}: not available with --engine ray (it writes no rejects "
                              "file); use mark or label, or --engine local")
    # The options both engines take are checked by the local engine's own class, so that a value
    # one engine refuses the other refuses too, with the same words.
    AnnotateOptions(format=format, output_format=output_format, columns=columns, summary=summary, batch_size=batch_size,
                    permutations=permutations, language=language, max_chars=max_chars, force=force, backend=backend)
    items = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    fmt, files = _input_files(items, format)
    out_fmt = _output_format(str(output), output_format)
    target = str(output)
    local_target = not _is_uri(target)
    if local_target:
        path = Path(target)
        if path.exists() and not force:
            raise AlreadyExists(path)
        if not path.parent.is_dir():
            raise DisclosureError(f"{path}: folder {path.parent} does not exist")
    if summary is not None and Path(summary).exists() and not force:
        raise AlreadyExists(summary)
    payload = _model_payload(model)

    started = time.perf_counter()
    we_started = False
    if not ray.is_initialized():
        init: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING,
                                "log_to_driver": options.progress}
        if options.address is None:
            # Logical CPUs: one per actor plus one for reading and grouping, even on a small
            # machine, so that the actor pool cannot starve the other stages.
            init["num_cpus"] = max(os.cpu_count() or 1, int(options.num_actors * options.cpus_per_actor) + 1)
        else:
            init["address"] = options.address
        ray.init(**init)
        we_started = True
    try:
        with _restored_context():
            return _run(ray, fmt, files, out_fmt, target, local_target, payload, columns, summary, batch_size,
                        permutations, force, backend, language, max_chars, options, started, write_json_atomic)
    finally:
        if we_started:
            ray.shutdown()


@contextlib.contextmanager
def _restored_context():
    """Put back the Ray Data settings a run changes, for a caller who keeps using Ray after it."""
    from ray.data import DataContext

    context = DataContext.get_current()
    saved = (context.execution_options.preserve_order, context.read_op_min_num_blocks,
             context.default_hash_shuffle_parallelism, context.enable_progress_bars)
    logger = logging.getLogger("ray.data")
    level = logger.level
    try:
        yield
    finally:
        (context.execution_options.preserve_order, context.read_op_min_num_blocks,
         context.default_hash_shuffle_parallelism, context.enable_progress_bars) = saved
        logger.setLevel(level)


def _write_rows(rows, out_fmt: str, target: str, *, local_target: bool, written: int, force: bool) -> None:
    """A local output is written beside its target and renamed into place only when complete;
    remote storage (``s3://``…) is written by Ray itself, refusing to replace unless ``force``."""
    if local_target:
        final = Path(target)
        staging = final.with_name(f".{final.name}.{secrets.token_hex(4)}.partial")
        try:
            _write(rows, out_fmt, str(staging))
            if written and not (staging.is_dir() and any(staging.iterdir())):
                raise DisclosureError(
                    f"the Ray workers wrote {written} rows, but not where this machine can see "
                    f"them ({staging}); on a cluster, write to shared storage (an NFS mount or "
                    "s3://…) that every node and this machine reach under the same path"
                )
            replace_folder(staging, final)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
    else:
        from ray.data import SaveMode

        mode = SaveMode.OVERWRITE if force else SaveMode.ERROR
        if out_fmt == "parquet":
            rows.write_parquet(target, mode=mode)
        elif out_fmt == "jsonl":
            rows.write_json(target, mode=mode, force_ascii=False, double_precision=15)
        else:
            rows.write_csv(target, mode=mode)


def _run(ray, fmt, files, out_fmt, target, local_target, payload, columns, summary, batch_size, permutations,
         force, backend: str, language: str, max_chars: int | None, options: RayOptions, started: float,
         write_json_atomic) -> AnnotationSummary:
    from ray.data import ActorPoolStrategy, DataContext

    context = DataContext.get_current()
    context.execution_options.preserve_order = True  # the row ids below follow input order
    # Ray's defaults (200 read blocks, 200 shuffle partitions) suit terabytes; for a transcript
    # corpus they mostly add task overhead, so size them from the input instead.
    partitions = options.partitions or _partitions(files, options.num_actors)
    context.read_op_min_num_blocks = partitions
    context.default_hash_shuffle_parallelism = partitions
    context.enable_progress_bars = options.progress
    if not options.progress:
        logging.getLogger("ray.data").setLevel(logging.WARNING)

    # The actors hold their CPUs for the whole run; if they took every CPU of the cluster, the
    # read and group tasks could never be scheduled and the run would hang. Leave one free.
    cpus_per_actor = options.cpus_per_actor
    cluster_cpus = float(ray.cluster_resources().get("CPU", 0))
    if cluster_cpus > 1 and options.num_actors * cpus_per_actor > cluster_cpus - 1:
        cpus_per_actor = max(0.1, (cluster_cpus - 1) / options.num_actors)

    ds = _read(ray, fmt, files, columns)
    ds = ds.map_batches(
        _Classify,
        # The reference travels inside a tuple: a top-level ObjectRef argument makes Ray warn
        # about actor restarts on every run, and Ray Data would not dereference it anyway.
        fn_constructor_args=((ray.put(payload),), columns, batch_size, backend, language, max_chars),
        batch_size=options.rows_per_batch,
        batch_format="pandas",
        compute=ActorPoolStrategy(size=options.num_actors),
        num_cpus=cpus_per_actor,
        num_gpus=options.gpus_per_actor or None,
    )
    ds = ds.groupby(KEY, num_partitions=partitions).map_groups(
        _label_group,
        batch_format="pandas",
        fn_kwargs={"columns": columns, "permutations": permutations, "restore_times": fmt != "parquet",
                   "nested_as_json": out_fmt != "jsonl", "csv_cells": out_fmt == "csv"},
    )
    try:
        ds = ds.sort([FILE, UID]).materialize()
        figures = [json.loads(row[FIGURES]) for row in ds.select_columns([FIGURES]).iter_rows() if row[FIGURES]]
        written = ds.count()
        foreign = int(ds.sum(FOREIGN) or 0) if written else 0
        rows = ds.drop_columns([FILE, UID, FIGURES, FOREIGN])
        stats = AnnotationSummary(read=written, written=written, conversations=len(figures), output=target,
                                  not_english=foreign)
        _write_rows(rows, out_fmt, target, local_target=local_target, written=written, force=force)
    except DisclosureError:
        raise
    except Exception as err:  # Ray wraps worker exceptions; surface the user-facing one
        found = _find_disclosure_error(err)
        if found is not None:
            raise DisclosureError(str(found)) from None
        raise
    if summary is not None:
        write_json_atomic(summary, summary_document((f["conversation_id"], f) for f in figures), force=force)
        stats.summary_path = str(summary)
    stats.seconds = time.perf_counter() - started
    return stats
