"""HTML report of an annotation run (placeholder until the full report lands)."""

from __future__ import annotations

import html


def render_report(records, stats) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(str(r.conversation_id))}</td><td>{html.escape(str(r.figures.get('reciprocity_index')))}</td></tr>"
        for r in records
    )
    return f"<!doctype html><meta charset='utf-8'><title>disclosure report</title><p>{html.escape(stats.line())}</p><table>{rows}</table>"
