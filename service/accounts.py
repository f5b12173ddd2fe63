"""Staff accounts, password checks with lockout, and the audit log (no Flask)."""
from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlite_utils
from werkzeug.security import check_password_hash, generate_password_hash

from .knowledge import now

ROLES = ("curator", "reviewer", "admin")
ROLE_NAMES = {"curator": "知识维护员", "reviewer": "答复审核员", "admin": "管理员"}
MAX_FAILURES = 5
LOCK_MINUTES = 15
MIN_PASSWORD = 10
FAILED_LOGIN = "用户名或密码不正确；连续多次失败后账号会被临时锁定，请稍后再试。"
_USERNAME_RE = re.compile(r"^[A-Za-z0-9_.\-\u4e00-\u9fff]{2,32}$")


class AccountError(Exception):
    """A staff account operation was refused; the message is plain Chinese."""


def check_password_rules(password: str) -> None:
    """Refuse passwords too short to resist guessing."""
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"密码至少需要{MIN_PASSWORD}个字符。")
    if password.isdigit() or password.isalpha():
        raise AccountError("密码需同时包含字母和数字（或符号）。")


def create_user(db: sqlite_utils.Database, username: str, password: str, role: str) -> int:
    """Create an account with a salted scrypt hash; return its id."""
    username = username.strip()
    if not _USERNAME_RE.match(username):
        raise AccountError("用户名需为2至32个字母、数字、汉字或 _ . - 。")
    if role not in ROLES:
        raise AccountError(f"角色无效：{role}（可选：{', '.join(ROLES)}）。")
    check_password_rules(password)
    if db.execute("select 1 from users where username = ?", [username]).fetchone():
        raise AccountError(f"用户名已存在：{username}")
    stamp = now()
    return int(db["users"].insert({
        "username": username, "password_hash": generate_password_hash(password), "role": role,
        "active": 1, "failed_logins": 0, "created": stamp, "updated": stamp,
    }).last_pk)


def authenticate(db: sqlite_utils.Database, username: str, password: str) -> dict[str, Any]:
    """The user for these credentials; raise :class:`AccountError` otherwise.

    After MAX_FAILURES wrong passwords in a row the account is locked for LOCK_MINUTES.
    The message never tells whether the user name exists.
    """
    row = db.execute("select id, username, password_hash, role, active, locked_until "
                     "from users where username = ?", [username.strip()]).fetchone()
    # One message for every failure, locked or not, known name or not: it tells nothing.
    refused = AccountError(FAILED_LOGIN)
    if row is None:
        generate_password_hash(password)  # same cost as a real check: no timing hint
        raise refused
    user_id, name, pw_hash, role, active, locked_until = row
    current = datetime.now(timezone.utc)
    if locked_until and datetime.fromisoformat(locked_until) > current:
        raise refused
    if not active:
        raise refused
    if not check_password_hash(pw_hash, password):
        # Counted in one statement, so parallel guesses cannot all read the same count.
        failures = db.execute("update users set failed_logins = failed_logins + 1 where id = ? "
                              "returning failed_logins", [user_id]).fetchone()[0]
        if failures >= MAX_FAILURES:
            lock = (current + timedelta(minutes=LOCK_MINUTES)).isoformat(timespec="seconds")
            db.execute("update users set failed_logins = 0, locked_until = ? where id = ?", [lock, user_id])
        raise refused
    db.execute("update users set failed_logins = 0, locked_until = null, last_login = ? where id = ?",
               [now(), user_id])
    return {"id": user_id, "username": name, "role": role}


def change_password(db: sqlite_utils.Database, user_id: int, old: str, new: str) -> None:
    """Change a user's own password after checking the old one."""
    row = db.execute("select password_hash from users where id = ?", [user_id]).fetchone()
    if row is None or not check_password_hash(row[0], old):
        raise AccountError("原密码不正确。")
    check_password_rules(new)
    db.execute("update users set password_hash = ?, updated = ? where id = ?",
               [generate_password_hash(new), now(), user_id])


def get_user(db: sqlite_utils.Database, user_id: int) -> dict[str, Any] | None:
    """An active user by id, or None; ``stamp`` changes whenever the password does."""
    row = db.execute("select id, username, role, password_hash from users where id = ? and active = 1",
                     [user_id]).fetchone()
    if row is None:
        return None
    return {"id": row[0], "username": row[1], "role": row[2], "stamp": password_stamp(row[3])}


def password_stamp(password_hash: str) -> str:
    """A short fingerprint of the password hash, kept in the session: a new password (own
    change or an admin's reset) ends every session opened with the old one."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def audit(db: sqlite_utils.Database, user: dict[str, Any] | None, action: str, target: str,
          before: Any = None, after: Any = None) -> None:
    """Record a staff change: who, when, what, and the state before and after."""
    db["audit_log"].insert({
        "at": now(), "user_id": user["id"] if user else None,
        "username": user["username"] if user else "（命令行）", "action": action, "target": target,
        "before": json.dumps(before, ensure_ascii=False, default=str) if before is not None else None,
        "after": json.dumps(after, ensure_ascii=False, default=str) if after is not None else None,
    })


def set_account(db: sqlite_utils.Database, user_id: int, role: str, active: bool) -> None:
    """Change an account's role and whether it may sign in."""
    if role not in ROLES:
        raise AccountError(f"角色无效：{role}")
    db.execute("update users set role = ?, active = ?, updated = ? where id = ?",
               [role, 1 if active else 0, now(), user_id])


def reset_password(db: sqlite_utils.Database, user_id: int, password: str) -> None:
    """Set a new password for an account (by an administrator) and lift any lock."""
    check_password_rules(password)
    db.execute("update users set password_hash = ?, failed_logins = 0, locked_until = null, updated = ? "
               "where id = ?", [generate_password_hash(password), now(), user_id])
