"""The curators' side of the staff workspace: annual reports, the FAQ, synonyms and words."""
from __future__ import annotations

import re
import secrets
import time
from pathlib import Path

from flask import (Blueprint, Response, abort, current_app, flash, g, redirect, render_template,
                   request, url_for)

from .. import faq, inbox, uploads
from ..accounts import audit
from .staff_auth import role_required
from ..db import current_desk, get_db
from ..knowledge import report_summary, save_report
from ..reports import Report, ReportFormatError
from ..storage import immediate
from ..text import is_number
from ..tickets import display_time

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


def _parse_limits() -> uploads.Limits:
    """The resources one upload's parse may use (config ``UPLOAD_PARSE_*``, else the defaults)."""
    default, config = uploads.Limits(), current_app.config
    return uploads.Limits(memory_mb=int(config.get("UPLOAD_PARSE_MEMORY_MB", default.memory_mb)),
                          cpu_seconds=int(config.get("UPLOAD_PARSE_CPU_SECONDS", default.cpu_seconds)),
                          wall_seconds=float(config.get("UPLOAD_PARSE_WALL_SECONDS", default.wall_seconds)))


def _parse_lock() -> Path:
    """The lock file that lets one upload at a time be parsed on this host."""
    return Path(current_app.instance_path) / "upload-parse.lock"


def _parse_report(data: bytes, suffix: str, agency: str | None, year: int | None) -> Report:
    """Parse an uploaded report in a limited child process (see :mod:`service.uploads`)."""
    return uploads.parse_report(data, f"upload{suffix}", agency=agency, year=year,
                                lock_path=_parse_lock(), limits=_parse_limits())


def _parse_faq(data: bytes, suffix: str) -> list[faq.ImportRow]:
    """Parse an uploaded FAQ table in a limited child process."""
    return uploads.parse_faq(data, f"upload{suffix}", lock_path=_parse_lock(), limits=_parse_limits())


def _busy(template: str, exc: uploads.ParserBusy):  # type: ignore[no-untyped-def]
    """Another upload is being parsed: ask to retry, without holding this worker."""
    return render_template(template, error=str(exc)), 429, {"Retry-After": "30"}


def _overrides() -> tuple[str | None, int | None, str | None]:
    agency = (request.form.get("agency") or "").strip() or None
    year_text = (request.form.get("year") or "").strip()
    if agency and len(agency) > 40:
        return None, None, "机关名称过长。"
    if year_text and not (is_number(year_text) and 1990 <= int(year_text) <= 2100):
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
            report = _parse_report(data, suffix, agency, year)
        except uploads.ParserBusy as exc:
            return _busy("staff/import_report.html", exc)
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
    # Parse first, outside any transaction: a large report takes seconds, and the
    # database's write lock must never wait on it (a citizen's ticket would).
    try:
        report = _parse_report(path.read_bytes(), suffix, agency, year)
    except uploads.ParserBusy as exc:
        return _busy("staff/import_report.html", exc)  # the preview stays for a retry
    except ReportFormatError as exc:
        path.unlink(missing_ok=True)
        return render_template("staff/import_report.html", error=f"无法导入：{exc}"), 400
    with immediate(get_db()):  # the report and its audit row together, in one short transaction
        report_id, replaced = save_report(get_db(), report, filename)
        audit(get_db(), g.user, "replace_report" if replaced else "import_report", f"report:{report_id}",
              after={"agency": report.agency, "year": report.year, "file": filename,
                     "facts": len(report.facts), "problems": report.problems})
    path.unlink(missing_ok=True)
    flash(("已替换" if replaced else "已导入") + f"{report.year}年{report.agency}的年度报告。")
    return redirect(f"/reports/{report_id}")


# -- FAQ entries ------------------------------------------------------------------

FAQ_SUFFIXES = (".xlsx", ".csv")
_ENTRY_FIELDS = ("key", "question", "answer", "category", "source", "status")


def _entry_page(form: dict, status: int = 200, **context):  # type: ignore[no-untyped-def]
    """The create/edit page, with the categories to choose from."""
    context.setdefault("errors", {})
    entry = context.get("entry")
    history = faq.entry_history(get_db(), entry["id"]) if entry else []
    return render_template("staff/faq_edit.html", form=form, categories=faq.categories(get_db()),
                           statuses=faq.STATUS_NAMES, history=history, display_time=display_time,
                           **context), status


def _entry_or_404(entry_id: int) -> dict:
    try:
        return faq.get_entry(get_db(), entry_id)
    except faq.EntryNotFound:
        abort(404)


