"""The year's annual report drafted (/staff/annual-report): table 二's form with last year's
figures beside it, each section's paragraphs, tables 三 and 四 as computed, the desk's own
figures, the importer's checks, and the whole report as an A4 .docx."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for

from .. import annual_report, applications, knowledge, remedies
from ..db import get_db
from .staff_annual import BAD_YEAR, _year, office_file, years_around
from .staff_auth import role_required

bp = Blueprint("report", __name__, url_prefix="/staff")


def _draft_context(year: int) -> dict[str, Any]:
    """Everything the draft page shows for ``year``: the saved draft, last year's table 二,
    tables 三 and 四 as computed, the desk's figures and the checks."""
    db = get_db()
    agency = knowledge.read_agency(Path(current_app.config["KNOWLEDGE_DIR"])).get("agency", "")
    draft = annual_report.load(db, year, agency)
    previous = annual_report.load(db, year - 1) if annual_report.has_figures(db, year - 1) else None
    table3 = applications.table_for_year(db, year)
    table4 = remedies.table_for_year(db, year)
    desk = annual_report.desk_figures(db, year, _calendar())
    problems = annual_report.check(draft, table3, table4)
    if not problems:  # the tables agree: read the document back as the importer would
        data = annual_report.to_docx(draft, table3, table4, desk)
        problems = annual_report.reimport_problems(data, draft, table3, table4)
    return {"draft": draft, "previous": previous, "table3": table3, "table4": table4, "desk": desk,
            "desk_paragraph": annual_report.desk_paragraph(desk), "problems": problems}


def _calendar():  # type: ignore[no-untyped-def]
    """The working-day calendar, or None when it cannot be read (the mean is then left out)."""
    try:
        return applications.default_calendar()
    except Exception:  # a broken holidays file must not stop the draft; the figure is left out
        return None


def _report_page(year: int | None, error: str | None = None, form: dict[str, str] | None = None,
                 status: int = 200):  # type: ignore[no-untyped-def]
    context = _draft_context(year) if year else {}
    return render_template("staff/report_draft.html", year=year, years=years_around(year), error=error, form=form,
                           fields=annual_report.TABLE2_FIELDS, field_name=annual_report.field_name,
                           label=annual_report.label, texts=annual_report.TEXTS, **context), status


@bp.get("/annual-report")
@role_required("reviewer")
def draft():  # type: ignore[no-untyped-def]
    """The year's annual report draft: table 二's form (last year's beside it), the texts of
    each section, tables 三 and 四 as computed, the desk's figures and the checks."""
    year = _year()
    if year is None:
        return _report_page(None, BAD_YEAR, status=400)
    return _report_page(year)


@bp.post("/annual-report")
@role_required("reviewer")
def save():  # type: ignore[no-untyped-def]
    """Save the draft of the year given in the query (agency, table 二, texts)."""
    year = _year()
    if year is None:
        return _report_page(None, BAD_YEAR, status=400)
    form = {k: v for k, v in request.form.items() if k != "csrf_token"}
    try:
        figures = annual_report.parse_figures(form)
        texts = {key: form.get(f"text-{key}", "") for key in annual_report.TEXTS}
        annual_report.save(get_db(), annual_report.Draft(year, form.get("agency", ""), figures, texts), g.user)
    except annual_report.DraftError as exc:
        return _report_page(year, str(exc), form, 400)
    flash("年度报告草稿已保存。")
    return redirect(url_for("report.draft", year=year))


@bp.get("/annual-report.docx")
@role_required("reviewer")
def download():  # type: ignore[no-untyped-def]
    """The drafted annual report as a Word document (A4)."""
    year = _year()
    if year is None:
        return render_template("error.html", status=400, message=BAD_YEAR), 400
    c = _draft_context(year)
    data = annual_report.to_docx(c["draft"], c["table3"], c["table4"], c["desk"])
    return office_file(data, "docx", f"annual-report-{year}", f"{annual_report.title(c['draft'])}（草稿）")
