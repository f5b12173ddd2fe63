"""The administrators' side of the staff workspace: accounts and the audit log."""
from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, flash, g, redirect, render_template, request, url_for

from .. import applications, audit_text, faq, remedies, tickets
from ..accounts import (ROLE_NAMES, ROLES, AccountError, audit, create_user, end_session, end_user_sessions,
                        live_sessions, reset_password, set_account, unlock)
from .staff_auth import role_required
from ..db import get_db
from ..text import is_number
from ..storage import immediate

bp = Blueprint("admin", __name__, url_prefix="/staff/admin")
PAGE = 50


@bp.get("/users")
@role_required("admin")
def users():  # type: ignore[no-untyped-def]
    """All staff accounts."""
    return render_template("staff/users.html", users=_users(), roles=ROLES)


def _users() -> list[dict]:
    """Accounts with how many live sessions each has."""
    counts: dict[int, int] = {}
    for row in live_sessions(get_db()):
        counts[row["user_id"]] = counts.get(row["user_id"], 0) + 1
    rows = [dict(r) for r in get_db().query("select id, username, role, active, last_login, created "
                                            "from users order by username")]
    for row in rows:
        row["sessions"] = counts.get(row["id"], 0)
    return rows


@bp.post("/users")
@role_required("admin")
def create():  # type: ignore[no-untyped-def]
    """Create an account."""
    form = request.form
    try:
        with immediate(get_db()):  # the account and its audit row together
            user_id = create_user(get_db(), form.get("username", ""), form.get("password", ""),
                                  form.get("role", ""))
            audit(get_db(), g.user, "create_user", f"user:{user_id}",
                  after={"username": form.get("username"), "role": form.get("role")})
    except AccountError as exc:
        return render_template("staff/users.html", users=_users(), roles=ROLES, error=str(exc)), 400
    flash("账号已创建。")
    return redirect(url_for("admin.users"))


@bp.post("/users/<int:user_id>")
@role_required("admin")
def update(user_id: int):  # type: ignore[no-untyped-def]
    """Change an account's role, enable or disable it, or set a new password."""
    db = get_db()
    before = db.execute("select username, role, active from users where id = ?", [user_id]).fetchone()
    if before is None:
        flash("账号不存在。")
        return redirect(url_for("admin.users"))
    try:
        with immediate(db):  # the change and its audit row together
            if request.form.get("password"):
                reset_password(db, user_id, request.form["password"])
                change = {"password": "已重置"}
            else:
                role = request.form.get("role", before[1])
                active = request.form.get("active", str(before[2])) == "1"
                if user_id == g.user["id"] and (role != "admin" or not active):
                    raise AccountError("不能降低或停用自己的管理员账号。")
                set_account(db, user_id, role, active)
                change = {"role": role, "active": active}
            audit(db, g.user, "update_user", f"user:{user_id}",
                  before={"username": before[0], "role": before[1], "active": bool(before[2])}, after=change)
    except AccountError as exc:
        flash(str(exc))
        return redirect(url_for("admin.users"))
    flash("账号已更新。")
    return redirect(url_for("admin.users"))


@bp.get("/sessions")
@role_required("admin")
def sessions():  # type: ignore[no-untyped-def]
    """Live staff sessions (all, or one account's), each with a button that ends it."""
    user_id = request.args.get("user", type=int)
    return render_template("staff/sessions.html", sessions=live_sessions(get_db(), user_id), user_id=user_id,
                           current=g.user.get("session_id"))


@bp.post("/sessions/end")
@role_required("admin")
def end_sessions():  # type: ignore[no-untyped-def]
    """End one session (``session``) or every session of an account (``user``)."""
    db = get_db()
    sid, user_id = request.form.get("session", ""), request.form.get("user", type=int)
    with immediate(db):
        if sid:
            row = db.execute("select user_id from staff_sessions where id = ?", [sid]).fetchone()
            ended = int(end_session(db, sid, "admin", is_id=True))
            target = f"user:{row[0]}" if row else "session"
        elif user_id is not None:
            ended = end_user_sessions(db, user_id, "admin", keep=g.user.get("session_id"))
            target = f"user:{user_id}"
        else:
            flash("请选择要结束的会话。")
            return redirect(url_for("admin.sessions"))
        audit(db, g.user, "end_sessions", target, after={"ended": ended})
    flash(f"已结束 {ended} 个登录会话。")
    return redirect(url_for("admin.sessions", user=user_id) if user_id else url_for("admin.sessions"))


