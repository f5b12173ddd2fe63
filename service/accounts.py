"""Staff accounts, password checks with lockout, and the audit log (no Flask)."""
from __future__ import annotations

import hashlib
import json
import re
import secrets
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlite_utils
from werkzeug.security import check_password_hash, generate_password_hash

from .addresses import client_key
from .knowledge import now
from .storage import immediate

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


# Sign-in throttling. Failures are counted per account *and* address (an IPv6 client by its
# /64): five wrong passwords from one address within 15 minutes stop that address trying
# that account, never the owner elsewhere. An address that fails 20 times on any names is
# stopped as a whole (password spraying), and an account under attack from many
# addresses (ACCOUNT_ALERT failures) may only be tried by addresses that have not failed on
# it. Neither of the last two stops an address the account signed in from in the last
# KNOWN_DAYS days: an attacker behind the owner's office NAT cannot lock the owner out.
ADDRESS_MAX_FAILURES = 20
ACCOUNT_ALERT = 50
KNOWN_DAYS = 30
FAILURE_WINDOW = timedelta(minutes=LOCK_MINUTES)
_DUMMY_HASH: list[str] = []


def _dummy_hash() -> str:
    if not _DUMMY_HASH:
        _DUMMY_HASH.append(generate_password_hash(secrets.token_hex(8)))
    return _DUMMY_HASH[0]


def _failure_keys(username: str, address: str | None) -> dict[str, str]:
    name = username.strip().lower()
    addr = client_key(address)
    return {"pair": f"pair:{name}|{addr}", "address": f"addr:{addr}", "account": f"acct:{name}"}


def _failures(db: sqlite_utils.Database, key: str, at: datetime) -> int:
    row = db.execute("select failures, last_at from login_failures where key = ?", [key]).fetchone()
    if row is None or at - datetime.fromisoformat(row[1]) > FAILURE_WINDOW:
        return 0
    return int(row[0])


def _count_failure(db: sqlite_utils.Database, keys: dict[str, str], at: datetime) -> None:
    stamp = at.isoformat(timespec="seconds")
    expired = (at - FAILURE_WINDOW).isoformat(timespec="seconds")
    with immediate(db):
        db.execute("delete from login_failures where last_at < ?", [expired])
        for key in keys.values():
            # The window starts at the first failure; a key past its window starts again.
            db.execute("insert into login_failures (key, failures, last_at) values (?, 1, ?) "
                       "on conflict(key) do update set failures = failures + 1", [key, stamp])


def _known_address(db: sqlite_utils.Database, username: str, address: str | None, at: datetime) -> bool:
    """Whether the account signed in from this client (its address, or IPv6 /64) lately."""
    since = (at - timedelta(days=KNOWN_DAYS)).isoformat(timespec="seconds")
    who = client_key(address)
    rows = db.execute("select s.address from staff_sessions s join users u on u.id = s.user_id "
                      "where lower(u.username) = ? and s.created >= ?", [username.strip().lower(), since])
    return any(client_key(row[0]) == who for row in rows)


def sign_in_refused(db: sqlite_utils.Database, username: str, address: str | None,
                    at: datetime | None = None) -> bool:
    """Whether this address may not try this account now (see the throttling rules above)."""
    at = at or datetime.now(timezone.utc)
    keys = _failure_keys(username, address)
    pair = _failures(db, keys["pair"], at)
    if pair >= MAX_FAILURES:
        return True
    spraying = _failures(db, keys["address"], at) >= ADDRESS_MAX_FAILURES
    besieged = pair > 0 and _failures(db, keys["account"], at) >= ACCOUNT_ALERT
    return (spraying or besieged) and not _known_address(db, username, address, at)


def authenticate(db: sqlite_utils.Database, username: str, password: str,
                 address: str | None = None) -> dict[str, Any]:
    """The user for these credentials; raise :class:`AccountError` otherwise.

    Every failure costs the same (one scrypt check, against a dummy hash when the name is
    unknown) and says the same, so neither the message nor the time tells whether a name
    exists, is locked or disabled.
    """
    at = datetime.now(timezone.utc)
    row = db.execute("select id, username, password_hash, role, active "
                     "from users where username = ?", [username.strip()]).fetchone()
    refused = AccountError(FAILED_LOGIN)
    throttled = sign_in_refused(db, username, address, at)
    matches = check_password_hash(row[2] if row else _dummy_hash(), password)
    if row is None or throttled or not row[4] or not matches:
        _count_failure(db, _failure_keys(username, address), at)  # always: the same time
        raise refused
    user_id, name, _hash, role, _active = row
    db.execute("delete from login_failures where key = ?", [_failure_keys(username, address)["pair"]])
    db.execute("update users set failed_logins = 0, locked_until = null, last_login = ? where id = ?",
               [now(), user_id])
    return {"id": user_id, "username": name, "role": role}


def unlock(db: sqlite_utils.Database, username: str, address: str | None = None) -> int:
    """Forget every failed sign-in counted against this account, and the address-wide
    counts of the addresses that failed on it (and of ``address``); return how many keys."""
    name = username.strip().lower()
    with immediate(db):
        pairs = [row[0] for row in db.execute("select key from login_failures where key like ? escape '\\'",
                                              ["pair:" + _like(name) + "|%"])]
        addresses = ["addr:" + key.split("|", 1)[1] for key in pairs]
        if address:
            addresses.append("addr:" + client_key(address))
        count = db.execute("delete from login_failures where key = ? or key like ? escape '\\'",
                           [f"acct:{name}", "pair:" + _like(name) + "|%"]).rowcount
        for key in addresses:
            count += db.execute("delete from login_failures where key = ?", [key]).rowcount
        db.execute("update users set failed_logins = 0, locked_until = null where lower(username) = ?", [name])
    return int(count)


