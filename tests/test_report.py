"""The HTML report: complete, self-contained, escaped, deterministic, and safe in a real browser.

Records are built by hand (figures from the real reciprocity analysis of hand-labelled
messages), so these tests need no model.
"""

from __future__ import annotations

import base64
import html
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from disclosure_nlp.annotate import AnnotationSummary, ConversationRecord
from disclosure_nlp.layers import layer_id
from disclosure_nlp.analysis.reciprocity import analyze_conversation
from disclosure_nlp.analysis.report import render_report

XSS_TEXT = "<img src=x onerror=alert(1)>"
XSS_SPEAKER = "</script><script>alert(1)</script>"
ODD_ID = 'chat "quoted" & <odd>'


def record(conversation_id: str, rows: list[tuple[str, str, str]], *, text: bool = True, keep_messages: bool = True) -> ConversationRecord:
    """A record from (speaker, layer, text) rows, analysed like annotate does."""
    labeled = [
        {"id": f"{conversation_id}-{i}", "speaker": speaker, "layer": layer,
         "depth": min(3.0, layer_id(layer) + 0.1 * (i % 3)), "reply_to": None}
        for i, (speaker, layer, _) in enumerate(rows)
    ]
    figures = analyze_conversation(labeled, conversation_id, permutations=200).to_dict()
    figures.pop("turns")
    messages = [
        {"id": m["id"], "speaker": m["speaker"], "text": row[2] if text else None, "layer": m["layer"],
         "depth": m["depth"], "timestamp": f"2026-03-14T21:{i:02d}:00"}
        for i, (m, row) in enumerate(zip(labeled, rows))
    ]
    return ConversationRecord(conversation_id, figures, messages if keep_messages else [])


def summary(records: list[ConversationRecord], rejected: int = 0) -> AnnotationSummary:
    written = sum(r.figures["n_messages"] for r in records)
    return AnnotationSummary(read=written + rejected, written=written, rejected=rejected,
                             conversations=len(records), seconds=1.5)


MATCHED = [
    ("ana", "surface", "I work at the bakery on Elm street"),
    ("ben", "surface", "nice, I'm a teacher in Leeds"),
    ("ana", "intermediate", "honestly I've been worried about money lately"),
    ("ben", "intermediate", "same, rent went up and it stresses me out"),
    ("ana", "core", "I've never told anyone I was in hospital for my depression"),
    ("ben", "core", "thank you for telling me. I went through something similar after my divorce"),
]
ONE_SIDED = [
    ("cleo", "core", "I can't stop thinking about what happened to me as a kid"),
    ("dev", "none", "ok"),
    ("cleo", "intermediate", "sorry, I know it's a lot"),
    ("dev", "none", "lol what time is practice"),
    ("cleo", "core", "sometimes I feel like nobody would miss me"),
    ("dev", "none", "see you at 6"),
]


def test_report_lists_every_conversation_and_the_run_counts() -> None:
    records = [
        record("alpha-chat", MATCHED),
        record("beta-chat", ONE_SIDED),
        record("gamma-beyond-limit", MATCHED, keep_messages=False),
    ]
    stats = AnnotationSummary(read=1234, written=1221, rejected=13, conversations=3, seconds=2.0)
    page = render_report(records, stats)

    assert page.startswith("<!doctype html>")
    for conversation_id in ("alpha-chat", "beta-chat", "gamma-beyond-limit"):
        assert conversation_id in page
    for count in ("1234", "1221", "13"):
        assert f"<b>{count}</b>" in page
    # Shown conversations get a section with a timeline and a transcript; the one without
    # messages is in the ranking only, and the page says plots stop after the first two.
    assert page.count("<section") == 2
    assert page.count("<details>") == 2
    assert "first 2 conversations" in page
    assert '<span class="id">alpha-chat</span></h2>' in page
    assert '<span class="id">gamma-beyond-limit</span></h2>' not in page
    assert html.escape(MATCHED[4][2]) in page


def test_report_loads_nothing_from_outside() -> None:
    page = render_report([record("a", MATCHED), record("b", ONE_SIDED)], summary([]))
    assert not re.search(r"https?://", page)
    assert "<script" not in page.lower() and "<link" not in page.lower()
    assert "@import" not in page and "url(" not in page
    sources = re.findall(r"""\bsrc\s*=\s*["']?([^"'\s>]*)""", page)
    assert len(sources) == 3  # the overview plot and one timeline per conversation
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        png = base64.b64decode(source.split(",", 1)[1])
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        assert b"matplotlib" not in png.lower()  # no version metadata: output stays stable
    for target in re.findall(r"""\bhref\s*=\s*["']?([^"'\s>]*)""", page):
        assert target.startswith("#")
        assert f'id="{target[1:]}"' in page


