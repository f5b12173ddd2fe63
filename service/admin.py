"""The administrators' side of the staff workspace: accounts and the audit log."""
from __future__ import annotations

import json

from flask import Blueprint, flash, g, redirect, render_template, request, url_for

from .accounts import ROLES, AccountError, audit, create_user, reset_password, set_account
from .auth import role_required
from .db import get_db
from .storage import immediate

bp = Blueprint("admin", __name__, url_prefix="/staff/admin")
PAGE = 50


@bp.get("/users")
@role_required("admin")
def users():  # type: ignore[no-untyped-def]
    """All staff accounts."""
    rows = list(get_db().query("select id, username, role, active, last_login, created, locked_until "
                               "from users order by username"))
    return render_template("staff/users.html", users=rows, roles=ROLES)


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
        rows = list(get_db().query("select id, username, role, active, last_login, created, locked_until "
                                   "from users order by username"))
        return render_template("staff/users.html", users=rows, roles=ROLES, error=str(exc)), 400
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
        where.append("target like ?")
        params.append(f"{target}%")
    page = max(1, request.args.get("page", 1, type=int) or 1)
    sql = "select * from audit_log" + (" where " + " and ".join(where) if where else "")
    rows = list(get_db().query(sql + " order by id desc limit ? offset ?", [*params, PAGE + 1, (page - 1) * PAGE]))
    for row in rows:
        for key in ("before", "after"):
            row[key] = json.dumps(json.loads(row[key]), ensure_ascii=False, indent=1) if row[key] else ""
    actions = [r[0] for r in get_db().execute("select distinct action from audit_log order by action")]
    return render_template("staff/audit.html", rows=rows[:PAGE], more=len(rows) > PAGE, page=page,
                           actions=actions, args=request.args)
