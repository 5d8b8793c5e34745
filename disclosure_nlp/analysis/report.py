"""Self-contained HTML report of an annotation run (``disclosure annotate --report``).

Why it looks the way it does
----------------------------
The report is meant to be opened straight from disk, mailed to a colleague or archived with a
study, so it is one HTML file that loads nothing: plots are PNG images inlined as ``data:``
URIs, the style is an inline ``<style>`` element, and there is no script at all. A
Content-Security-Policy in the page says the same thing to the browser (no scripts, no
requests, images only from ``data:``), so even a mistake in escaping could not make the page
run code or call home.

Everything that comes from the input (conversation ids, speaker names, message texts,
``reasons``, figure values) is untrusted: transcripts are exported from chat apps and anyone in
the chat chose what they typed. It all goes through :func:`html.escape`, attributes included.
Labels drawn into plots are rendered as pixels (PNG) with matplotlib's mathtext parsing
turned off, so a ``$`` in a name can neither change nor break a plot.

The same records and summary give byte-identical HTML: rows keep input order (ties in the
ranking keep it too), floats are formatted with fixed digits, and the PNGs are written by Pillow
from the pixels alone, with no version or date chunk.

Layout: an overview (run counts, a plain-language legend of the figures, an overview plot and
a ranking of all conversations by reciprocity index), then one section per conversation that
has messages (annotate keeps them for the first
:data:`~disclosure_nlp.annotate.REPORT_CONVERSATION_LIMIT`): a depth timeline, the figures,
per-speaker figures, and the transcript inside a ``<details>`` element.

Why one module of ~740 lines: the report is one self-contained HTML page whose style, plots,
sections and escaping change together (every value passes through one function, ``_e``, here).
It reads in three parts, in order: the style and legend, the plotter, and the page sections with
the builder that streams conversations into them.
"""

from __future__ import annotations

import base64
import heapq
import html
import io
import math
import warnings
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..layers import LAYERS, MAX_DEPTH

from ..records import AnnotationSummary, ConversationRecord

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.figure import Figure

TITLE = "Disclosure report"
DPI = 100
PALETTE_COLORS = 64
UNKNOWN_SPEAKER = "(unknown)"
"""What annotate calls a message without a speaker in the figures; the timeline matches it."""
PLOT_LABEL_CHARS = 20
"""Speaker names and ids drawn into plots are cut to this length so a long name cannot push the
plot off the image (the tables show them in full)."""
SCATTER_LABEL_LIMIT = 30
"""Up to this many conversations, points of the overview scatter carry their id."""
RANKING_ROWS = 1000
"""Rows of the ranking table: the conversations with the highest reciprocity index. A run of
100,000 conversations listed in full made a 41 MB page that no browser scrolls; the rest are
counted in the distribution below the table, so the report's memory and size stay bounded."""
SCATTER_POINTS = 5000
"""Up to this many conversations the overview plot draws one dot each; beyond, it shades a
grid of :data:`DENSITY_BINS` × :data:`DENSITY_BINS` cells by how many conversations fall in each."""
DENSITY_BINS = 40
RI_BINS = 10
"""Bins of the reciprocity-index distribution shown when the ranking is cut."""
SPEAKERS_IN_RANKING = 4
"""Speakers listed per row of the ranking table; the rest are counted."""
LEGEND_SPEAKERS = 12
"""Speakers named in a timeline's legend; larger group chats get their lines, not their names."""

LAYER_COLORS: dict[str, str] = {
    "none": "#9aa0a6",
    "surface": "#4e79a7",
    "intermediate": "#f28e2b",
    "core": "#d62728",
}
SPEAKER_COLORS: tuple[str, ...] = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b",
    "#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#d62728",
)
MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"

