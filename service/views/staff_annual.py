"""Table 三 of the annual report for the disclosure office (/staff/applications/table):
the page in the national layout, and the .xlsx and .docx to paste into the year's report."""
from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, current_app, render_template, request

from .. import annual_table, applications
from ..db import get_db
from ..reports import TABLE3_COLS, TABLE3_ROWS
from ..text import is_number
from .staff_auth import role_required

bp = Blueprint("annual", __name__, url_prefix="/staff")

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
_CN = annual_table.CN


def today() -> date:
    """Today: ``app.config["TODAY"]`` when set (tests, demonstrations)."""
    return current_app.config.get("TODAY") or date.today()


_PARTIAL_NOTE = "（区分处理的，只计这一情形，不计其他情形）"


def _table_rows(table: annual_table.Table3) -> list[dict[str, Any]]:
    """Table 三 as printed in the national format: each row's header cells (with their spans
    and ids, for ``headers``) and its seven numbers."""
    values = {row: printed[1:] for row, printed in zip(annual_table.ROWS, annual_table.layout(table)[3:])}
    heading = TABLE3_ROWS[annual_table.OUTCOMES[0]].split("·")[0]
    groups = annual_table.outcome_groups()
    out: list[dict[str, Any]] = []

    def add(key: str, heads: list[dict[str, Any]], ids: list[str]) -> None:
        out.append({"key": key, "heads": heads, "ids": " ".join(ids),
                    "cells": [{"value": v, "col": c} for v, c in zip(values[key], annual_table.COLS)]})

    add("new", [{"text": f"一、{TABLE3_ROWS['new']}", "colspan": 3, "id": "r-new"}], ["r-new"])
    add("carried_in", [{"text": f"二、{TABLE3_ROWS['carried_in']}", "colspan": 3, "id": "r-carried_in"}],
        ["r-carried_in"])
    first = True
    for g_index, group in enumerate(groups):
        for i_index, item in enumerate(group["items"]):
            heads: list[dict[str, Any]] = []
            ids = ["r-outcome"]
            if first:
                heads.append({"text": f"三、{heading}", "rowspan": len(annual_table.OUTCOMES) + 1, "id": "r-outcome"})
                first = False
            name = f"（{group['number']}）{group['name']}"
            if not item["item"]:
                note = _PARTIAL_NOTE if item["key"] == "partial" else ""
                heads.append({"text": name + note, "colspan": 2, "id": f"r-{item['key']}"})
            else:
                if i_index == 0:
                    heads.append({"text": name, "rowspan": len(group["items"]), "id": f"r-group-{g_index}"})
                heads.append({"text": item["text"], "id": f"r-{item['key']}"})
                ids.append(f"r-group-{g_index}")
            ids.append(f"r-{item['key']}")
            add(item["key"], heads, ids)
    add("outcome_total", [{"text": f"（{_CN[len(groups)]}）总计", "colspan": 2, "id": "r-outcome_total"}],
        ["r-outcome", "r-outcome_total"])
    add("carried_out", [{"text": f"四、{TABLE3_ROWS['carried_out']}", "colspan": 3, "id": "r-carried_out"}],
        ["r-carried_out"])
    for row in out:
        for cell in row["cells"]:
            col = cell["col"]
            org = " c-org" if col in annual_table.APPLICANT_COLS[1:] else ""
            cell["headers"] = f"{row['ids']} c-applicant{org} c-{col}"
    return out


def _year() -> int | None:
    """The ``year`` argument: this year when missing, None when not a plausible year."""
    raw = request.args.get("year", "").strip()
    if not raw:
        return today().year
    return int(raw) if is_number(raw) and 2000 <= int(raw) <= 2100 else None


BAD_YEAR = "年份无效，请选择2000年至2100年之间的年份。"


def years_around(year: int | None) -> list[int]:
    """The years offered in a year selector: this year back to 2021, and ``year``."""
    years = list(range(today().year, 2020, -1))
    if year is not None and year not in years:
        years = sorted({*years, year}, reverse=True)
    return years


@bp.get("/applications/table")
@role_required("reviewer")
def annual():  # type: ignore[no-untyped-def]
    """Table 三 of the annual report for one year, computed from the applications."""
    year = _year()
    years = years_around(year)
    if year is None:
        return render_template("staff/annual_table.html", year=None, years=years, error=BAD_YEAR, rows=[],
                               problems=[]), 400
    table = applications.table_for_year(get_db(), year)
    return render_template(
        "staff/annual_table.html", year=year, years=years, error=None, rows=_table_rows(table),
        problems=table.problems, cols=TABLE3_COLS, applicant_cols=annual_table.APPLICANT_COLS,
        header_top=annual_table.HEADER_TOP[1], header_org=annual_table.HEADER_MID[2], note=annual_table.NOTE)


def office_file(data: bytes, kind: str, ascii_name: str, name: str) -> Response:
    """A .xlsx or .docx download, named in Chinese for browsers that read ``filename*`` and
    in ASCII for those that do not."""
    response = Response(data, mimetype=XLSX if kind == "xlsx" else DOCX)
    response.headers["Content-Disposition"] = (f"attachment; filename=\"{ascii_name}.{kind}\"; "
                                               f"filename*=UTF-8''{quote(f'{name}.{kind}')}")
    return response


def _download(kind: str):  # type: ignore[no-untyped-def]
    year = _year()
    if year is None:
        return render_template("error.html", status=400, message=BAD_YEAR), 400
    table = applications.table_for_year(get_db(), year)
    data = annual_table.to_xlsx(table) if kind == "xlsx" else annual_table.to_docx(table)
    return office_file(data, kind, f"table3-{year}", f"{year}年收到和处理政府信息公开申请情况（表三）")


@bp.get("/applications/table.xlsx")
@role_required("reviewer")
def annual_xlsx():  # type: ignore[no-untyped-def]
    """Table 三 as an Excel workbook."""
    return _download("xlsx")


@bp.get("/applications/table.docx")
@role_required("reviewer")
def annual_docx():  # type: ignore[no-untyped-def]
    """Table 三 as a Word document."""
    return _download("docx")
