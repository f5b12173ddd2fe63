"""The curators' inbox (/staff/inbox): what the desk missed, and what citizens' picks suggest.

The view parses the period and the posted actions, calls :mod:`service.inbox` and
:mod:`service.faq`, and renders; see :mod:`service.inbox` for what counts as missed, how
questions are grouped and how a change's effect on the answered share is measured.
"""
from __future__ import annotations

import json
import re
from typing import Any, Callable

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for

from .. import analytics, faq, inbox
from ..db import current_desk, get_db, get_desk
from ..storage import immediate
from ..tickets import display_time, resolve_candidates
from .staff_auth import role_required

bp = Blueprint("inbox", __name__, url_prefix="/staff")

GROUPS_PER_PAGE = 25
_DIGITS = re.compile(r"[0-9]{1,9}")
# Candidates below this score were barely considered: listing them would only mislead.
CONSIDERED_FLOOR = 0.05


def _today():  # type: ignore[no-untyped-def]
    return current_app.config.get("TODAY") or analytics.beijing_today()


def _period(source: Any) -> tuple[analytics.Period | None, str | None, dict[str, str]]:
    form = {"from": source.get("from", ""), "to": source.get("to", "")}
    try:
        return analytics.parse_period(form["from"], form["to"], _today()), None, form
    except analytics.PeriodError as exc:
        return None, exc.message, form


def _number(raw: str | None) -> int | None:
    """A positive whole number as typed in ASCII digits (not ² or ١), else None."""
    return int(raw) if raw and _DIGITS.fullmatch(raw) else None


def _page() -> int:
    return max(1, _number(request.args.get("page")) or 1)


def _considered(desk: Any, question: str) -> dict[str, Any]:
    """What the desk does with a question now, and the entries its matcher considered."""
    reply = desk.ask(question)
    candidates = [c for c in resolve_candidates(get_db(), json.dumps(reply.candidates, ensure_ascii=False))
                  if c.get("entry_id") and (c.get("score") or 0) >= CONSIDERED_FLOOR][:3]
    return {"status": reply.status, "kind": reply.kind, "entry_id": reply.entry_id,
            "answer_entry": desk.entries.get(reply.entry_id, {}).get("question") if reply.entry_id else None,
            "candidates": candidates}


