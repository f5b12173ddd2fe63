"""The curators' side of the staff workspace: importing annual reports."""
from __future__ import annotations

import os
import re
import secrets
import time
from pathlib import Path

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for

from .accounts import audit
from .auth import role_required
from .db import get_db
from .knowledge import import_report as store_import
from .knowledge import report_summary
from .reports import ReportFormatError, parse_report

bp = Blueprint("curate", __name__, url_prefix="/staff")

REPORT_SUFFIXES = (".docx", ".html", ".htm", ".txt")
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
UPLOAD_TTL_SECONDS = 24 * 3600


def _upload_dir() -> Path:
    path = Path(current_app.instance_path) / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    # Forget previews nobody confirmed.
    for old in path.iterdir():
        if time.time() - old.stat().st_mtime > UPLOAD_TTL_SECONDS:
            old.unlink(missing_ok=True)
    return path


def _overrides() -> tuple[str | None, int | None, str | None]:
    agency = (request.form.get("agency") or "").strip() or None
    year_text = (request.form.get("year") or "").strip()
    if agency and len(agency) > 40:
        return None, None, "机关名称过长。"
    if year_text and not (year_text.isdigit() and 1990 <= int(year_text) <= 2100):
        return None, None, "年度应为1990至2100之间的四位数字。"
    return agency, int(year_text) if year_text else None, None


@bp.route("/reports/import", methods=["GET", "POST"])
@role_required("curator")
def import_report():  # type: ignore[no-untyped-def]
    """Upload a report and see what would be imported, before confirming."""
    if request.method == "GET":
        return render_template("staff/import_report.html")
    upload = request.files.get("file")
    agency, year, error = _overrides()
    if error is None and (upload is None or not upload.filename):
        error = "请选择要导入的报告文件。"
    suffix = Path(upload.filename).suffix.lower() if upload and upload.filename else ""
    if error is None and suffix not in REPORT_SUFFIXES:
        error = "只支持 .docx、.html 或 .txt 格式的年度报告。"
    if error is None:
        data = upload.read()  # type: ignore[union-attr]
        try:
            report = parse_report(data, f"upload{suffix}", agency=agency, year=year)
        except ReportFormatError as exc:
            error = f"无法导入：{exc}"
    if error is not None:
        return render_template("staff/import_report.html", error=error), 400
    token = secrets.token_urlsafe(24)
    (_upload_dir() / f"{token}{suffix}").write_bytes(data)
    exists = get_db().execute("select 1 from reports where agency = ? and year = ?",
                              [report.agency, report.year]).fetchone() is not None
    return render_template("staff/import_report.html", preview=report_summary(report), report=report,
                           token=token, suffix=suffix, agency=agency or "", year=year or "",
                           filename=upload.filename, replaces=exists)  # type: ignore[union-attr]


@bp.post("/reports/import/confirm")
@role_required("curator")
def confirm_import():  # type: ignore[no-untyped-def]
    """Import the previewed file in one transaction."""
    token = request.form.get("token", "")
    suffix = request.form.get("suffix", "")
    agency, year, error = _overrides()
    path = _upload_dir() / f"{token}{suffix}"
    if error is None and (not _TOKEN_RE.match(token) or suffix not in REPORT_SUFFIXES or not path.exists()):
        error = "预览已过期或无效，请重新上传文件。"
    if error is not None:
        return render_template("staff/import_report.html", error=error), 400
    filename = request.form.get("filename", path.name)[:200]
    try:
        report, report_id, replaced = store_import(get_db(), path.read_bytes(), filename, agency=agency, year=year)
    except ReportFormatError as exc:
        return render_template("staff/import_report.html", error=f"无法导入：{exc}"), 400
    finally:
        path.unlink(missing_ok=True)
    audit(get_db(), g.user, "replace_report" if replaced else "import_report", f"report:{report_id}",
          after={"agency": report.agency, "year": report.year, "file": filename,
                 "facts": len(report.facts), "problems": report.problems})
    flash(("已替换" if replaced else "已导入") + f"{report.year}年{report.agency}的年度报告。")
    return redirect(f"/reports/{report_id}")