def _name_of(db: sqlite_utils.Database, user_id: int) -> str:
    row = db.execute("select lower(username) from users where id = ?", [user_id]).fetchone()
    return row[0] if row else ""


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# -- server-side sessions ------------------------------------------------------------------

SESSION_HOURS = 8
TOUCH_EVERY = timedelta(minutes=1)


def _session_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(db: sqlite_utils.Database, user_id: int, address: str | None, agent: str | None,
                  hours: float = SESSION_HOURS) -> str:
    """Open a staff session; return the token for the cookie (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    at = datetime.now(timezone.utc)
    db["staff_sessions"].insert({
        "id": _session_id(token), "user_id": user_id, "created": at.isoformat(timespec="seconds"),
        "last_seen": at.isoformat(timespec="seconds"),
        "expires": (at + timedelta(hours=hours)).isoformat(timespec="seconds"),
        "address": (address or "")[:64], "agent": (agent or "")[:200],
    })
    return token


def session_user(db: sqlite_utils.Database, token: str) -> dict[str, Any] | None:
    """The active user of a live session, or None (ended, expired, account disabled)."""
    sid = _session_id(token)
    row = db.execute("select s.user_id, s.expires, s.last_seen from staff_sessions s "
                     "where s.id = ? and s.ended is null", [sid]).fetchone()
    if row is None:
        return None
    at = datetime.now(timezone.utc)
    if datetime.fromisoformat(row[1]) <= at:
        return None
    user = get_user(db, row[0])
    if user is None:
        return None
    if at - datetime.fromisoformat(row[2]) > TOUCH_EVERY:  # not a write per request
        db.execute("update staff_sessions set last_seen = ? where id = ?", [at.isoformat(timespec="seconds"), sid])
    user["session_id"] = sid
    return user


def end_session(db: sqlite_utils.Database, token_or_id: str, why: str, *, is_id: bool = False) -> bool:
    """End one session (by its cookie token, or by its stored id); True if it was live."""
    sid = token_or_id if is_id else _session_id(token_or_id)
    return db.execute("update staff_sessions set ended = ?, ended_why = ? where id = ? and ended is null",
                      [now(), why, sid]).rowcount > 0


def end_user_sessions(db: sqlite_utils.Database, user_id: int, why: str, keep: str | None = None) -> int:
    """End every live session of a user (except the session id ``keep``); return how many."""
    return int(db.execute("update staff_sessions set ended = ?, ended_why = ? where user_id = ? "
                          "and ended is null and id != ?", [now(), why, user_id, keep or ""]).rowcount)


def end_all_sessions(db: sqlite_utils.Database, why: str) -> int:
    """End every live staff session (a key rotation, a restore); return how many."""
    return int(db.execute("update staff_sessions set ended = ?, ended_why = ? where ended is null",
                          [now(), why]).rowcount)


def live_sessions(db: sqlite_utils.Database, user_id: int | None = None) -> list[dict[str, Any]]:
    """Sessions not ended nor expired, newest first, with their user's name."""
    sql = ("select s.id, s.user_id, u.username, s.created, s.last_seen, s.expires, s.address, s.agent "
           "from staff_sessions s join users u on u.id = s.user_id where s.ended is null and s.expires > ?")
    params: list[Any] = [datetime.now(timezone.utc).isoformat(timespec="seconds")]
    if user_id is not None:
        sql += " and s.user_id = ?"
        params.append(user_id)
    return [dict(r) for r in db.query(sql + " order by s.created desc limit 500", params)]


def change_password(db: sqlite_utils.Database, user_id: int, old: str, new: str,
                    keep_session: str | None = None) -> None:
    """Change a user's own password after checking the old one; every other session of
    the user ends."""
    row = db.execute("select password_hash from users where id = ?", [user_id]).fetchone()
    if row is None or not check_password_hash(row[0], old):
        raise AccountError("原密码不正确。")
    check_password_rules(new)
    with immediate(db):
        db.execute("update users set password_hash = ?, updated = ? where id = ?",
                   [generate_password_hash(new), now(), user_id])
        end_user_sessions(db, user_id, "password", keep=keep_session)


def get_user(db: sqlite_utils.Database, user_id: int) -> dict[str, Any] | None:
    """An active user by id, or None."""
    row = db.execute("select id, username, role from users where id = ? and active = 1", [user_id]).fetchone()
    if row is None:
        return None
    return {"id": row[0], "username": row[1], "role": row[2]}


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
    """Change an account's role and whether it may sign in; a change ends the account's
    sessions, so it takes effect at once (a disabled user is signed out everywhere)."""
    if role not in ROLES:
        raise AccountError(f"角色无效：{role}")
    with immediate(db):
        before = db.execute("select role, active from users where id = ?", [user_id]).fetchone()
        db.execute("update users set role = ?, active = ?, updated = ? where id = ?",
                   [role, 1 if active else 0, now(), user_id])
        if before is not None and (before[0] != role or bool(before[1]) != active):
            end_user_sessions(db, user_id, "account")


def reset_password(db: sqlite_utils.Database, user_id: int, password: str) -> None:
    """Set a new password for an account (by an administrator) and lift any lock."""
    check_password_rules(password)
    with immediate(db):
        db.execute("update users set password_hash = ?, failed_logins = 0, locked_until = null, updated = ? "
                   "where id = ?", [generate_password_hash(password), now(), user_id])
        unlock(db, _name_of(db, user_id))
        end_user_sessions(db, user_id, "password")