def test_ranking_puts_the_most_reciprocal_conversation_first() -> None:
    low, high = record("one-sided", ONE_SIDED), record("matched", MATCHED)
    assert high.figures["reciprocity_index"] > low.figures["reciprocity_index"]
    solo = record("solo", [("eve", "core", "my secret"), ("eve", "none", "anyway")])
    page = render_report([solo, low, high], summary([solo, low, high]))
    table = page.split("Conversations by reciprocity index", 1)[1].split("</table>", 1)[0]
    assert table.index(">matched<") < table.index(">one-sided<") < table.index(">solo<")


def test_everything_from_the_input_is_escaped() -> None:
    rows = [
        (XSS_SPEAKER, "core", XSS_TEXT),
        ("ben", "surface", "<b>bold</b> & 'quotes' \"double\""),
        (XSS_SPEAKER, "none", "fine"),
        ("ben", "intermediate", "</details></table><h1>fake</h1>"),
    ]
    page = render_report([record(ODD_ID, rows)], summary([record(ODD_ID, rows)]))

    assert "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<script" not in page.lower()
    assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert ODD_ID not in page
    assert "chat &quot;quoted&quot; &amp; &lt;odd&gt;" in page
    assert "<b>bold</b>" not in page and "&lt;b&gt;bold&lt;/b&gt;" in page
    assert "<h1>fake</h1>" not in page
    assert page.count("<h1>") == 1


def test_plot_labels_from_input_cannot_break_the_plots() -> None:
    # With mathtext on, '$\\frac{' would make matplotlib raise while drawing the legend.
    rows = [("$\\frac{$", "core", "a"), ("price $5 or $6", "none", "b"), ("😀 emoji", "surface", "c")]
    page = render_report([record("$x^2$", rows)], summary([record("$x^2$", rows)]))
    assert "$\\frac{$" in page and "$x^2$" in page


def test_no_report_text_leaves_texts_out() -> None:
    records = [record("a", MATCHED, text=False), record("b", ONE_SIDED, text=False)]
    page = render_report(records, summary(records))
    for _, _, text in MATCHED + ONE_SIDED:
        if len(text) > 8:  # short texts like "ok" occur in the page's own words
            assert html.escape(text) not in page and text not in page
    assert "texts were left out" in page
    assert "ana" in page and "cleo" in page  # speakers and layers are still shown
    assert "<th>text</th>" not in page


def test_same_input_gives_byte_identical_html() -> None:
    def build() -> str:
        records = [record("a", MATCHED), record("b", ONE_SIDED), record("c", MATCHED, keep_messages=False)]
        return render_report(records, summary(records))

    first, second = build(), build()
    assert first == second
    other = [record("a", ONE_SIDED)]
    assert render_report(other, summary(other)) != first


def test_null_figures_show_their_reasons() -> None:
    solo = record("solo", [("eve", "core", "my secret"), ("eve", "none", "anyway")])
    single = record("single", [("fay", "surface", "hi I'm new here")])
    pair = record("pair", [("gus", "surface", "I live in York"), ("hal", "none", "cool")])
    empty_figures = analyze_conversation([], "empty", permutations=0).to_dict()
    empty_figures.pop("turns")
    empty = ConversationRecord("empty", empty_figures, [])
    records = [solo, single, pair, empty]
    page = render_report(records, summary(records))

    assert solo.figures["reciprocity_index"] is None
    for conversation_id in ("solo", "single", "pair", "empty"):
        assert conversation_id in page
    assert "not computed: only one speaker" in page
    assert "not computed: fewer than 2 turns (1)" in page
    assert "not computed: fewer than 3 exchanges (1)" in page
    # The empty conversation has no section, but its reasons are the dash tooltips of its row.
    assert 'title="empty conversation"' in page
    assert page.count("<section") == 3


def test_an_empty_run_still_renders() -> None:
    page = render_report([], AnnotationSummary())
    assert "No conversations" in page and page.rstrip().endswith("</html>")


# --------------------------------------------------------------------------- real browser


def _chromium() -> str | None:
    return shutil.which("chromium") or (str(Path("/usr/bin/chromium")) if Path("/usr/bin/chromium").exists() else None)


