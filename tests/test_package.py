"""The package's top level: every public name resolves, and importing it stays light.

Scripts and notebooks import ``disclosure_nlp`` for one function; pulling in torch, pandas or
ConvoKit (seconds each, and ConvoKit writes ~/.convokit on import) just for that would be a
cost the user never asked for. The checks run in a fresh interpreter, because this test
process has long since imported everything.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

import disclosure_nlp

HEAVY = ("torch", "transformers", "datasets", "pandas", "pyarrow", "convokit", "ray")


def _run(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_importing_the_package_imports_no_heavy_library():
    loaded = _run(f"import sys, disclosure_nlp; print(sorted(set({HEAVY!r}) & set(sys.modules)))")
    assert loaded == "[]"


def test_integration_names_resolve_without_importing_their_extras():
    # Resolving a name imports its module, not pandas or ConvoKit: those load on first use.
    code = (
        "import sys, disclosure_nlp\n"
        "from disclosure_nlp import DisclosureTransformer, analyze_frame, annotate_frame\n"
        "from disclosure_nlp.integrations.convokit_transformer import DisclosureTransformer as T\n"
        "from disclosure_nlp.integrations.frame import analyze_frame as a, annotate_frame as f\n"
        "assert (annotate_frame, analyze_frame, DisclosureTransformer) == (f, a, T)\n"
        f"print(sorted(set({HEAVY!r}) & set(sys.modules)))\n"
    )
    assert _run(code) == "[]"


@pytest.mark.parametrize("name", disclosure_nlp.__all__)
def test_every_exported_name_resolves(name):
    assert getattr(disclosure_nlp, name) is not None


def test_integrations_are_in_all_and_unknown_names_fail():
    assert {"annotate_frame", "analyze_frame", "DisclosureTransformer"} <= set(disclosure_nlp.__all__)
    with pytest.raises(AttributeError, match="no attribute 'annotate_frames'"):
        disclosure_nlp.annotate_frames  # noqa: B018


def test_annotate_frame_from_the_top_level_works_on_a_frame():
    pd = pytest.importorskip("pandas")
    from tests.fakes import HashClassifier

    df = pd.DataFrame({"speaker": ["ana", "ben"], "text": ["how are you?", "I'm a nurse in Leeds"]})
    out = disclosure_nlp.annotate_frame(df, classifier=HashClassifier())
    assert list(out["turn"]) == [0, 1] and out["layer"].notna().all()
