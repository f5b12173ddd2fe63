"""Staff analytics (/staff/analytics): the questions of a period as charts and tables, and CSV.

The view parses the period, calls :mod:`service.analytics`, and shapes the figures into
chart geometry for server-rendered SVG (no script: the CSP allows none inline, and the
tables beside each chart carry the same figures for screen readers and copying).
"""
from __future__ import annotations

import csv
import io
from datetime import date
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request

from .. import analytics
from .staff_auth import role_required
from ..db import get_db
from ..faq import csv_guard
from ..tickets import display_code, display_time

bp = Blueprint("analytics", __name__, url_prefix="/staff")

# Chart geometry, in SVG user units (the SVG scales to the page width).
# About the width the chart is drawn at beside its table, so that 12-unit text reads as 12px.
CHART_WIDTH, CHART_HEIGHT, AXIS_LEFT, AXIS_BOTTOM, AXIS_TOP = 460, 220, 44, 28, 12
BAR_ROW, BAR_LABEL, BAR_LABEL_CHARS = 26, 176, 13


def _today() -> date:
    """Today in Beijing: ``app.config["TODAY"]`` when set (tests, demonstrations)."""
    return current_app.config.get("TODAY") or analytics.beijing_today()


def _period() -> tuple[analytics.Period | None, str | None, dict[str, str]]:
    form = {"from": request.args.get("from", ""), "to": request.args.get("to", "")}
    try:
        return analytics.parse_period(form["from"], form["to"], _today()), None, form
    except analytics.PeriodError as exc:
        return None, exc.message, form


@bp.get("/analytics")
@role_required("curator", "reviewer")
def index():  # type: ignore[no-untyped-def]
    """The analytics page for the period in ``?from=&to=`` (default: the last 30 days)."""
    period, error, form = _period()
    if period is None:
        return render_template("staff/analytics.html", error=error, form=form, result=None), 400
    result = analytics.report(get_db(), period)
    form = {"from": period.start.isoformat(), "to": period.end.isoformat()}
    return render_template(
        "staff/analytics.html", error=None, form=form, result=result, statuses=analytics.ASK_STATUSES,
        ticket_kinds=analytics.TICKET_KINDS, volume=_stacked_columns(result.daily, list(analytics.ASK_STATUSES)),
        feedback=_stacked_columns(result.feedback_daily, ["helpful", "unhelpful"]),
        shares=_share_bar(result), top=_bars([(r.get("question") or f"条目 {r['entry_id']}", r["n"])
                                              for r in result.top_entries]),
        slowest=_bars([(display_code(t["code"]), t["hours"]) for t in result.slowest_tickets]))


@bp.get("/analytics.csv")
@role_required("curator", "reviewer")
def export():  # type: ignore[no-untyped-def]
    """The page's tables as one CSV (UTF-8 with BOM, for Excel), a titled block per table."""
    period, error, form = _period()
    if period is None:
        return render_template("staff/analytics.html", error=error, form=form, result=None), 400
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([f"统计期间（北京时间）：{period.start.isoformat()} 至 {period.end.isoformat()}"])
    for title, header, rows in analytics.csv_sections(analytics.report(get_db(), period)):
        writer.writerow([])
        writer.writerow([title])
        writer.writerow(header)
        for row in rows:
            writer.writerow([csv_guard(v) if isinstance(v, str) else v for v in row])
    name = f"analytics-{period.start.isoformat()}-{period.end.isoformat()}.csv"
    return Response(("\ufeff" + out.getvalue()).encode("utf-8"), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


# -- chart geometry -----------------------------------------------------------------

def _nice_max(value: float) -> float:
    """The axis maximum: the value rounded up to 1, 2 or 5 times a power of ten."""
    if value <= 0:
        return 1
    step = 1.0
    while step * 10 <= value:
        step *= 10
    for factor in (1, 2, 5, 10):
        if step * factor >= value:
            return step * factor
    return step * 10


def _stacked_columns(rows: list[dict[str, Any]], series: list[str]) -> dict[str, Any]:
    """Columns per day, each stacked from ``series``, with axis ticks and sparse day labels."""
    # Counts: at least 0 to 5, so that a quiet period has whole-number ticks.
    top = _nice_max(max([5, *(sum(r[s] for s in series) for r in rows)]))
    plot_w, plot_h = CHART_WIDTH - AXIS_LEFT - 8, CHART_HEIGHT - AXIS_TOP - AXIS_BOTTOM
    slot = plot_w / max(len(rows), 1)
    width = max(slot * 0.8, 1)
    label_every = max(1, round(len(rows) / 6))
    columns = []
    for i, row in enumerate(rows):
        x, base, parts = AXIS_LEFT + i * slot + (slot - width) / 2, AXIS_TOP + plot_h, []
        for name in series:
            height = row[name] / top * plot_h
            if height > 0:
                parts.append({"series": name, "y": round(base - height, 2), "height": round(height, 2)})
            base -= height
        columns.append({"x": round(x, 2), "width": round(width, 2), "parts": parts,
                        "label": row["day"][5:] if i % label_every == 0 else None,
                        "label_x": round(x + width / 2, 2)})
    steps = 4 if f"{top:g}".startswith("2") else 5  # round steps: 0.5, 1, 2, 5 times a power of ten
    ticks = [{"value": _tick_text(top * k / steps), "y": round(AXIS_TOP + plot_h - plot_h * k / steps, 2)}
             for k in range(steps + 1)]
    return {"width": CHART_WIDTH, "height": CHART_HEIGHT, "left": AXIS_LEFT, "right": CHART_WIDTH - 8,
            "bottom": AXIS_TOP + plot_h, "columns": columns, "ticks": ticks}


def _tick_text(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def _share_bar(result: analytics.Report) -> dict[str, Any]:
    """One bar split by answer status, in proportion to the period's questions."""
    x, parts = 0.0, []
    for status in analytics.ASK_STATUSES:
        width = result.share(status) * CHART_WIDTH
        if width > 0:
            parts.append({"series": status, "x": round(x, 2), "width": round(width, 2)})
        x += width
    return {"width": CHART_WIDTH, "height": 40, "parts": parts}


def _bars(items: list[tuple[str, float]]) -> dict[str, Any]:
    """Horizontal bars, one row per item, with its label on the left and value on the right."""
    top = max((value for _, value in items), default=0) or 1
    room = CHART_WIDTH - BAR_LABEL - 56
    rows = [{"label": label if len(label) <= BAR_LABEL_CHARS else label[:BAR_LABEL_CHARS - 1] + "…", "value": value,
             "y": i * BAR_ROW, "width": round(max(value / top * room, 1), 2)} for i, (label, value) in enumerate(items)]
    return {"width": CHART_WIDTH, "height": max(len(rows), 1) * BAR_ROW, "label_width": BAR_LABEL, "rows": rows}


@bp.app_template_filter("analytics_time")
def _analytics_time(value: str | None) -> str:
    return display_time(value)
