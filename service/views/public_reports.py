"""The citizens' report pages: the list of annual reports held and one report's page."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, render_template

from ..db import get_db
from ..report_pages import list_reports, load_report

bp = Blueprint("reports", __name__)


def _site() -> dict[str, str]:
    return {"agency": current_app.config["HOME_AGENCY"], "product": current_app.config["PRODUCT_NAME"]}


@bp.get("/reports")
def index():  # type: ignore[no-untyped-def]
    """The list of annual reports held."""
    groups = list_reports(get_db(), current_app.config["HOME_AGENCY"])
    return render_template("reports.html", groups=groups, **_site())


@bp.get("/reports/<int:report_id>")
def show(report_id: int):  # type: ignore[no-untyped-def]
    """One report: its tables, the outcomes chart and its narrative."""
    report = load_report(get_db(), report_id)
    if report is None:
        abort(404)
    return render_template("report.html", report=report, **_site())