STYLE = """
:root { --fg: #1d2125; --muted: #5f6b76; --line: #d8dee4; --band: #f6f8fa; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--fg); margin: 0 auto; max-width: 1180px; padding: 24px 28px 64px; }
h1 { font-size: 1.7em; margin: 0 0 4px; }
h2 { font-size: 1.3em; margin: 40px 0 8px; padding-top: 12px; border-top: 2px solid var(--line); }
h3 { font-size: 1.05em; margin: 20px 0 6px; }
p, dl { margin: 6px 0 12px; }
.muted { color: var(--muted); }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 16px 0; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 16px; min-width: 130px; background: var(--band); }
.card b { display: block; font-size: 1.5em; }
.card span { color: var(--muted); font-size: .9em; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: .92em; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: var(--band); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.na { color: var(--muted); }
.wrap { overflow-x: auto; }
dl.legend { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; }
dl.legend dt { font-weight: 600; }
dl.legend dd { margin: 0; }
img.plot { max-width: 100%; height: auto; display: block; margin: 8px 0; }
.layer { display: inline-block; padding: 0 7px; border-radius: 10px; font-size: .85em; color: #fff; white-space: nowrap; }
.layer-none { background: #80868b; }
.layer-surface { background: #4e79a7; }
.layer-intermediate { background: #c9711e; }
.layer-core { background: #c62828; }
details { margin: 8px 0 16px; }
summary { cursor: pointer; font-weight: 600; }
td.text { white-space: pre-wrap; overflow-wrap: anywhere; max-width: 720px; }
td.time { white-space: nowrap; color: var(--muted); font-variant-numeric: tabular-nums; }
td.id, span.id { overflow-wrap: anywhere; }
.pair { display: flex; flex-wrap: wrap; gap: 0 40px; align-items: flex-start; }
.note { border-left: 4px solid #f2c94c; background: #fffbea; padding: 6px 12px; }
"""


# --------------------------------------------------------------------------- small helpers


def _e(value: Any) -> str:
    """Escape any value for HTML text or a quoted attribute."""
    return html.escape(str(value), quote=True)


