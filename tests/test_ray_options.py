"""The Ray engine checks the options it shares with the local engine through the same class
(pipeline.options.AnnotateOptions), so both refuse the same values with the same words, before
Ray is started or any file is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from disclosure_nlp.annotate import annotate
from disclosure_nlp.errors import DisclosureError

pytest.importorskip("ray")

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "conversations" / "samples.jsonl"


@pytest.mark.parametrize(
    ("option", "error", "words"),
    [({"batch_size": 0}, ValueError, "batch_size must be at least 1"),
     ({"max_chars": 0}, DisclosureError, "--max-chars must be at least 1")],
)
def test_both_engines_refuse_the_same_values(tmp_path: Path, option, error, words) -> None:
    from disclosure_nlp.integrations.ray_engine import annotate_ray

    with pytest.raises(error, match=words):
        annotate(SAMPLES, tmp_path / "local.jsonl", **option)
    with pytest.raises(error, match=words):
        annotate_ray(SAMPLES, tmp_path / "ray.jsonl", **option)
    assert list(tmp_path.iterdir()) == []