@bp.get("/faq")
@role_required("curator")
def faq_index():  # type: ignore[no-untyped-def]
    """The FAQ list: search, filter by category and status, 50 a page."""
    q = request.args.get("q", "").strip()[:100]
    category = request.args.get("category", "")
    status = request.args.get("status", "")
    page = request.args.get("page", 1, type=int) or 1
    rows, total = faq.list_entries(get_db(), q=q, category=category, status=status, page=page)
    pages = max(1, -(-total // faq.PAGE_SIZE))
    return render_template("staff/faq_list.html", rows=rows, total=total, page=page, pages=pages,
                           q=q, category=category, status=status, categories=faq.categories(get_db()),
                           statuses=faq.STATUS_NAMES)


@bp.route("/faq/new", methods=["GET", "POST"])
@role_required("curator")
def faq_create():  # type: ignore[no-untyped-def]
    """Create an entry; alternates are added on its page afterwards."""
    if request.method == "GET":
        return _entry_page({"status": "draft"})
    # A draft started from the curators' inbox carries the missed questions it answers.
    try:
        inbox_keys = inbox.clean_keys(request.form.getlist("inbox_key")) if request.form.getlist("inbox_key") else []
    except inbox.InboxError:
        inbox_keys = []
    try:
        entry_id = faq.create_entry(get_db(), g.user, request.form)
    except faq.InvalidEntry as exc:
        return _entry_page(request.form.to_dict(), 400, errors=exc.errors, inbox_keys=inbox_keys)
    if inbox_keys:
        with immediate(get_db()):
            inbox.mark(get_db(), inbox_keys, "draft", g.user, entry_id)
    flash("已创建条目。状态为“发布”的条目即时生效；可以继续添加相似问法。")
    return redirect(url_for("curate.faq_update", entry_id=entry_id))


@bp.route("/faq/<int:entry_id>", methods=["GET", "POST"])
@role_required("curator")
def faq_update(entry_id: int):  # type: ignore[no-untyped-def]
    """Show an entry and save edits made on the version the form was opened on."""
    entry = _entry_or_404(entry_id)
    if request.method == "GET":
        return _entry_page(entry, entry=entry)
    try:
        changed = faq.update_entry(get_db(), g.user, entry_id, request.form, request.form.get("version", ""))
    except faq.StaleEdit as exc:
        submitted = {k: request.form.get(k, "") for k in _ENTRY_FIELDS}
        return _entry_page(exc.current, 409, entry=exc.current, stale=str(exc), submitted=submitted)
    except faq.InvalidEntry as exc:
        return _entry_page(request.form.to_dict(), 400, entry=entry, errors=exc.errors)
    flash("已保存，群众提问即时生效。" if changed else "内容没有变化，未保存。")
    return redirect(url_for("curate.faq_update", entry_id=entry_id))


@bp.post("/faq/<int:entry_id>/archive")
@role_required("curator")
def faq_archive(entry_id: int):  # type: ignore[no-untyped-def]
    """Archive an entry: the chat no longer answers with it."""
    _entry_or_404(entry_id)
    faq.set_status(get_db(), g.user, entry_id, "archived")
    flash("已归档，群众提问将不再使用该条目。")
    return redirect(url_for("curate.faq_update", entry_id=entry_id))


@bp.post("/faq/<int:entry_id>/restore")
@role_required("curator")
def faq_restore(entry_id: int):  # type: ignore[no-untyped-def]
    """Restore an archived (or draft) entry as published."""
    _entry_or_404(entry_id)
    faq.set_status(get_db(), g.user, entry_id, "published")
    flash("已恢复为发布状态，即时生效。")
    return redirect(url_for("curate.faq_update", entry_id=entry_id))


@bp.post("/faq/<int:entry_id>/versions/<int:version>/restore")
@role_required("curator")
def faq_restore_version(entry_id: int, version: int):  # type: ignore[no-untyped-def]
    """Make an earlier version the entry's content again (a new version; the chat answers from it at once)."""
    entry = _entry_or_404(entry_id)
    try:
        new_version = faq.restore_version(get_db(), g.user, entry_id, version, request.form.get("version", ""))
    except faq.StaleEdit as exc:
        return _entry_page(exc.current, 409, entry=exc.current, history_error=str(exc))
    except faq.FaqError as exc:
        return _entry_page(entry, 400, entry=entry, history_error=str(exc))
    flash(f"已恢复为第 {version} 版的内容（保存为第 {new_version} 版），群众提问即时生效。")
    return redirect(url_for("curate.faq_update", entry_id=entry_id) + "#history")


@bp.post("/faq/<int:entry_id>/alternates")
@role_required("curator")
def alternate_add(entry_id: int):  # type: ignore[no-untyped-def]
    """Add one alternate phrasing."""
    entry = _entry_or_404(entry_id)
    try:
        warnings = faq.add_alternate(get_db(), g.user, entry_id, request.form.get("text", ""))
    except faq.FaqError as exc:
        return _entry_page(entry, 400, entry=entry, alternate_error=str(exc),
                           alternate_text=request.form.get("text", ""))
    flash("已添加相似问法。")
    for warning in warnings:
        flash(warning)
    return redirect(url_for("curate.faq_update", entry_id=entry_id) + "#alternates")


@bp.post("/faq/<int:entry_id>/alternates/<int:alternate_id>/delete")
@role_required("curator")
def alternate_remove(entry_id: int, alternate_id: int):  # type: ignore[no-untyped-def]
    """Remove one alternate phrasing."""
    try:
        faq.remove_alternate(get_db(), g.user, entry_id, alternate_id)
    except faq.EntryNotFound:
        abort(404)
    flash("已删除相似问法。")
    return redirect(url_for("curate.faq_update", entry_id=entry_id) + "#alternates")


@bp.get("/faq/test")
@role_required("curator")
def faq_test():  # type: ignore[no-untyped-def]
    """What the chat would answer, and why: normalised form, tokens, candidates, decision."""
    question = request.args.get("q", "").strip()[:current_app.config["MAX_QUESTION_CHARS"]]
    result = faq.explain_question(current_desk(), question) if question else None
    return render_template("staff/test_pane.html", question=question, result=result)


# -- FAQ import and export --------------------------------------------------------


def _download(data: bytes, filename: str, mimetype: str) -> Response:
    response = Response(data, mimetype=mimetype)
    response.headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{filename}"
    return response


@bp.get("/faq/export.xlsx")
@role_required("curator")
def faq_export_xlsx():  # type: ignore[no-untyped-def]
    """The whole FAQ as an Excel workbook."""
    return _download(faq.export_xlsx(get_db()), "faq.xlsx",
                     "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


@bp.get("/faq/export.csv")
@role_required("curator")
def faq_export_csv():  # type: ignore[no-untyped-def]
    """The whole FAQ as CSV (UTF-8 with BOM)."""
    return _download(faq.export_csv(get_db()), "faq.csv", "text/csv; charset=utf-8")


@bp.route("/faq/import", methods=["GET", "POST"])
@role_required("curator")
def faq_import():  # type: ignore[no-untyped-def]
    """Upload a whole-FAQ file and see what would be added, changed and archived."""
    if request.method == "GET":
        return render_template("staff/faq_import.html")
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return render_template("staff/faq_import.html", error="请选择要导入的文件。"), 400
    suffix = Path(upload.filename).suffix.lower()
    data = upload.read()
    try:
        if suffix not in FAQ_SUFFIXES:
            raise faq.ImportFormatError("只支持 .xlsx（Excel）或 .csv 格式的文件。")
        plan = faq.plan_import(get_db(), _parse_faq(data, suffix))
        faq.describe_changes(plan)
    except uploads.ParserBusy as exc:
        return _busy("staff/faq_import.html", exc)
    except faq.ImportFormatError as exc:
        return render_template("staff/faq_import.html", error=f"无法导入，未做任何修改：{exc}"), 400
    token = secrets.token_urlsafe(24)
    if plan.can_apply:  # kept only for a confirm
        (_upload_dir() / f"{token}{suffix}").write_bytes(data)
    return render_template("staff/faq_import.html", plan=plan, token=token, suffix=suffix, statuses=faq.STATUS_NAMES,
                           filename=upload.filename[:200])


@bp.post("/faq/import/confirm")
@role_required("curator")
def faq_import_confirm():  # type: ignore[no-untyped-def]
    """Apply the previewed file in one transaction."""
    token, suffix = request.form.get("token", ""), request.form.get("suffix", "")
    path = _upload_dir() / f"{token}{suffix}"
    if not _TOKEN_RE.match(token) or suffix not in FAQ_SUFFIXES or not path.exists():
        return render_template("staff/faq_import.html", error="预览已过期或无效，请重新上传文件。"), 400
    filename = request.form.get("filename", "")[:200]
    # Archiving what the file lacks is a separate, explicit choice; the box carries the
    # count the curator was shown, so a different count is refused with the stale preview.
    archive_count = request.form.get("archive_missing", "").strip()
    if archive_count and not is_number(archive_count):
        return render_template("staff/faq_import.html", error="归档选项无效，请重新上传文件并核对预览。"), 400
    try:
        rows = _parse_faq(path.read_bytes(), suffix)  # outside the transaction apply_import opens
    except uploads.ParserBusy as exc:
        return _busy("staff/faq_import.html", exc)  # the preview stays for a retry
    except faq.ImportFormatError as exc:
        path.unlink(missing_ok=True)
        return render_template("staff/faq_import.html", error=str(exc)), 400
    try:
        plan = faq.apply_import(get_db(), g.user, rows, expected=request.form.get("fingerprint", ""),
                                filename=filename, archive_missing=bool(archive_count),
                                archive_count=int(archive_count) if archive_count else None)
    except faq.FaqError as exc:
        return render_template("staff/faq_import.html", error=str(exc)), 400
    finally:
        path.unlink(missing_ok=True)
    if plan.has_changes:
        kept = f"；文件中没有的{len(plan.missing)}条保留不变" if plan.missing and not plan.archived else ""
        flash(f"导入完成：新增{len(plan.added)}条，修改{len(plan.changed)}条，归档{len(plan.archived)}条{kept}，即时生效。")
    else:
        flash("文件与问答库一致，没有需要导入的变化。")
    return redirect(url_for("curate.faq_index"))


# -- synonyms and dictionary words ------------------------------------------------


def _lexicon_page(error: str | None = None, status: int = 200, **form: str):  # type: ignore[no-untyped-def]
    db = get_db()
    return render_template("staff/lexicon.html", synonyms=faq.list_synonyms(db), words=faq.list_words(db),
                           paraphrases=faq.list_paraphrases(db), sections=faq.PARAPHRASE_SECTIONS,
                           error=error, form=form), status


@bp.get("/lexicon")
@role_required("curator")
def lexicon():  # type: ignore[no-untyped-def]
    """Synonym pairs and dictionary words."""
    return _lexicon_page()


@bp.post("/lexicon/synonyms")
@role_required("curator")
def synonym_add():  # type: ignore[no-untyped-def]
    """Add a synonym pair (term → canonical)."""
    term, canonical = request.form.get("term", ""), request.form.get("canonical", "")
    try:
        stored = faq.add_synonym(get_db(), g.user, term, canonical)
    except faq.FaqError as exc:
        return _lexicon_page(str(exc), 400, term=term, canonical=canonical)
    flash(f"已添加同义词“{stored}”，即时生效。")
    return redirect(url_for("curate.lexicon"))


@bp.post("/lexicon/synonyms/delete")
@role_required("curator")
def synonym_remove():  # type: ignore[no-untyped-def]
    """Remove a synonym pair."""
    try:
        faq.remove_synonym(get_db(), g.user, request.form.get("term", ""))
    except faq.FaqError as exc:
        return _lexicon_page(str(exc), 400)
    flash("已删除同义词映射，即时生效。")
    return redirect(url_for("curate.lexicon"))


@bp.post("/lexicon/paraphrases")
@role_required("curator")
def paraphrase_add():  # type: ignore[no-untyped-def]
    """Add a paraphrase (a citizen's wording → the knowledge's)."""
    variant, standard = request.form.get("variant", ""), request.form.get("standard", "")
    try:
        stored = faq.add_paraphrase(get_db(), g.user, variant, standard, request.form.get("section", "curated"))
    except faq.FaqError as exc:
        return _lexicon_page(str(exc), 400, variant=variant, standard=standard)
    flash(f"已添加说法“{stored}”，即时生效。")
    return redirect(url_for("curate.lexicon"))


@bp.post("/lexicon/paraphrases/delete")
@role_required("curator")
def paraphrase_remove():  # type: ignore[no-untyped-def]
    """Remove a paraphrase."""
    try:
        faq.remove_paraphrase(get_db(), g.user, request.form.get("variant", ""))
    except faq.FaqError as exc:
        return _lexicon_page(str(exc), 400)
    flash("已删除该说法，即时生效。")
    return redirect(url_for("curate.lexicon"))


@bp.post("/lexicon/words")
@role_required("curator")
def word_add():  # type: ignore[no-untyped-def]
    """Add a dictionary word, with an optional frequency."""
    word, freq = request.form.get("word", ""), request.form.get("freq", "")
    try:
        stored = faq.add_word(get_db(), g.user, word, freq)
    except faq.FaqError as exc:
        return _lexicon_page(str(exc), 400, word=word, freq=freq)
    flash(f"已添加词典词“{stored}”，即时生效。")
    return redirect(url_for("curate.lexicon"))


@bp.post("/lexicon/words/delete")
@role_required("curator")
def word_remove():  # type: ignore[no-untyped-def]
    """Remove a dictionary word."""
    try:
        faq.remove_word(get_db(), g.user, request.form.get("word", ""))
    except faq.FaqError as exc:
        return _lexicon_page(str(exc), 400)
    flash("已从词典中删除。")
    return redirect(url_for("curate.lexicon"))
