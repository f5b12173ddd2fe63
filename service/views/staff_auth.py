"""Staff sign-in: login, logout, own password, and the access decorators."""
from __future__ import annotations

import functools
from typing import Any, Callable

import click
from flask import (Blueprint, Flask, abort, flash, g, jsonify, redirect, render_template,
                   request, session, url_for)
from flask_wtf.csrf import validate_csrf
from wtforms import ValidationError

from ..accounts import (ROLE_NAMES, ROLES, AccountError, audit, authenticate, change_password, create_user,
                       end_session, session_user, start_session, unlock)
from ..db import get_db, with_database
from ..security import limiter, login_limit

bp = Blueprint("auth", __name__, url_prefix="/staff")


def _load_user() -> None:
    """The signed-in user, from the server-side session the cookie's token names."""
    token = session.get("sid")
    user = session_user(get_db(), token) if isinstance(token, str) and token else None
    if user is None and "sid" in session:
        session.clear()  # ended (logout, an admin, a password or role change) or expired
    g.user = user


def _refuse(status: int):  # type: ignore[no-untyped-def]
    if request.path.startswith("/staff/api/"):
        message = "请先登录。" if status == 401 else "您没有权限进行此操作。"
        return jsonify(error=message), status
    if status == 401:
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    abort(403)


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Anonymous users are sent to the login page (pages) or get 401 (staff APIs)."""

    @functools.wraps(view)
    def wrapped(**kwargs: Any) -> Any:
        if g.get("user") is None:
            return _refuse(401)
        return view(**kwargs)

    return wrapped


def role_required(*roles: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Only these roles (and admins, who may do everything) pass; others get 403."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapped(**kwargs: Any) -> Any:
            user = g.get("user")
            if user is None:
                return _refuse(401)
            if user["role"] != "admin" and user["role"] not in roles:
                return _refuse(403)
            return view(**kwargs)

        wrapped.required_roles = roles  # type: ignore[attr-defined]
        return wrapped

    return decorator


def _safe_next(target: str | None) -> str:
    if (target and target.startswith("/staff") and not target.startswith("//")
            and not any(ord(ch) < 32 or ch == "\\" for ch in target)):
        return target
    return url_for("auth.home")


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(login_limit, methods=["POST"])
def login():  # type: ignore[no-untyped-def]
    """Sign in with user name and password."""
    error = None
    if request.method == "POST":
        try:
            # Checked here rather than before the request, so that the rate limit above
            # counts every attempt, forged or not.
            validate_csrf(request.form.get("csrf_token"))
        except ValidationError:
            return render_template("staff/login.html", error="页面已过期或请求来源无效，请刷新页面后重试。"), 400
        try:
            user = authenticate(get_db(), request.form.get("username", ""), request.form.get("password", ""),
                                request.remote_addr)
        except AccountError as exc:
            error = str(exc)
        else:
            session.clear()
            session["sid"] = start_session(get_db(), user["id"], request.remote_addr,
                                           request.headers.get("User-Agent"))
            session.permanent = True
            return redirect(_safe_next(request.args.get("next")))
    return render_template("staff/login.html", error=error), (401 if error else 200)


@bp.post("/logout")
def logout():  # type: ignore[no-untyped-def]
    """Sign out: the session ends on the server too, so a copied cookie is worthless."""
    token = session.get("sid")
    if isinstance(token, str) and token:
        end_session(get_db(), token, "logout")
    session.clear()
    return redirect(url_for("auth.login"))


@bp.get("/")
@login_required
def home():  # type: ignore[no-untyped-def]
    """The staff workspace's start page: what this user can do."""
    return render_template("staff/home.html")


@bp.route("/password", methods=["GET", "POST"])
@login_required
def password():  # type: ignore[no-untyped-def]
    """Change one's own password."""
    error = None
    if request.method == "POST":
        new = request.form.get("new", "")
        if new != request.form.get("confirm", ""):
            error = "两次输入的新密码不一致。"
        else:
            try:
                change_password(get_db(), g.user["id"], request.form.get("old", ""), new,
                                keep_session=g.user["session_id"])
            except AccountError as exc:
                error = str(exc)
            else:
                audit(get_db(), g.user, "change_own_password", f"user:{g.user['id']}")
                flash("密码已修改。其他设备上的登录已失效。")
                return redirect(url_for("auth.home"))
    return render_template("staff/password.html", error=error), (400 if error else 200)


@click.command("create-user")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True, help="curator、reviewer 或 admin")
@click.option("--password", help="密码（用于脚本；不提供则交互输入两次）")
@with_database
def create_user_command(name: str, role: str, password: str | None) -> None:
    """Create a staff account.

    Example: flask --app service create-user wang --role curator
    """
    if password is None:
        password = click.prompt("密码", hide_input=True, confirmation_prompt="再次输入密码")
    try:
        create_user(get_db(), name, password, role)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"已创建账号 {name}（{ROLE_NAMES[role]}）。")


@click.command("unlock-user")
@click.argument("name")
@click.option("--address", help="同时解除这个地址（IP）的登录锁定，例如与攻击者共用出口地址时")
@with_database
def unlock_user_command(name: str, address: str | None) -> None:
    """Lift every sign-in lock on a staff account (all addresses that failed on it).

    Example: flask --app service unlock-user wang --address 203.0.113.7
    """
    db = get_db()
    if not db.execute("select 1 from users where username = ?", [name.strip()]).fetchone():
        raise click.ClickException(f"账号不存在：{name}")
    unlock(db, name, address)
    audit(db, None, "unlock_user", f"user:{name.strip()}", after={"address": address} if address else None)
    click.echo(f"已解除账号 {name.strip()} 的登录锁定。")


def init_app(app: Flask) -> None:
    """Load the signed-in user before each request; register the CLI commands."""
    app.before_request(_load_user)
    app.cli.add_command(create_user_command)
    app.cli.add_command(unlock_user_command)

    @app.context_processor
    def inject_user() -> dict[str, Any]:
        return {"current_user": g.get("user"), "role_names": ROLE_NAMES}