def _number(value: Any, digits: int = 2, signed: bool = False) -> str | None:
    """Fixed-digit text of a finite number, or None when the value is not one."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _figure_cell(value: Any, reason: str | None = None, digits: int = 2, signed: bool = False) -> str:
    """A table cell for one figure: the number, or a dash whose tooltip says why it is missing."""
    text = _number(value, digits, signed)
    if text is not None:
        return f'<td class="num">{text}</td>'
    if value is not None:  # not a number (should not happen, but never trust input)
        return f'<td class="num">{_e(value)}</td>'
    title = f' title="{_e(reason)}"' if reason else ""
    return f'<td class="num na"{title}>—</td>'


def _figure_text(value: Any, reason: str | None, digits: int = 2, signed: bool = False) -> str:
    """A figure for the per-conversation table: the number, or 'not computed: reason'."""
    text = _number(value, digits, signed)
    if text is not None:
        return text
    if value is not None:
        return _e(value)
    because = f": {_e(reason)}" if reason else ""
    return f'<span class="na">not computed{because}</span>'


def _layer_badge(layer: Any) -> str:
    name = str(layer)
    css = f" layer-{name}" if name in LAYERS else ""
    return f'<span class="layer{css}">{_e(name)}</span>'


def _plot_label(value: Any) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= PLOT_LABEL_CHARS else text[: PLOT_LABEL_CHARS - 1] + "…"


def _speaker(value: Any) -> str:
    return UNKNOWN_SPEAKER if value is None else str(value)


def _anchor(index: int) -> str:
    """Anchors are built from positions, never from ids, so no input ends up in an id attribute."""
    return f"conv-{index + 1}"


# --------------------------------------------------------------------------- plots


class _Plotter:
    """Draws PNG plots with matplotlib's Agg canvas, imported only when a report is made.

    Figures are made with ``matplotlib.figure.Figure`` rather than pyplot, so no global figure
    state or GUI backend is involved and nothing leaks between plots.
    """

    def __init__(self) -> None:
        import matplotlib

        self._matplotlib = matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self._Figure = Figure
        self._Canvas = FigureCanvasAgg
        self._rc = {
            "text.parse_math": False,  # a '$' in a name is a dollar sign, not mathtext
            "font.size": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }

    def _png(self, fig: Figure) -> str:
        """Base64 PNG of a figure, reduced to a small palette.

        Line plots use a handful of colours plus anti-aliasing shades, so a palette of
        :data:`PALETTE_COLORS` looks the same and makes the file about four times smaller (200
        plots stay under 2 MB). Pillow writes no date or version chunk, so the bytes depend
        only on the pixels.
        """
        from PIL import Image

        canvas = self._Canvas(fig)
        canvas.draw()
        size = canvas.get_width_height(physical=True)
        image = Image.frombuffer("RGBA", size, canvas.buffer_rgba(), "raw", "RGBA", 0, 1).convert("RGB")
        image = image.quantize(PALETTE_COLORS, method=Image.Quantize.MEDIANCUT)
        buffer = io.BytesIO()
        image.save(buffer, format="png")
        return base64.b64encode(buffer.getvalue()).decode("ascii")

    def _draw(self, draw, *args) -> str:
        with self._matplotlib.rc_context(self._rc), warnings.catch_warnings():
            # Emoji and rare scripts in names are missing from the bundled font: they are drawn
            # as boxes, which is fine for a legend; the warning would only be noise.
            warnings.filterwarnings("ignore", message=r"Glyph .* missing from")
            warnings.filterwarnings("ignore", message=r"Matplotlib currently does not support")
            return draw(*args)

    def timeline(self, messages: Sequence[dict[str, Any]]) -> str:
        return self._draw(self._timeline, messages)

    def overview(self, points: list[tuple[str, float, float, int]], layer_counts: dict[str, int]) -> str:
        return self._draw(self._overview, points, layer_counts)

    def _timeline(self, messages: Sequence[dict[str, Any]]) -> str:
        series: dict[str, tuple[list[int], list[float]]] = {}
        for position, message in enumerate(messages, start=1):
            depth = message.get("depth")
            if _number(depth) is None:
                continue
            xs, ys = series.setdefault(_speaker(message.get("speaker")), ([], []))
            xs.append(position)
            ys.append(min(MAX_DEPTH, max(0.0, float(depth))))
        # Fixed margins instead of a layout engine: one draw per plot instead of two.
        fig = self._Figure(figsize=(10, 2.7), dpi=DPI)
        fig.subplots_adjust(left=0.15, right=0.835, bottom=0.17, top=0.96)
        ax = fig.add_subplot()
        for level, name in enumerate(LAYERS):
            ax.axhspan(level - 0.5, level + 0.5, color=LAYER_COLORS[name], alpha=0.07, lw=0)
        small = len(messages) <= 80
        for i, (name, (xs, ys)) in enumerate(series.items()):
            ax.plot(
                xs, ys,
                color=SPEAKER_COLORS[i % len(SPEAKER_COLORS)],
                # Long chats get dots, not shapes, but always a marker: a speaker with one
                # message in a long chat would otherwise be a line of length zero, invisible.
                marker=MARKERS[i % len(MARKERS)] if small else "o",
                markersize=5 if small else 2, linewidth=1.6 if small else 1.0, alpha=0.9,
                label=_plot_label(name) if i < LEGEND_SPEAKERS else None,
            )
        ax.set_ylim(-0.3, MAX_DEPTH + 0.3)
        ax.set_yticks(range(len(LAYERS)), [f"{name} ({level})" for level, name in enumerate(LAYERS)])
        ax.set_xlim(0.5, max(1, len(messages)) + 0.5)
        if len(messages) <= 40:
            ax.set_xticks(range(1, len(messages) + 1, 1 if len(messages) <= 20 else 2))
        ax.set_xlabel("message position")
        ax.set_ylabel("disclosure depth")
        ax.grid(axis="y", color="#d8dee4", linewidth=0.8)
        if series:
            ax.legend(
                loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False,
                title="speaker", fontsize=8, title_fontsize=8,
            )
        else:
            ax.text(0.5, 0.5, "no depth scores", transform=ax.transAxes, ha="center", va="center")
        return self._png(fig)

    def _overview(self, points: list[tuple[str, float, float, int]], layer_counts: dict[str, int]) -> str:
        fig = self._Figure(figsize=(10, 3.4), dpi=DPI)
        fig.subplots_adjust(left=0.065, right=0.975, bottom=0.14, top=0.92, wspace=0.25)
        scatter, bars = fig.subplots(1, 2, width_ratios=[1.45, 1])
        if points:
            xs = [p[2] for p in points]
            ys = [p[1] for p in points]
            sizes = [18 + 4 * math.sqrt(max(0, p[3])) for p in points]
            scatter.scatter(xs, ys, s=sizes, color="#4e79a7", alpha=0.7, edgecolors="white", linewidths=0.6)
            if len(points) <= SCATTER_LABEL_LIMIT:
                for label, ri, asym, _ in points:
                    scatter.annotate(
                        _plot_label(label), (asym, ri), xytext=(4, 3), textcoords="offset points",
                        fontsize=7, color="#3c4043",
                    )
        else:
            scatter.text(0.5, 0.5, "no conversation has both figures", transform=scatter.transAxes,
                         ha="center", va="center", color="#5f6b76")
        scatter.set_xlim(-0.03, 1.03)
        scatter.set_ylim(-0.03, 1.08)
        scatter.set_xlabel("asymmetry (0 = both go equally deep)")
        scatter.set_ylabel("reciprocity index")
        scatter.set_title("Reciprocity vs asymmetry (dot size: messages)", fontsize=9)
        scatter.grid(color="#e8eaed", linewidth=0.8)

        self._layer_bars(bars, layer_counts)
        return self._png(fig)

    def density(self, grid: list[list[int]], layer_counts: dict[str, int]) -> str:
        return self._draw(self._density, grid, layer_counts)

    def _density(self, grid: list[list[int]], layer_counts: dict[str, int]) -> str:
        from matplotlib.colors import LogNorm

        fig = self._Figure(figsize=(10, 3.4), dpi=DPI)
        fig.subplots_adjust(left=0.065, right=0.975, bottom=0.14, top=0.92, wspace=0.25)
        shade, bars = fig.subplots(1, 2, width_ratios=[1.45, 1])
        peak = max(max(row) for row in grid)
        masked = [[count if count else float("nan") for count in row] for row in grid]
        image = shade.imshow(masked, origin="lower", extent=(0, 1, 0, 1), aspect="auto", cmap="Blues",
                             norm=LogNorm(vmin=1, vmax=max(2, peak)), interpolation="nearest")
        fig.colorbar(image, ax=shade, label="conversations", pad=0.01)
        shade.set_xlim(-0.03, 1.03)
        shade.set_ylim(-0.03, 1.08)
        shade.set_xlabel("asymmetry (0 = both go equally deep)")
        shade.set_ylabel("reciprocity index")
        shade.set_title(f"Reciprocity vs asymmetry ({sum(map(sum, grid))} conversations, shade: how many)", fontsize=9)
        self._layer_bars(bars, layer_counts)
        return self._png(fig)

    @staticmethod
    def _layer_bars(bars: Any, layer_counts: dict[str, int]) -> None:
        counts = [layer_counts.get(name, 0) for name in LAYERS]
        total = sum(counts)
        positions = list(range(len(LAYERS)))
        bars.barh(positions, counts, color=[LAYER_COLORS[name] for name in LAYERS])
        bars.set_yticks(positions, list(LAYERS))
        bars.invert_yaxis()
        for y, count in zip(positions, counts):
            share = f"{count} ({100 * count / total:.0f}%)" if total else "0"
            bars.annotate(share, (count, y), xytext=(4, 0), textcoords="offset points", va="center", fontsize=8)
        bars.set_xlim(0, max(counts + [1]) * 1.3)
        bars.set_xlabel("messages")
        bars.set_title("Messages per layer (conversations shown below)", fontsize=9)


# --------------------------------------------------------------------------- sections


def _counts(stats: AnnotationSummary, n_records: int) -> str:
    cards = [
        (getattr(stats, "read", 0), "messages read"),
        (getattr(stats, "written", 0), "messages written"),
        (getattr(stats, "rejected", 0), "messages rejected"),
        (getattr(stats, "conversations", n_records), "conversations"),
    ]
    body = "".join(f'<div class="card"><b>{_e(value)}</b><span>{label}</span></div>' for value, label in cards)
    seconds = _number(getattr(stats, "seconds", None), 1)
    rate = _number(getattr(stats, "messages_per_second", None), 0)
    timing = ""
    if seconds is not None and rate is not None and float(stats.seconds) > 0:
        timing = f'<p class="muted">Annotated in {seconds} s ({rate} messages/s).</p>'
    rejected = ""
    if getattr(stats, "rejected", 0):
        rejected = (
            '<p class="note">Some input records were rejected and are not in this report; '
            "the rejects file lists each one with its file, line and reason.</p>"
        )
    return f'<div class="cards">{body}</div>{timing}{rejected}'


LEGEND: tuple[tuple[str, str], ...] = (
    ("Layer, depth",
     ("Each message gets one of four layers: none (0), surface (1: job, hobbies, tastes), "
     "intermediate (2: opinions, everyday feelings and worries) or core (3: deep fears, trauma, "
     "secrets). Depth is the model's expected layer, between 0 and 3.")),
    ("Turn, exchange",
     ("A turn is a run of consecutive messages by one speaker; its depth is its deepest message. "
     "An exchange is a turn and the turn of another speaker that it answers.")),
    ("Reciprocity index (RI, 0–1)",
     ("How closely answers match the depth of what they answer. 1: every answer goes as deep as "
     "the turn it answers. 0: one side opens up and the other never does. Exchanges where "
     "neither side discloses anything are left out.")),
    ("Lag-1 r, p",
     ("Correlation between the depth of a turn and the depth of its answer (−1 to 1): positive "
     "means deeper turns get deeper answers. p is a permutation test: below 0.05, a link this "
     "strong would rarely arise by chance. Needs at least 3 exchanges with varying depths.")),
    ("Trajectory slope",
     ("Change in depth per turn over the conversation, in layers. Positive: the conversation "
     "goes deeper as it goes on; negative: it becomes shallower.")),
    ("Asymmetry (0–1)",
     ("Gap between the deepest and the shallowest speaker's mean depth, divided by 3. 0: everyone "
     "goes equally deep; 1: one person stays at core while another never discloses.")),
    ("Mean depth, led",
     ("A speaker's average turn depth (0–3); a speaker leads a layer when their turn is the first "
     "to reach it (or deeper).")),
    ("— (dash)",
     ("A figure that cannot be computed, for example with a single speaker or too few exchanges; "
     "hover over the dash, or see the conversation's section, for the reason.")),
)


def _legend() -> str:
    items = "".join(f"<dt>{_e(term)}</dt><dd>{_e(text)}</dd>" for term, text in LEGEND)
    return (
        '<h3>Reading the figures</h3><dl class="legend">' + items + "</dl>"
        '<p class="muted">Layers come from a classifier and can be wrong on single messages; '
        "figures of short conversations rest on few exchanges, so read them as hints.</p>"
    )


def _speaker_means(figures: dict[str, Any]) -> str:
    speakers = figures.get("speakers") or {}
    if not isinstance(speakers, dict):
        return ""
    parts = []
    for name, own in list(speakers.items())[:SPEAKERS_IN_RANKING]:
        mean = _number(own.get("mean_depth") if isinstance(own, dict) else None)
        parts.append(f"{_e(name)}&nbsp;{mean if mean is not None else '—'}")
    rest = len(speakers) - SPEAKERS_IN_RANKING
    if rest > 0:
        parts.append(f'<span class="muted">+{rest} more</span>')
    return ", ".join(parts)


def _ri_key(index: int, figures: dict[str, Any]) -> tuple[int, float, int]:
    """Highest RI first, conversations without an RI last, ties in input order."""
    ri = _number(figures.get("reciprocity_index"))
    return (1, 0.0, index) if ri is None else (0, -float(figures["reciprocity_index"]), index)


RANKING_HEAD = (
    "<tr><th class='num'>#</th><th>conversation</th><th class='num'>messages</th>"
    "<th class='num'>speakers</th><th>mean depth per speaker</th><th class='num'>RI</th>"
    "<th class='num'>asymmetry</th><th class='num'>slope</th><th class='num'>lag-1 r</th>"
    "<th class='num'>p</th></tr>"
)


def _ranking_cells(index: int, record: ConversationRecord, shown: bool) -> str:
    """A ranking row without its rank cell (the rank is known only at the end)."""
    f = record.figures
    reasons = f.get("reasons") or {}
    reasons = reasons if isinstance(reasons, dict) else {}
    name = _e(record.conversation_id)
    link = f'<a href="#{_anchor(index)}">{name}</a>' if shown else name
    return (
        f'<td class="id">{link}</td>'
        f'<td class="num">{_e(f.get("n_messages", len(record.messages)))}</td>'
        f'<td class="num">{_e(f.get("n_speakers", ""))}</td>'
        f"<td>{_speaker_means(f)}</td>"
        + _figure_cell(f.get("reciprocity_index"), reasons.get("reciprocity_index"))
        + _figure_cell(f.get("asymmetry"), reasons.get("asymmetry"))
        + _figure_cell(f.get("trajectory_slope"), reasons.get("trajectory_slope"), 3, signed=True)
        + _figure_cell(f.get("lag1_correlation"), reasons.get("lag1_correlation"), signed=True)
        + _figure_cell(f.get("lag1_p_value"), reasons.get("lag1_p_value"), 3)
        + "</tr>"
    )


def _figures_table(figures: dict[str, Any]) -> str:
    reasons = figures.get("reasons") or {}
    reasons = reasons if isinstance(reasons, dict) else {}
    rows = [
        ("reciprocity index", _figure_text(figures.get("reciprocity_index"), reasons.get("reciprocity_index"))),
        ("lag-1 r", _figure_text(figures.get("lag1_correlation"), reasons.get("lag1_correlation"), signed=True)),
        ("lag-1 p", _figure_text(figures.get("lag1_p_value"), reasons.get("lag1_p_value"), 3)),
        ("trajectory slope (layers per turn)",
         _figure_text(figures.get("trajectory_slope"), reasons.get("trajectory_slope"), 3, signed=True)),
        ("asymmetry", _figure_text(figures.get("asymmetry"), reasons.get("asymmetry"))),
    ]
    most = figures.get("most_disclosing")
    rows.append(
        ("most disclosing",
         _e(most) if most is not None else _figure_text(None, reasons.get("most_disclosing")))
    )
    known = {"reciprocity_index", "lag1_correlation", "lag1_p_value", "trajectory_slope", "asymmetry", "most_disclosing"}
    for key, reason in reasons.items():  # reasons for figures this report does not list
        if key not in known:
            rows.append((str(key), _figure_text(None, reason)))
    body = "".join(f"<tr><th>{_e(label)}</th><td>{value}</td></tr>" for label, value in rows)
    return f"<table>{body}</table>"


def _speakers_table(figures: dict[str, Any]) -> str:
    speakers = figures.get("speakers") or {}
    if not isinstance(speakers, dict) or not speakers:
        return '<p class="muted">No speakers.</p>'
    head = (
        "<tr><th>speaker</th><th class='num'>turns</th><th class='num'>mean depth</th>"
        "<th>max layer</th><th class='num'>disclosing turns</th><th>layers led</th></tr>"
    )
    rows = []
    for name, own in speakers.items():
        own = own if isinstance(own, dict) else {}
        share = _number(own.get("disclosure_share"))
        share_text = f"{100 * float(own['disclosure_share']):.0f}%" if share is not None else "—"
        led = own.get("led") or []
        led_text = ", ".join(_e(layer) for layer in led) if isinstance(led, list) and led else '<span class="na">—</span>'
        rows.append(
            f'<tr><td class="id">{_e(name)}</td><td class="num">{_e(own.get("turns", ""))}</td>'
            f'<td class="num">{_number(own.get("mean_depth")) or "—"}</td>'
            f"<td>{_layer_badge(own['max_layer']) if own.get('max_layer') is not None else '—'}</td>"
            f'<td class="num">{share_text}</td><td>{led_text}</td></tr>'
        )
    return f"<table>{head}{''.join(rows)}</table>"


def _transcript(messages: Sequence[dict[str, Any]]) -> str:
    with_text = any(m.get("text") is not None for m in messages)
    with_time = any(m.get("timestamp") not in (None, "") for m in messages)
    head = (
        "<tr><th class='num'>#</th>"
        + ("<th>time</th>" if with_time else "")
        + "<th>speaker</th><th>layer</th><th class='num'>depth</th>"
        + ("<th>text</th>" if with_text else "")
        + "</tr>"
    )
    rows = []
    for position, m in enumerate(messages, start=1):
        depth = _number(m.get("depth"))
        time_cell = f"<td class='time'>{_e(m.get('timestamp') or '')}</td>" if with_time else ""
        text = m.get("text")
        text_cell = f'<td class="text">{_e(text) if text is not None else ""}</td>' if with_text else ""
        rows.append(
            f'<tr><td class="num">{position}</td>{time_cell}<td class="id">{_e(_speaker(m.get("speaker")))}</td>'
            f"<td>{_layer_badge(m.get('layer'))}</td><td class='num'>{depth if depth is not None else '—'}</td>"
            f"{text_cell}</tr>"
        )
    note = "" if with_text else '<p class="muted">Message texts were left out of this report.</p>'
    return (
        f"<details><summary>Transcript ({len(messages)} message{'' if len(messages) == 1 else 's'})</summary>{note}"
        f"<div class='wrap'><table>{head}{''.join(rows)}</table></div></details>"
    )


def _conversation(plotter: _Plotter, index: int, record: ConversationRecord) -> str:
    f = record.figures
    facts = []
    for key, label in (("n_messages", "message"), ("n_turns", "turn"), ("n_speakers", "speaker")):
        if f.get(key) is not None:
            facts.append(f"{_e(f[key])} {label}{'' if f[key] == 1 else 's'}")
    image = plotter.timeline(record.messages)
    alt = f"Disclosure depth of each message in conversation {record.conversation_id}, one line per speaker."
    return (
        f'<section id="{_anchor(index)}"><h2>Conversation <span class="id">{_e(record.conversation_id)}</span></h2>'
        f'<p class="muted">{", ".join(facts)}</p>'
        f'<img class="plot" alt="{_e(alt)}" src="data:image/png;base64,{image}">'
        f'<div class="pair"><div><h3>Figures</h3>{_figures_table(f)}</div>'
        f"<div><h3>Speakers</h3>{_speakers_table(f)}</div></div>"
        f"{_transcript(record.messages)}</section>"
    )


# --------------------------------------------------------------------------- entry point


class ReportBuilder:
    """Takes an annotation run's conversations one at a time and renders the report at the end.

    Memory is bounded whatever the number of conversations: it keeps the conversations that
    get their own section (annotate keeps messages for the first
    :data:`~disclosure_nlp.annotate.REPORT_CONVERSATION_LIMIT` only), the :data:`RANKING_ROWS`
    best-ranked rows (pre-rendered), the overview's dots up to :data:`SCATTER_POINTS` (then a
    fixed grid of counts) and a few running totals; everything else is counted, then dropped.
    """

    def __init__(self) -> None:
        self.conversations = 0
        self._shown: list[tuple[int, ConversationRecord]] = []
        self._top: list[tuple[tuple[float, ...], int, str]] = []  # a min-heap on the negated rank key
        self._points: list[tuple[str, float, float, int]] | None = []
        self._grid: list[list[int]] | None = None
        self._layer_counts = {name: 0 for name in LAYERS}
        self._ri_bins = [0] * RI_BINS
        self._without_ri = 0
        self._sums = {"reciprocity_index": [0.0, 0], "asymmetry": [0.0, 0], "trajectory_slope": [0.0, 0]}

    def add(self, record: ConversationRecord) -> None:
        index = self.conversations
        self.conversations += 1
        shown = bool(record.messages)
        if shown:
            self._shown.append((index, record))
            for message in record.messages:
                layer = message.get("layer")
                if layer in self._layer_counts:
                    self._layer_counts[layer] += 1
        figures = record.figures if isinstance(record.figures, dict) else {}
        negated = tuple(-part for part in _ri_key(index, figures))
        if len(self._top) < RANKING_ROWS:
            heapq.heappush(self._top, (negated, index, _ranking_cells(index, record, shown)))
        elif negated > self._top[0][0]:
            heapq.heapreplace(self._top, (negated, index, _ranking_cells(index, record, shown)))
        self._count(record.conversation_id, figures)

    def _count(self, conversation_id: str, figures: dict[str, Any]) -> None:
        for name, total in self._sums.items():
            if _number(figures.get(name)) is not None:
                total[0] += float(figures[name])
                total[1] += 1
        ri, asym = figures.get("reciprocity_index"), figures.get("asymmetry")
        if _number(ri) is None:
            self._without_ri += 1
        else:
            self._ri_bins[_bin(float(ri), RI_BINS)] += 1
        if _number(ri) is None or _number(asym) is None:
            return
        n = figures.get("n_messages")
        point = (str(conversation_id), float(ri), float(asym), n if isinstance(n, int) else 0)
        if self._points is None:
            self._shade(point)
            return
        self._points.append(point)
        if len(self._points) > SCATTER_POINTS:  # too many dots to read: a grid from now on
            self._grid = [[0] * DENSITY_BINS for _ in range(DENSITY_BINS)]
            points, self._points = self._points, None
            for old in points:
                self._shade(old)

    def _shade(self, point: tuple[str, float, float, int]) -> None:
        assert self._grid is not None
        self._grid[_bin(point[1], DENSITY_BINS)][_bin(point[2], DENSITY_BINS)] += 1

    # ------------------------------------------------------------------ rendering
    def _ranking(self) -> str:
        rows = sorted(self._top, reverse=True)
        body = "".join(f'<tr><td class="num">{rank}</td>{cells}' for rank, (_, _, cells) in enumerate(rows, start=1))
        return f'<div class="wrap"><table>{RANKING_HEAD}{body}</table></div>'

    def _rest(self) -> str:
        """What the ranking leaves out, as a distribution (only when it leaves something out)."""
        left_out = self.conversations - len(self._top)
        if left_out <= 0:
            return ""
        with_ri = sum(self._ri_bins)
        rows = "".join(
            f'<tr><td>{i / RI_BINS:.1f}–{(i + 1) / RI_BINS:.1f}</td><td class="num">{count}</td>'
            f'<td class="num">{100 * count / with_ri:.1f}%</td></tr>'
            for i, count in enumerate(self._ri_bins)
        ) if with_ri else ""
        labels = (("reciprocity index", 2), ("asymmetry", 2), ("trajectory slope", 3))
        means = ", ".join(
            f"{label} {total[0] / total[1]:.{digits}f} (over {total[1]})"
            for (label, digits), total in zip(labels, self._sums.values())
            if total[1]
        )
        table = (
            "<table><tr><th>reciprocity index</th><th class='num'>conversations</th>"
            f"<th class='num'>share</th></tr>{rows}</table>" if rows else ""
        )
        return (
            f'<p class="note">The table lists the {len(self._top)} conversations with the highest '
            f"reciprocity index; the other {left_out} are counted below, not listed, so that the "
            "report stays a size a browser opens (every conversation's figures are in the annotated "
            "output and the summary file).</p>"
            f"<h3>All {self.conversations} conversations</h3>"
            f'<p class="muted">Means: {_e(means) if means else "none computable"}. '
            f"Without a reciprocity index: {self._without_ri}.</p>{table}"
        )

    def _overview(self, plotter: _Plotter) -> str:
        if self._points is not None:
            image = plotter.overview(self._points, self._layer_counts)
            alt = "Left: reciprocity index against asymmetry, one dot per conversation. Right: messages per layer."
        else:
            assert self._grid is not None
            image = plotter.density(self._grid, self._layer_counts)
            alt = ("Left: how many conversations have each reciprocity index and asymmetry, shaded. "
                   "Right: messages per layer.")
        return f'<img class="plot" alt="{_e(alt)}" src="data:image/png;base64,{image}">'

    def render(self, stats: AnnotationSummary) -> str:
        """The whole report as one HTML document; the same conversations and stats give the
        same bytes."""
        plotter = _Plotter()
        shown = self._shown
        hidden = self.conversations - len(shown)
        limit_note = ""
        if hidden:
            where = ("listed in the table above only" if self.conversations <= RANKING_ROWS
                     else "in the table or the counts above only")
            limit_note = (
                f'<p class="note">The report shows plots and transcripts for the first {len(shown)} '
                f"conversations; the other {hidden} are {where} "
                "(their figures are in the annotated output and the summary file).</p>"
            )
        texts_left_out = any(r.messages for _, r in shown) and not any(
            m.get("text") is not None for _, r in shown for m in r.messages
        )
        privacy = '<p class="muted">Message texts were left out of this report.</p>' if texts_left_out else ""
        sections = "".join(_conversation(plotter, i, record) for i, record in shown)
        has_any = self.conversations > 0
        overview_plot = self._overview(plotter) if has_any else '<p class="muted">No conversations.</p>'
        ranking = self._ranking() + self._rest() if has_any else ""
        return (
            "<!doctype html>\n"
            '<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<meta name="referrer" content="no-referrer">'
            f"<title>{TITLE}</title><style>{STYLE}</style></head>\n<body>"
            f"<h1>{TITLE}</h1>"
            '<p class="muted">How deeply each person opens up in each conversation, and whether the '
            "other person meets them there.</p>"
            f"{privacy}{_counts(stats, self.conversations)}"
            f"{_legend()}"
            f"<h3>Overview</h3>{overview_plot}"
            f"<h3>Conversations by reciprocity index</h3>{ranking}{limit_note}"
            f"{sections}"
            "</body></html>\n"
        )


def _bin(value: float, bins: int) -> int:
    """The bin of a value in [0, 1] among ``bins`` equal ones (1 falls in the last)."""
    return min(bins - 1, max(0, int(value * bins)))


def render_report(records: Iterable[ConversationRecord], stats: AnnotationSummary) -> str:
    """The whole report as one HTML document; same records and stats give the same bytes.

    ``records`` are in input order; those with messages get their own section (plots and
    transcript), the first :data:`RANKING_ROWS` by reciprocity index a row of the ranking, and
    all of them a place in the overview.
    """
    builder = ReportBuilder()
    for record in records:
        builder.add(record)
    return builder.render(stats)


__all__ = ["ReportBuilder", "render_report"]