@pytest.mark.slow
def test_a_real_browser_runs_nothing_from_the_input(tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs Debian's chromium package")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    img_attack = "<img src=x onerror=\"document.title='pwned'\">"
    script_attack = "</script><script>document.title='pwned'</script>"
    rows = [
        ("ana", "core", img_attack),
        (script_attack, "surface", script_attack),
        ("ana", "intermediate", "<b>bold</b>"),
        ("bo", "none", "ok"),
    ]
    records = [record("attack", rows)]
    report = tmp_path / "report.html"
    report.write_text(render_report(records, summary(records)), encoding="utf-8")

    result = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", report.as_uri()],
        capture_output=True, text=True, timeout=120, check=False,
    )
    dom = result.stdout
    assert result.returncode == 0 and "</html>" in dom, result.stderr[-2000:]

    title = re.search(r"<title>(.*?)</title>", dom, re.DOTALL)
    assert title is not None and title.group(1) == "Disclosure report"
    assert "pwned" not in title.group(1)
    # The attacks are text in the DOM (serialised escaped), not elements.
    assert "&lt;img src=x onerror=\"document.title='pwned'\"&gt;" in dom
    assert "&lt;/script&gt;&lt;script&gt;document.title='pwned'&lt;/script&gt;" in dom
    assert "&lt;b&gt;bold&lt;/b&gt;" in dom
    assert not re.search(r"<img[^>]*\bsrc=\"x\"", dom)
    assert "<b>bold</b>" not in dom
    assert "<script" not in dom.lower()
    images = re.findall(r"<img\b[^>]*>", dom)
    assert len(images) == 2 and all('src="data:image/png;base64,' in tag for tag in images)


def test_a_long_run_lists_its_best_conversations_and_counts_the_rest(monkeypatch) -> None:
    """Past RANKING_ROWS the table keeps the highest RIs (ranks stay exact) and the rest are
    a distribution; past SCATTER_POINTS the overview shades a grid instead of drawing dots."""
    import disclosure_nlp.analysis.report as report

    monkeypatch.setattr(report, "RANKING_ROWS", 3)
    monkeypatch.setattr(report, "SCATTER_POINTS", 4)
    base = record("x", MATCHED, keep_messages=False).figures
    ris = [0.15, 0.95, None, 0.55, 0.85, 0.05, 0.9, 0.35]
    records = []
    for i, ri in enumerate(ris):
        figures = dict(base, reciprocity_index=ri, asymmetry=0.2)
        records.append(ConversationRecord(f"conv-{i}", figures, []))
    page = render_report(records, summary(records))

    ranking = page.split("Conversations by reciprocity index")[1]
    ranked = re.findall(r'<tr><td class="num">(\d+)</td><td class="id">(conv-\d+)</td>', ranking)
    assert ranked == [("1", "conv-1"), ("2", "conv-6"), ("3", "conv-4")]
    assert "the other 5 are counted below" in page
    assert "All 8 conversations" in page and "Without a reciprocity index: 1." in page
    bins = dict(re.findall(r"<tr><td>(\d\.\d–\d\.\d)</td><td class=\"num\">(\d+)</td>", page))
    assert bins["0.9–1.0"] == "2" and bins["0.0–0.1"] == "1" and sum(map(int, bins.values())) == 7
    mean = sum(r for r in ris if r is not None) / 7
    assert f"reciprocity index {mean:.2f} (over 7)" in page
    assert "how many conversations have each reciprocity index and asymmetry, shaded" in page


def test_a_short_run_keeps_every_row_and_no_distribution() -> None:
    records = [record(f"c{i}", MATCHED if i % 2 else ONE_SIDED, keep_messages=False) for i in range(5)]
    page = render_report(records, summary(records))
    assert len(re.findall(r'<tr><td class="num">\d+</td><td class="id">', page)) == 5
    assert "counted below" not in page and "one dot per conversation" in page


def test_the_builder_keeps_a_bounded_part_of_a_large_run(monkeypatch) -> None:
    import disclosure_nlp.analysis.report as report

    monkeypatch.setattr(report, "RANKING_ROWS", 10)
    monkeypatch.setattr(report, "SCATTER_POINTS", 20)
    base = record("x", MATCHED, keep_messages=False).figures
    builder = report.ReportBuilder()
    for i in range(2000):
        builder.add(ConversationRecord(f"c{i}", dict(base, reciprocity_index=(i * 7919 % 1000) / 1000), []))
    kept = len(builder._top) + len(builder._shown) + len(builder._points or [])
    assert builder.conversations == 2000 and kept <= 10
    page = builder.render(AnnotationSummary(conversations=2000))
    assert '<td class="num">1</td><td class="id">c' in page and "All 2000 conversations" in page
