"""Administrative review and litigation over disclosure applications (/staff/remedies):
reviewers record each case and its result; table 四 of the annual report for a year, as a
page and as the .xlsx and .docx to paste into the report."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, g, redirect, render_template, request, url_for

from .. import remedies
from ..db import get_db
from ..text import is_number
from ..tickets import clean_code
from .staff_annual import BAD_YEAR, _year, office_file, today, years_around
from .staff_auth import role_required

bp = Blueprint("remedies", __name__, url_prefix="/staff")

FIELDS = ("kind", "filed_on", "result", "decided_on", "note")


def _rows(table: remedies.Table4) -> dict[str, Any]:
    """Table 四 for the template: the printed cells by row, each with its spans."""
    grid = remedies.printed(table)
    rows: list[list[Any]] = [[] for _ in range(grid.n_rows)]
    for cell in sorted(grid.cells, key=lambda c: (c.row, c.col)):
        rows[cell.row].append(cell)
    return {"head": rows[:-1], "body": rows[-1]}


def _page(year: int | None, error: str | None = None, form: dict[str, Any] | None = None, status: int = 200):  # type: ignore[no-untyped-def]
    db = get_db()
    table = remedies.table_for_year(db, year) if year else None
    ticket_id = request.args.get("ticket", "")
    ticket_code = ""
    if is_number(ticket_id):
        row = db.execute("select code from tickets where id = ?", [int(ticket_id)]).fetchone()
        ticket_code = row[0] if row else ""
    return render_template(
        "staff/remedies.html", year=year, years=years_around(year), error=error, table=table,
        grid=_rows(table) if table else None, cases=remedies.listing(db), kinds=remedies.KINDS,
        results=remedies.RESULTS, form=form or {"ticket": ticket_code}, today=today().isoformat()), status


@bp.get("/remedies")
@role_required("reviewer")
def index():  # type: ignore[no-untyped-def]
    """Recorded review and litigation cases, the form to record one, and table 四 for a year."""
    year = _year()
    if year is None:
        return _page(None, BAD_YEAR, status=400)
    return _page(year)


def _fields() -> dict[str, str]:
    """The case's fields as sent; no result chosen means 尚未审结."""
    fields = {k: request.form.get(k, "") for k in FIELDS}
    fields["result"] = fields["result"] or "pending"
    return fields


@bp.post("/remedies")
@role_required("reviewer")
def create():  # type: ignore[no-untyped-def]
    """Record a case for the application whose 工单编号 is given."""
    db = get_db()
    form = {"ticket": request.form.get("ticket", ""), **_fields()}
    code = clean_code(form["ticket"])
    row = db.execute("select id from tickets where code = ?", [code]).fetchone() if code else None
    if row is None:
        return _page(today().year, "未找到该工单编号，请核对后重新填写。", form, 400)
    try:
        remedies.record(db, row[0], g.user, today=today(), **_fields())
    except remedies.RemedyError as exc:
        return _page(today().year, str(exc), form, 400)
    flash("已登记。")
    return redirect(url_for("remedies.index"))


@bp.get("/remedies/<int:remedy_id>")
@role_required("reviewer")
def edit(remedy_id: int):  # type: ignore[no-untyped-def]
    """The form to change one case (record its result once decided)."""
    try:
        case = remedies.get(get_db(), remedy_id)
    except remedies.RemedyError as exc:
        return render_template("error.html", status=404, message=str(exc)), 404
    return render_template("staff/remedies_edit.html", case=case, form=case, error=None, kinds=remedies.KINDS,
                           results=remedies.RESULTS)


@bp.post("/remedies/<int:remedy_id>")
@role_required("reviewer")
def update(remedy_id: int):  # type: ignore[no-untyped-def]
    """Save a changed case."""
    db = get_db()
    try:
        case = remedies.get(db, remedy_id)
    except remedies.RemedyError as exc:
        return render_template("error.html", status=404, message=str(exc)), 404
    try:
        remedies.update(db, remedy_id, g.user, today=today(), **_fields())
    except remedies.RemedyError as exc:
        return render_template("staff/remedies_edit.html", case=case, form=_fields(), error=str(exc),
                               kinds=remedies.KINDS, results=remedies.RESULTS), 400
    flash("已保存。")
    return redirect(url_for("remedies.index"))


@bp.post("/remedies/<int:remedy_id>/delete")
@role_required("reviewer")
def delete(remedy_id: int):  # type: ignore[no-untyped-def]
    """Withdraw a case recorded in error, once the reviewer has ticked the confirmation."""
    db = get_db()
    try:
        case = remedies.get(db, remedy_id)
    except remedies.RemedyError as exc:
        return render_template("error.html", status=404, message=str(exc)), 404
    if request.form.get("confirm") != "yes":
        return render_template("staff/remedies_edit.html", case=case, form=case, kinds=remedies.KINDS,
                               results=remedies.RESULTS, error="请勾选“确认撤销”后再撤销登记。"), 400
    remedies.remove(db, remedy_id, g.user)
    flash("已撤销该案件的登记。")
    return redirect(url_for("remedies.index"))


def _download(kind: str):  # type: ignore[no-untyped-def]
    year = _year()
    if year is None:
        return render_template("error.html", status=400, message=BAD_YEAR), 400
    table = remedies.table_for_year(get_db(), year)
    data = remedies.to_xlsx(table) if kind == "xlsx" else remedies.to_docx(table)
    return office_file(data, kind, f"table4-{year}", f"{year}年政府信息公开行政复议、行政诉讼情况（表四）")


@bp.get("/remedies/table.xlsx")
@role_required("reviewer")
def table_xlsx():  # type: ignore[no-untyped-def]
    """Table 四 as an Excel workbook."""
    return _download("xlsx")


@bp.get("/remedies/table.docx")
@role_required("reviewer")
def table_docx():  # type: ignore[no-untyped-def]
    """Table 四 as a Word document."""
    return _download("docx")