@bp.get("/inbox")
@role_required("curator")
def index():  # type: ignore[no-untyped-def]
    """Suggested phrasings, then the missed questions of a period grouped by similarity."""
    period, error, form = _period(request.args)
    if period is None:
        return render_template("staff/inbox.html", error=error, form=form, groups=[]), 400
    db, desk = get_db(), get_desk()
    weight = inbox.word_weight(desk.pipeline.topic_rarity)
    found = inbox.missed(db, period)
    groups = inbox.group(found.questions, desk.tokens, weight)
    page = _page()
    pages = max(1, -(-len(groups) // GROUPS_PER_PAGE))
    page = min(page, pages)
    shown = groups[(page - 1) * GROUPS_PER_PAGE:page * GROUPS_PER_PAGE]
    considered = [_considered(desk, g_.lead.question) for g_ in shown]
    form = {"from": period.start.isoformat(), "to": period.end.isoformat()}
    return render_template(
        "staff/inbox.html", error=None, form=form, period=period, groups=shown, considered=considered,
        total_groups=len(groups), found=found, page=page, pages=pages,
        suggestions=inbox.suggestions(db, period), changes=inbox.changes(db), sources=inbox.SOURCES,
        entries=_published_entries(), display_time=display_time)


def _published_entries() -> list[dict[str, Any]]:
    return [dict(r) for r in get_db().query(
        "select id, key, question, category from entries where status = 'published' order by category, id")]


def _back() -> Any:
    args = {k: v for k, v in (("from", request.form.get("from", "")), ("to", request.form.get("to", "")),
                              ("page", request.form.get("page", ""))) if v}
    return redirect(url_for("inbox.index", **args))


def _entry_id() -> int:
    """The posted entry, which must exist and be published (a phrasing of a draft or an
    archived entry would answer nothing); :class:`inbox.InboxError` otherwise."""
    entry_id = _number(request.form.get("entry_id"))
    if entry_id is None:
        raise inbox.InboxError("请选择要添加到的条目。")
    row = get_db().execute("select status from entries where id = ?", [entry_id]).fetchone()
    if row is None:
        raise inbox.InboxError("所选条目不存在，请刷新页面后重试。", 404)
    if row[0] != "published":
        raise inbox.InboxError("所选条目尚未发布或已归档，添加的问法不会生效；请先发布该条目，或选择其他条目。")
    return entry_id


def _add(entry_id: int, question: str) -> list[str]:
    """Add a phrasing to an entry unless the entry already asks it that way."""
    if faq.has_phrasing(get_db(), entry_id, question):
        flash(f"条目已有问法“{question}”，无需重复添加。")
        return []
    return faq.add_alternate(get_db(), g.user, entry_id, question)


def _measured(apply: Callable[[], list[str]], action: str, entry_id: int, question: str) -> list[str]:
    """Apply a change to the knowledge and record the answered share before and after it."""
    period, error, _ = _period(request.form)
    if period is None:
        raise inbox.InboxError(error or "统计期间无效。")
    db = get_db()
    sample = inbox.missed_for_replay(db, period)
    before = inbox.replay(db, period, lambda q: get_desk().ask(q).status, sample)
    warnings = apply()
    desk = current_desk()  # with the change, even while a large knowledge base updates in the background
    after = inbox.replay(db, period, lambda q: desk.ask(q).status, sample)
    with immediate(db):
        inbox.record_change(db, g.user, action, entry_id, question, period, before, after)
    flash(f"本期已回答比例（按现有知识重放本期未答问题估算）：{before.share:.1%} → {after.share:.1%}。")
    return warnings


def _phrasing(entry_id: int, question: str, keys: list[str], action: str, suggestion: str | None = None) -> list[str]:
    """Add a question as a phrasing of an entry, mark its missed wordings (and decide the
    suggested pair, if it came from one), measuring the answered share before and after."""
    def apply() -> list[str]:
        warnings = _add(entry_id, question)
        with immediate(get_db()):
            if suggestion is not None:
                inbox.decide_suggestion(get_db(), suggestion, entry_id, "accepted", g.user)
            inbox.mark(get_db(), keys, "phrasing", g.user, entry_id)
        return warnings

    return _measured(apply, action, entry_id, question)


def _done(message: str, warnings: list[str]) -> Any:
    flash(message)
    for warning in warnings:
        flash(warning)
    return _back()


@bp.post("/inbox/phrasing")
@role_required("curator")
def add_phrasing():  # type: ignore[no-untyped-def]
    """Add a group's question as a phrasing of an entry; the group leaves the inbox."""
    try:
        keys = inbox.clean_keys(request.form.getlist("key"))
        entry_id = _entry_id()
        question = request.form.get("question", "")
        warnings = _phrasing(entry_id, question, keys, "add_phrasing")
    except (inbox.InboxError, faq.FaqError) as exc:
        flash(getattr(exc, "message", None) or str(exc))
        return _back()
    return _done(f"已将“{question}”添加为条目的相似问法，立即生效。", warnings)


@bp.post("/inbox/draft")
@role_required("curator")
def draft():  # type: ignore[no-untyped-def]
    """Open the new-entry form with a group's question; the group is marked when it is saved."""
    try:
        keys = inbox.clean_keys(request.form.getlist("key"))
    except inbox.InboxError as exc:
        flash(exc.message)
        return _back()
    return render_template("staff/faq_edit.html", form={"status": "draft", "question": request.form.get("question", "")},
                           entry=None, errors={}, inbox_keys=keys, categories=faq.categories(get_db()),
                           statuses=faq.STATUS_NAMES)


@bp.post("/inbox/dismiss")
@role_required("curator")
def dismiss():  # type: ignore[no-untyped-def]
    """Dismiss a group as noise: it does not come back."""
    try:
        with immediate(get_db()):
            n = inbox.mark(get_db(), request.form.getlist("key"), "dismissed", g.user)
    except inbox.InboxError as exc:
        flash(exc.message)
        return _back()
    flash(f"已忽略 {n} 个问题。")
    return _back()


@bp.post("/inbox/suggestions")
@role_required("curator")
def decide():  # type: ignore[no-untyped-def]
    """Accept a suggested phrasing (it is answered at once) or reject it."""
    decision = request.form.get("decision", "")
    question = request.form.get("question", "")
    try:
        [key] = inbox.clean_keys([request.form.get("key", "")])
        if decision not in inbox.DECISIONS:
            raise inbox.InboxError("无效的操作，请刷新页面后重试。")
        if decision == "rejected":
            entry_id = _number(request.form.get("entry_id"))
            if entry_id is None:
                raise inbox.InboxError("无效的操作，请刷新页面后重试。")
            with immediate(get_db()):
                inbox.decide_suggestion(get_db(), key, entry_id, "rejected", g.user)
            flash("已拒绝这条建议。")
            return _back()
        entry_id = _entry_id()
        warnings = _phrasing(entry_id, question, [key], "accept_suggestion", suggestion=key)
    except (inbox.InboxError, faq.FaqError) as exc:
        flash(getattr(exc, "message", None) or str(exc))
        return _back()
    return _done(f"已采纳：“{question}”成为条目的相似问法，立即生效。", warnings)