@bp.post("/users/<int:user_id>/unlock")
@role_required("admin")
def unlock_user(user_id: int):  # type: ignore[no-untyped-def]
    """Lift the sign-in locks of an account."""
    db = get_db()
    row = db.execute("select username from users where id = ?", [user_id]).fetchone()
    if row is None:
        flash("账号不存在。")
        return redirect(url_for("admin.users"))
    with immediate(db):
        unlock(db, row[0])
        audit(db, g.user, "unlock_user", f"user:{user_id}")
    flash(f"已解除账号 {row[0]} 的登录锁定。")
    return redirect(url_for("admin.users"))


@bp.get("/audit")
@role_required("admin")
def audit_log():  # type: ignore[no-untyped-def]
    """Every staff change, newest first, filterable by user, action and target."""
    where, params = [], []
    for field in ("username", "action"):
        value = request.args.get(field, "").strip()
        if value:
            where.append(f"{field} = ?")
            params.append(value)
    target = request.args.get("target", "").strip()
    if target:
        # A prefix as a range, so the index on target is used (LIKE would scan the log).
        where.append("target >= ? and target < ?")
        params += [target, target + "\U0010ffff"]
    page = max(1, request.args.get("page", 1, type=int) or 1)
    sql = "select * from audit_log" + (" where " + " and ".join(where) if where else "")
    rows = list(get_db().query(sql + " order by id desc limit ? offset ?", [*params, PAGE + 1, (page - 1) * PAGE]))
    titles = _titles([r["target"] for r in rows[:PAGE]])
    for row in rows:
        before, after = (_loads(row[key]) for key in ("before", "after"))
        row["changes"] = audit_text.field_changes(before, after, VALUE_NAMES)
        row["action_name"] = audit_text.action_name(row["action"])
        row["target_name"] = audit_text.target_label(row["target"], titles)
        row["time"] = tickets.display_time(row["at"])
    # The distinct actions by skipping along the action index: one step per action, not per row.
    actions = [r[0] for r in get_db().execute(
        "with recursive a(action) as (select min(action) from audit_log union all "
        "select (select min(action) from audit_log where action > a.action) from a where a.action is not null) "
        "select action from a where action is not null")]
    return render_template("staff/audit.html", rows=rows[:PAGE], more=len(rows) > PAGE, page=page,
                           actions=[(a, audit_text.action_name(a)) for a in actions], args=request.args)


#: Codes stored in the log's values, named as staff read them, by field.
VALUE_NAMES: dict[str, dict[str, str]] = {
    "status": {**faq.STATUS_NAMES, **tickets.STATUSES}, "role": ROLE_NAMES,
    "kind": {**remedies.KINDS, "application": "政府信息公开申请", "inquiry": "一般咨询"},
    "result": remedies.RESULTS, "applicant_type": dict(applications.APPLICANT_TYPES),
    "channel": dict(applications.CHANNELS), "outcome": dict(applications.OUTCOMES),
}


def _loads(text: str | None) -> Any:
    """A stored before/after value (a row from an older version may hold plain text)."""
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _titles(targets: list[str]) -> dict[str, str]:
    """What each target on the page is called: an entry's question, a ticket's code, an account's name."""
    ids: dict[str, set[int]] = {}
    for target in targets:
        kind, _, ref = (target or "").partition(":")
        if is_number(ref):  # not str.isdigit: a dictionary word may be ²
            ids.setdefault(kind, set()).add(int(ref))
    queries = {"entry": "select id, question from entries", "ticket": "select id, code from tickets",
               "user": "select id, username from users", "canned": "select id, title from canned_replies",
               "report": "select id, year || '年' || agency from reports"}
    titles: dict[str, str] = {}
    tables = set(get_db().table_names())
    for kind, found in ids.items():
        sql = queries.get(kind)
        if sql is None or sql.split(" from ")[1] not in tables:
            continue
        marks = ", ".join("?" * len(found))
        for ref, title in get_db().execute(f"{sql} where id in ({marks})", sorted(found)):
            titles[f"{kind}:{ref}"] = audit_text.short(str(title or ""))
    return titles
