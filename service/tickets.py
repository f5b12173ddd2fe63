"""Tickets for questions the desk could not answer: the citizen's side, the reviewers' work,
and the question log (no Flask).

A ticket is opened by the chat when the desk escalates. The citizen gets a code and a short
query password (kept only as a hash) to look the ticket up; reviewers take it, reply, change
its status, and may turn it into FAQ knowledge. Every change is recorded twice: in
``ticket_events`` (the ticket's own history, shown on its page) and in ``audit_log``.
Contact details are for reviewers only: they never go into events, the audit log or logs.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import re
import secrets
import threading
import time
import unicodedata
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any, Iterable, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlite_utils
from werkzeug.security import check_password_hash, generate_password_hash

from . import faq
from .accounts import audit
from .addresses import client_key
from .keys import key_id
from .knowledge import bump_version, now
from .storage import Error as storage_errors, connect, immediate
from .text import clean, is_number

# Crockford's base32 without look-alike letters: easy to read out on the phone.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_PREFIX = "GK"
_CODE_RE = re.compile(r"^GK[0-9A-HJKMNP-TV-Z]{10}$")
REUSE_WINDOW = timedelta(days=1)
PASSWORD_DIGITS = 6

STATUSES = {"new": "新建", "in_progress": "处理中", "waiting": "等待群众补充",
            "answered": "已答复", "closed": "已关闭"}
OPEN_STATUSES = ("new", "in_progress", "waiting")
# What the citizen reads on the lookup page.
CITIZEN_STATUSES = {"new": "已登记，等待工作人员处理", "in_progress": "工作人员正在处理",
                    "waiting": "等待您补充信息", "answered": "已答复", "closed": "已办结"}
ACTIONS = {"open": "群众提问，生成工单", "ask_again": "同一会话再次提问", "contact": "群众留下联系方式",
           "take": "接手处理", "assign": "分派", "reply": "答复", "status": "更改状态", "close": "关闭工单",
           "promote_new": "转为新的常见问题", "promote_alternate": "添加为常见问题的相似问法"}
CITIZEN = "群众"

MAX_REPLY = 2000
MAX_NOTE = 500
MAX_NAME = 40
MAX_EMAIL = 254
# The categories of knowledge/faq.toml, offered first when a ticket becomes an FAQ entry.
FAQ_CATEGORIES = ("申请", "办理与期限", "费用", "救济", "公开范围", "主动公开", "数据服务", "其他")
_PUNCT_RE = re.compile(r"[^\w\u4e00-\u9fff]+|_")
PAGE_SIZE = 20

# Lookup throttling: MAX failures within WINDOW lock a key for LOCK, and each failure after
# a lock doubles it (up to CAP). A key is forgotten after a quiet day.
LOOKUP_MAX_FAILURES = 5
LOOKUP_WINDOW = timedelta(minutes=15)
LOOKUP_LOCK = timedelta(minutes=15)
LOOKUP_LOCK_CAP = timedelta(hours=24)
LOOKUP_FORGET = timedelta(days=1)

WRONG_CREDENTIALS = "工单编号或查询密码不正确。"


class TicketError(Exception):
    """A ticket operation was refused; the message is plain Chinese, ``status`` the HTTP code."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


class TicketNotFound(TicketError):
    """No ticket with this id."""

    def __init__(self) -> None:
        super().__init__("工单不存在。", 404)


class LookupThrottled(TicketError):
    """Too many wrong codes or passwords: the caller must wait ``wait_seconds``."""

    def __init__(self, wait_seconds: int):
        minutes = max(1, math.ceil(wait_seconds / 60))
        super().__init__(f"查询失败次数过多，为保护您的信息，请于{minutes}分钟后再试。", 429)
        self.wait_seconds = wait_seconds


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _stamp(at: datetime) -> str:
    return at.isoformat(timespec="seconds")


# -- opening tickets and the question log ------------------------------------------

def new_code() -> str:
    """An unguessable ticket code: GK + 10 random base32 characters (50 bits)."""
    bits = secrets.randbits(50)  # five bits a character: the alphabet has 32
    return CODE_PREFIX + "".join(_ALPHABET[(bits >> shift) & 31] for shift in range(0, 50, 5))


def display_code(code: str | None) -> str:
    """A ticket code as people read it aloud or copy it: groups of four (GK7Q-3M9X-A2RT).

    The stored form has no dashes; :func:`clean_code` accepts either.
    """
    text = code or ""
    if not _CODE_RE.match(text):
        return text
    return "-".join(text[i:i + 4] for i in range(0, len(text), 4))


def new_password() -> str:
    """A short query password a citizen can type on a phone: six random digits."""
    return f"{secrets.randbelow(10 ** PASSWORD_DIGITS):0{PASSWORD_DIGITS}d}"


def _key_list(secret: str | bytes | Sequence[str | bytes] | None) -> list[str | bytes]:
    if not secret:
        return []
    if isinstance(secret, (str, bytes)):
        return [secret]
    return [k for k in secret if k]


def password_digest(code: str, password: str, secret: str | bytes | Sequence[str | bytes] | None) -> str:
    """How a query password is stored.

    With the service's secret key (the current one, first of a list): a keyed HMAC-SHA256
    of code and password, tagged with the key's id so that it is still checked after the
    key is rotated; fast enough to open hundreds of tickets a second without holding the
    write lock, and useless to someone who copies the database without the keys. Without
    a key (scripts, tests): a slow salted hash.
    """
    keys = _key_list(secret)
    if not keys:
        return generate_password_hash(password)
    key = keys[0].encode() if isinstance(keys[0], str) else keys[0]
    mac = hmac.new(key, f"{code}:{password}".encode(), hashlib.sha256).hexdigest()
    return f"hmac-sha256${key_id(key)}${mac}"


def password_matches(stored: str, code: str, password: str,
                     secret: str | bytes | Sequence[str | bytes] | None) -> bool:
    """Check a query password against what :func:`password_digest` stored, under whichever
    of the keys (current or retired) it was made with."""
    if not stored.startswith("hmac-sha256$"):
        return check_password_hash(stored, password)
    parts = stored.split("$")
    keys = _key_list(secret)
    if len(parts) == 3:  # tagged with its key's id
        keys = [k for k in keys if key_id(k) == parts[1]]
    ok = False
    for key in keys:  # untagged (made before keys had ids): try each, in constant time each
        raw = key.encode() if isinstance(key, str) else key
        mac = hmac.new(raw, f"{code}:{password}".encode(), hashlib.sha256).hexdigest()
        ok |= hmac.compare_digest(parts[-1], mac)
    return ok


def needs_rehash(stored: str, secret: str | bytes | Sequence[str | bytes] | None) -> bool:
    """Whether a stored password was made under another key than the current one."""
    keys = _key_list(secret)
    return bool(keys) and not stored.startswith(f"hmac-sha256${key_id(keys[0])}$")


def open_ticket(db: sqlite_utils.Database, *, question: str, normalised: str, session: str | None,
                candidates: list[dict[str, Any]], secret: str | bytes | None = None) -> dict[str, Any]:
    """Create a ticket, or reuse the one the same session opened for the same question today.

    Returns ``{"id", "code", "reused", "password"}``. A new ticket gets a fresh query
    password, returned here once and stored only as a hash. A reused ticket keeps the
    password the citizen was given the first time (``password`` is None): a new one would
    silently invalidate the one they wrote down. Closed tickets are not reused.
    """
    stamp = now()
    since = (_now() - REUSE_WINDOW).isoformat(timespec="seconds")
    password = new_password()
    code = new_code()
    digest = password_digest(code, password, secret)  # before the write lock, not under it
    with immediate(db):
        if session:
            row = db.execute(
                "select id, code from tickets where session = ? and normalised = ? and created >= ? "
                "and status != 'closed' order by id desc limit 1", [session, normalised, since]).fetchone()
            if row:
                db.execute("update tickets set asked_count = asked_count + 1, updated = ? where id = ?",
                           [stamp, row[0]])
                _event(db, row[0], None, "ask_again", "")
                return {"id": row[0], "code": row[1], "reused": True, "password": None}
        while db.execute("select 1 from tickets where code = ?", [code]).fetchone():
            code = new_code()  # 50 random bits: practically never taken
            digest = password_digest(code, password, secret)
        # A plain statement: the library's insert looked the table up first, a cost every
        # question the desk cannot answer paid (see README, "A ticket without the library's
        # insert").
        ticket_id = db.execute(
            "insert into tickets (code, question, normalised, session, candidates, status, asked_count, "
            "created, updated, password_hash) values (?, ?, ?, ?, ?, 'new', 1, ?, ?, ?) returning id",
            [code, question, normalised, session, json.dumps(candidates, ensure_ascii=False), stamp, stamp,
             digest]).fetchone()[0]
        _event(db, ticket_id, None, "open", "")
    return {"id": ticket_id, "code": code, "reused": False, "password": password}


_ASK_COLUMNS = ("created", "session", "question", "normalised", "status", "kind", "entry_id", "ref",
                "confidence", "latency_ms", "ticket_id", "ask_token")
_ASK_INSERT = f"insert into asks ({', '.join(_ASK_COLUMNS)}) values ({', '.join('?' * len(_ASK_COLUMNS))})"


class AskLog:
    """The analytics log of questions, written in batches.

    Every question is one row in ``asks``. Writing each row in its own transaction makes
    every request take SQLite's write lock; a worker process instead keeps up to
    ``batch`` rows (or ``max_delay`` seconds' worth) and writes them in one short
    transaction. Tickets and follow-up context are never batched. Rows still buffered
    when a process is killed outright (not stopped) are lost: analytics only.

    A buffered row keeps the code of its ticket beside the ticket's id, and the id is
    looked up again by code when the row is written: a backup restored in between gives
    the ids past its last ticket to new tickets holding other questions. The row then
    links to its ticket if the restored database has it, and to none otherwise.
    """

    def __init__(self) -> None:
        self._rows: list[tuple[tuple[Any, ...], str | None]] = []
        self._since = time.monotonic()
        self._lock = threading.Lock()
        self._flusher_pid: int | None = None
        self._path, self._interval = "", 1.0
        self._last_add = time.monotonic()

    def _ensure_flusher(self, path: str, interval: float) -> None:
        """One background thread per process writes what a quiet worker still holds."""
        self._path, self._interval = path, interval
        if self._flusher_pid == os.getpid():
            return
        self._flusher_pid = os.getpid()

        def run() -> None:
            dbs: dict[str, sqlite_utils.Database] = {}
            while True:
                time.sleep(min(0.5, self._interval))
                # Only when the worker is idle: while questions arrive they flush the
                # buffer themselves, and a second writer would only make them wait.
                if self.pending and time.monotonic() - self._last_add >= self._interval:
                    try:
                        db = dbs.get(self._path) or dbs.setdefault(self._path, connect(self._path))
                        self.flush(db)
                    except storage_errors:
                        pass  # the next round, or the next question, tries again

        threading.Thread(target=run, name="ask-log-flusher", daemon=True).start()

    def add(self, db: sqlite_utils.Database, record: dict[str, Any], *, batch: int = 1,
            max_delay: float = 1.0, path: str | None = None) -> None:
        """Buffer one row; write the buffer when it is full or old enough (also when idle,
        from a background thread, if ``path`` names the database)."""
        if batch > 1 and path:
            self._ensure_flusher(path, max_delay)
        row = tuple(now() if c == "created" else record.get(c) for c in _ASK_COLUMNS)
        code = None
        if row[_TICKET_AT] is not None:
            code = record.get("ticket_code")
            if code is None:
                found = db.execute("select code from tickets where id = ?", [row[_TICKET_AT]]).fetchone()
                code = found[0] if found else None
        with self._lock:
            self._last_add = time.monotonic()
            if not self._rows:
                self._since = self._last_add
            self._rows.append((row, code))
            due = len(self._rows) >= batch or time.monotonic() - self._since >= max_delay
        if due:
            self.flush(db)

    @property
    def pending(self) -> int:
        """Rows waiting to be written."""
        return len(self._rows)

    def flush(self, db: sqlite_utils.Database) -> int:
        """Write every buffered row in one transaction; return how many."""
        with self._lock:
            rows, self._rows = self._rows, []
        if rows:
            try:
                with immediate(db):
                    db.conn.executemany(_ASK_INSERT, [_relinked(db, row, code) for row, code in rows])
            except storage_errors:
                with self._lock:  # keep them for the next try rather than lose them
                    self._rows[:0] = rows
                raise
        return len(rows)


_TICKET_AT = _ASK_COLUMNS.index("ticket_id")


def _relinked(db: sqlite_utils.Database, row: tuple[Any, ...], code: str | None) -> tuple[Any, ...]:
    """An ``asks`` row with the id the database now gives its ticket's code (None if none)."""
    if row[_TICKET_AT] is None:
        return row
    found = db.execute("select id from tickets where code = ?", [code]).fetchone() if code else None
    return (*row[:_TICKET_AT], found[0] if found else None, *row[_TICKET_AT + 1:])


ASK_LOG = AskLog()


def log_ask(db: sqlite_utils.Database, record: dict[str, Any], *, batch: int = 1, max_delay: float = 1.0,
            path: str | None = None) -> None:
    """Append one question to the analytics log (see :class:`AskLog`)."""
    ASK_LOG.add(db, record, batch=batch, max_delay=max_delay, path=path)


# Conversation contexts in Redis (service/session_store.py) when the app configures it,
# else in the database's session_context table.
SESSIONS: Any = None


def use_session_store(store: Any) -> None:
    """Keep conversation contexts in ``store`` (a :class:`session_store.RedisSessions`), or
    in the database when None."""
    global SESSIONS
    SESSIONS = store


def remember_figure(db: sqlite_utils.Database, session: str, ref: str) -> None:
    """Keep the figure a conversation asked about last, for its follow-ups."""
    if SESSIONS is not None:
        SESSIONS.remember(session, ref)
        return
    db.conn.execute("insert into session_context (session, ref, at) values (?, ?, ?) "
                    "on conflict(session) do update set ref = excluded.ref, at = excluded.at",
                    [session, ref, now()])


FOLLOW_UP_WINDOW = timedelta(minutes=30)


def last_figure_ref(db: sqlite_utils.Database, session: str) -> str | None:
    """The ref of the last report figure this session asked about in the last half hour."""
    if SESSIONS is not None:
        return SESSIONS.recall(session)  # type: ignore[no-any-return]
    since = (_now() - FOLLOW_UP_WINDOW).isoformat(timespec="seconds")
    row = db.execute("select ref from session_context where session = ? and at >= ?", [session, since]).fetchone()
    return row[0] if row else None


# -- the citizen's side: lookup with throttling, contact details ----------------------

def clean_code(code: str) -> str:
    """A code as typed (spaces, lower case, O for 0, I or L for 1) in its stored form."""
    text = unicodedata.normalize("NFKC", code or "").upper()
    text = re.sub(r"[\s\-]", "", text)
    return text.translate(str.maketrans({"O": "0", "I": "1", "L": "1"}))


def lookup_keys(code: str, client: str | None) -> list[str]:
    """The throttle keys of one lookup: the client (an IPv6 client by its /64), and (when
    the code is well formed) the ticket code and the code from this client."""
    who = client_key(client)
    keys = [f"ip:{who}"]
    if _CODE_RE.match(code):
        keys += [f"code:{code}", f"pair:{code}|{who}"]
    return keys


def _lock_length(failures: int) -> timedelta:
    if failures < LOOKUP_MAX_FAILURES:
        return timedelta(0)
    # The exponent is capped before it is used: 2**37 quarter-hours overflow a timedelta,
    # and a lock that raised would count no failure at all.
    doublings = min(failures - LOOKUP_MAX_FAILURES, 16)
    return min(LOOKUP_LOCK * 2 ** doublings, LOOKUP_LOCK_CAP)


def lookup_wait(db: sqlite_utils.Database, keys: Iterable[str], at: datetime | None = None) -> int:
    """Seconds until these keys may try again (0: now)."""
    at = at or _now()
    wait = 0.0
    for key in keys:
        row = db.execute("select failures, last_at from ticket_lookups where key = ?", [key]).fetchone()
        if row and row[0] >= LOOKUP_MAX_FAILURES:
            until = datetime.fromisoformat(row[1]) + _lock_length(row[0])
            wait = max(wait, (until - at).total_seconds())
    return math.ceil(wait)


def _failure_count(db: sqlite_utils.Database, key: str) -> int:
    row = db.execute("select failures from ticket_lookups where key = ?", [key]).fetchone()
    return int(row[0]) if row else 0


def record_lookup_failure(db: sqlite_utils.Database, keys: Iterable[str], at: datetime | None = None) -> None:
    """Count a wrong code or password against each key.

    Below the limit, ``last_at`` is the start of the current window; at the limit it is
    when the lock began. A failure after a lock ran out locks again, twice as long.
    """
    at = at or _now()
    with immediate(db):
        db.execute("delete from ticket_lookups where last_at < ?", [_stamp(at - LOOKUP_FORGET - LOOKUP_LOCK_CAP)])
        for key in keys:
            row = db.execute("select failures, last_at from ticket_lookups where key = ?", [key]).fetchone()
            failures, since = (row[0], datetime.fromisoformat(row[1])) if row else (0, at)
            if failures < LOOKUP_MAX_FAILURES and at - since > LOOKUP_WINDOW:
                failures, since = 0, at
            elif failures >= LOOKUP_MAX_FAILURES and at - since > _lock_length(failures) + LOOKUP_FORGET:
                failures, since = 0, at
            failures += 1
            if failures >= LOOKUP_MAX_FAILURES:
                since = at
            db.execute("insert into ticket_lookups (key, failures, last_at) values (?, ?, ?) "
                       "on conflict(key) do update set failures = excluded.failures, last_at = excluded.last_at",
                       [key, failures, _stamp(since)])


_DUMMY_HASH: list[str] = []


def _dummy_check(password: str) -> None:
    # Same cost as a real check, so the time taken does not tell whether a code exists.
    if not _DUMMY_HASH:
        _DUMMY_HASH.append(generate_password_hash(secrets.token_hex(8)))
    check_password_hash(_DUMMY_HASH[0], password)


def citizen_ticket(db: sqlite_utils.Database, code: str, password: str, client: str | None,
                   at: datetime | None = None, secret: str | bytes | None = None) -> dict[str, Any]:
    """The ticket for this code and password, or :class:`TicketError` / :class:`LookupThrottled`.

    A wrong code and a wrong password fail alike. Failures count per ticket code and per
    client address; a success clears the code's count (not the client's, so looking up
    one's own ticket does not buy more guesses at others).
    """
    code = clean_code(code)
    password = re.sub(r"\s", "", unicodedata.normalize("NFKC", password or ""))[:64]
    keys = lookup_keys(code, client)
    # A client that keeps failing is stopped, and so is a client failing on one ticket. A
    # ticket whose code is under attack (failures from many clients) is closed to every
    # client that has failed on it, but not to one that has not: its owner, typing the
    # right password, is never locked out by strangers; a botnet gets one guess per address.
    own = [k for k in keys if not k.startswith("code:")]
    wait = lookup_wait(db, own, at)
    if len(keys) == 3 and _failure_count(db, keys[2]) > 0:
        wait = max(wait, lookup_wait(db, [keys[1]], at))
    if wait > 0:
        raise LookupThrottled(wait)
    rows = list(db.query("select * from tickets where code = ?", [code])) if _CODE_RE.match(code) else []
    ticket = dict(rows[0]) if rows else None
    if ticket is None or not ticket.get("password_hash") or not password:
        if not secret:
            _dummy_check(password)
        ok = False
    else:
        ok = password_matches(ticket["password_hash"], code, password, secret)
    if not ok:
        record_lookup_failure(db, keys, at)
        raise TicketError(WRONG_CREDENTIALS, 403)
    db.execute("delete from ticket_lookups where key in (?, ?)", keys[1:])
    if needs_rehash(ticket["password_hash"], secret):  # made under a retired key
        db.execute("update tickets set password_hash = ? where id = ?",
                   [password_digest(code, password, secret), ticket["id"]])
    return ticket


_MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")
_LANDLINE_RE = re.compile(r"^0\d{2,3}-?\d{7,8}(?:-\d{1,6})?$")
_EMAIL_RE = re.compile(r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,}$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def clean_phone(phone: str) -> str:
    """A mainland mobile number (13812345678) or a landline with its area code
    (010-12345678, ext. allowed), in a tidy form; raise :class:`TicketError` otherwise."""
    text = unicodedata.normalize("NFKC", phone).strip()
    text = re.sub(r"[\s()（）]+", "-", text).strip("-")
    text = re.sub(r"-{2,}", "-", text)
    digits = text.replace("-", "")
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if _MOBILE_RE.match(digits):
        return digits
    if _LANDLINE_RE.match(text):
        return text
    raise TicketError("电话号码格式不正确：请填写11位手机号码，或带区号的固定电话（如010-12345678）。")


def clean_contact(name: Any, phone: Any, email: Any) -> dict[str, str | None]:
    """Validate what a citizen left: a name (optional, at most 40 characters) and a phone
    number or an email address (at least one)."""
    values = {}
    for field, value in (("name", name), ("phone", phone), ("email", email)):
        if value is not None and not isinstance(value, str):
            raise TicketError("联系方式格式不正确。")
        values[field] = unicodedata.normalize("NFKC", value or "").strip()
    if len(values["name"]) > MAX_NAME:
        raise TicketError(f"姓名不能超过{MAX_NAME}个字。")
    if _CONTROL_RE.search(values["name"]):
        raise TicketError("姓名中含有无法识别的字符。")
    if not values["phone"] and not values["email"]:
        raise TicketError("请至少填写手机号码、固定电话或电子邮箱中的一项。")
    phone = clean_phone(values["phone"]) if values["phone"] else None
    email = values["email"] or None
    if email is not None and (len(email) > MAX_EMAIL or not _EMAIL_RE.match(email)):
        raise TicketError("电子邮箱格式不正确，请检查后重新填写。")
    return {"name": values["name"] or None, "phone": phone, "email": email}


def save_contact(db: sqlite_utils.Database, ticket_id: int, contact: dict[str, str | None]) -> None:
    """Store a citizen's contact details (replacing earlier ones).

    A ticket waiting for the citizen goes back to the reviewers. The event says only that
    details were left, never what they are.
    """
    with immediate(db):
        status = db.execute("select status from tickets where id = ?", [ticket_id]).fetchone()[0]
        db.execute("update tickets set contact_name = ?, contact_phone = ?, contact_email = ?, status = ?, "
                   "updated = ? where id = ?",
                   [contact["name"], contact["phone"], contact["email"],
                    "in_progress" if status == "waiting" else status, now(), ticket_id])
        _event(db, ticket_id, None, "contact", "状态改为“处理中”" if status == "waiting" else "")


def mask_phone(phone: str | None) -> str:
    """13800000000 -> 138****0000; a landline keeps its area code and last four digits."""
    if not phone:
        return ""
    if _MOBILE_RE.match(phone):
        return phone[:3] + "****" + phone[-4:]
    head, _, rest = phone.partition("-")
    if rest:
        return head + "-****" + rest[-4:]
    return phone[:3] + "****" + phone[-4:]


def mask_name(name: str | None) -> str:
    """张三丰 -> 张**."""
    if not name:
        return ""
    return name[:1] + "*" * min(2, max(1, len(name) - 1))


def mask_email(email: str | None) -> str:
    """zhang.san@example.cn -> z***@example.cn."""
    if not email or "@" not in email:
        return ""
    local, _, domain = email.partition("@")
    return local[:1] + "***@" + domain


# -- the reviewers' queue and ticket page ----------------------------------------------

# Tickets with the same normalised question form a group (an empty normalisation groups
# nothing). ``tickets.grp`` is a ticket's group key, ``ticket_groups`` holds each group's
# counts and ``ticket_counts`` the number of tickets in each status, all kept by the
# database itself (migration 0009_ticket_queue), so that no list has to aggregate over
# every ticket when it is read.
OPEN_SQL = "status in ('new', 'in_progress', 'waiting')"  # word for word as in the partial indexes
TICKET_KINDS = ("inquiry", "application")
SIMILAR_SHOWN = 100  # open tickets of the same question offered to answer together
EVENTS_SHOWN = 200  # a ticket asked again and again gets an event each time
# With at most this many tickets to list from the groups asked often enough, the queue
# reads those groups first and sorts their tickets; with more, it walks the tickets in
# order and checks each one's group, as the matches then fill a page soon.
SPARSE_GROUPS = 20_000
_COLUMNS = ("t.id, t.code, t.question, t.status, t.created, t.asked_count, t.contact_name, t.contact_phone, "
            "t.contact_email, t.kind, t.received_on, t.supplement_requested_on, t.supplement_received_on, "
            "t.extension_days, t.extension_reason, t.outcome, t.due_on, t.assigned_to, u.username as assignee, "
            "g.same_count, g.asked_total, g.open_count")
_KIND_SQL = "('inquiry', 'application')"
# Conditions on ids, so that a walk along an index need not read the tickets themselves:
# not classified by a reviewer; not an application whose clock runs (or is overdue).
_UNCLASSIFIED = f"t.id not in (select id from tickets indexed by tickets_kind_status where kind in {_KIND_SQL})"
_RUNNING = "t.due_on is not null and t.outcome is null"
_NOT_RUNNING = ("t.id not in (select id from tickets indexed by tickets_running_due "
                "where due_on is not null and outcome is null)")
_OVERDUE = "t.due_on < ? and t.outcome is null"
_NOT_OVERDUE = "t.id not in (select id from tickets indexed by tickets_running_due where due_on < ? and outcome is null)"


# One row per open question: an open ticket is listed only if no earlier open ticket of
# its group and type is (applications are each listed: each has its own statutory clock).
MERGED_SQL = (f"(t.kind is 'application' or not exists (select 1 from tickets o indexed by tickets_open_grp "
              f"where o.grp = t.grp and o.{OPEN_SQL} and o.id < t.id and o.kind is t.kind))")


class _Part:
    """A stretch of the queue: the tickets matching ``condition`` (with ``params``), read from
    the index of running applications when ``running``, sorted by ``keys``; ``size`` of them."""

    def __init__(self, condition: str | None, params: list[Any], running: bool, keys: tuple[str, str],
                 ascending: bool):
        self.condition, self.params, self.running = condition, params, running
        self.keys, self.ascending, self.size = keys, ascending, 0


class _Queue:
    """The filters of one queue request, and how to count and read them from indexes.

    Every read names its index (``indexed by``) and its join order (``cross join``): left
    to itself, the planner chose to sort every ticket for some of the filters. A page is
    read in two steps: the ids along an index (with limit and offset), then those rows.
    """

    def __init__(self, db: sqlite_utils.Database, status: str, kind: str, min_asked: int,
                 assignee: int | None = None, merged: bool = False):
        self.db = db
        self.where: list[str] = []
        self.params: list[Any] = []
        # With filters of their own (one reviewer's tickets, one row per open question)
        # the counts are read from the rows rather than from the kept totals.
        self.narrowed = assignee is not None or (merged and status == "open")
        self.merged_all = merged and status == "open" and assignee is None
        if status == "open":
            self.where.append("t." + OPEN_SQL)
            self.source, self.statuses = "tickets_open_created", list(OPEN_STATUSES)
        elif status in STATUSES:
            self.where.append("t.status = ?")
            self.params.append(status)
            self.source, self.statuses = "tickets_status_created", [status]
        else:
            self.source, self.statuses = "tickets_created", list(STATUSES)
        self.kind = kind if kind in (*TICKET_KINDS, "unclassified") else "all"
        if self.kind in TICKET_KINDS:  # tickets reviewers classified: few, whatever the status
            self.source = "tickets_kind_created"
        if assignee is not None:  # one reviewer's tickets: few, whatever the status
            self.where.append("t.assigned_to = ?")
            self.params.append(assignee)
            self.source = "tickets_assignee_created"
        if merged and status == "open":
            self.where.append(MERGED_SQL)
        self.min_asked = max(1, min_asked)
        # Every group was asked at least once, unless rows were written by hand.
        self.grouped = self.min_asked > 1 or db.execute(
            "select 1 from ticket_groups where asked_total < ? limit 1", [self.min_asked]).fetchone() is not None

    def _where(self, kind: str, part: _Part | None = None) -> tuple[str, list[Any]]:
        where, params = list(self.where), list(self.params)
        if kind in TICKET_KINDS:
            where.append("t.kind = ?")
            params.append(kind)
        elif kind == "unclassified":
            where.append(_UNCLASSIFIED)
        elif kind == "classified":
            where.append(f"t.kind in {_KIND_SQL}")
        if part is not None and part.condition:
            where.append(part.condition)
            params += part.params
        return ("where " + " and ".join(where) + " " if where else ""), params

    def _from(self, source: str, *, sparse: bool = False) -> tuple[str, list[Any]]:
        """Tickets read from ``source`` in its order, with the groups asked often enough; or,
        ``sparse``, those groups first and their tickets."""
        if not self.grouped:
            return f"from tickets t indexed by {source} ", []
        if sparse:
            return ("from ticket_groups g indexed by ticket_groups_asked cross join tickets t "
                    "indexed by tickets_grp_status on t.grp = g.grp and g.asked_total >= ? "), [self.min_asked]
        return (f"from tickets t indexed by {source} cross join ticket_groups g "
                "on g.grp = t.grp and g.asked_total >= ? "), [self.min_asked]

    def _count(self, source: str, kind: str, part: _Part | None = None, *, sparse: bool = False) -> int:
        sql_from, from_params = self._from(source, sparse=sparse)
        clause, params = self._where(kind, part)
        return int(self.db.execute("select count(*) " + sql_from + clause, [*from_params, *params]).fetchone()[0])

    def count(self, part: _Part | None = None) -> int:
        """How many tickets match (within ``part``, a stretch of running applications)."""
        if part is not None:
            return self._count("tickets_running_due", self.kind, part)
        if self.merged_all and self.kind == "all" and not self.grouped:
            return self._merged_count()
        if self.narrowed:
            return self._count(self.source, self.kind)
        if self.kind in TICKET_KINDS:
            return self._count("tickets_kind_status", self.kind)
        if not self.grouped:  # kept by the database as tickets come and change status
            every = int(self.db.execute(
                f"select coalesce(sum(n), 0) from ticket_counts where status in ({', '.join('?' * len(self.statuses))})",
                self.statuses).fetchone()[0])
        elif self.source != "tickets_status_created":  # the groups know how many (open) tickets they hold
            column = "same_count" if self.source == "tickets_created" else "open_count"
            every = int(self.db.execute(f"select coalesce(sum({column}), 0) from ticket_groups indexed by "
                                        "ticket_groups_asked where asked_total >= ?", [self.min_asked]).fetchone()[0])
        else:
            every = self._count(self.source, "all", sparse=True)
        if self.kind == "unclassified":  # all but those reviewers classified, which are few
            every -= self._count("tickets_kind_status", "classified")
        return every

    def _merged_count(self) -> int:
        """How many rows the merged open queue has, from the groups' kept counts and the few
        tickets reviewers classified: a group with open tickets is one row, unless all of
        them are classified; its open inquiries one more; each open application one."""
        groups = int(self.db.execute("select count(*) from ticket_groups indexed by ticket_groups_asked "
                                     "where open_count > 0").fetchone()[0])
        classified: dict[str, dict[str, int]] = {}
        for grp, kind, n in self.db.execute(
                f"select grp, kind, count(*) from tickets indexed by tickets_kind_status where kind in {_KIND_SQL} "
                f"and {OPEN_SQL} group by grp, kind"):
            classified.setdefault(grp, {})[kind] = n
        total = groups
        for grp, kinds in classified.items():
            open_count = self.db.execute("select open_count from ticket_groups where grp = ?", [grp]).fetchone()[0]
            if open_count == sum(kinds.values()):  # no unclassified open ticket: no row for them
                total -= 1
            total += (1 if kinds.get("inquiry") else 0) + kinds.get("application", 0)
        return total

    def rows(self, part: _Part, offset: int, limit: int) -> list[dict[str, Any]]:
        """``limit`` rows of ``part`` from ``offset``. Past its middle a part is read from the
        other end, so that its last page costs what its first does."""
        limit = min(limit, part.size - offset)
        if limit <= 0:
            return []
        backwards = offset > part.size // 2
        if backwards:
            offset = part.size - offset - limit
        direction = "asc" if part.ascending != backwards else "desc"
        if part.running:
            sql_from, from_params = self._from("tickets_running_due")
        else:
            sparse = (self.grouped and self.source not in ("tickets_kind_created", "tickets_assignee_created")
                      and part.size <= SPARSE_GROUPS)
            sql_from, from_params = self._from(self.source, sparse=sparse)
        clause, params = self._where(self.kind, part)
        ids = [r[0] for r in self.db.execute(
            "select t.id " + sql_from + clause + f"order by {part.keys[0]} {direction}, {part.keys[1]} {direction} "
            "limit ? offset ?", [*from_params, *params, limit, offset])]
        found = {r["id"]: dict(r) for r in self.db.query(
            f"select {_COLUMNS} from tickets t cross join ticket_groups g on g.grp = t.grp "
            f"left join users u on u.id = t.assigned_to where t.id in ({', '.join('?' * len(ids))})", ids)}
        rows = [found[i] for i in ids if i in found]
        return rows[::-1] if backwards else rows


def queue(db: sqlite_utils.Database, *, status: str = "open", min_asked: int = 1, order: str = "newest",
          kind: str = "all", today: str | None = None, page: int = 1,
          per_page: int = PAGE_SIZE, assignee: int | None = None,
          merged: bool = False) -> tuple[list[dict[str, Any]], int]:
    """One page of tickets and the number of tickets matching.

    ``status``: a key of :data:`STATUSES`, ``open`` (not answered or closed) or ``all``.
    ``kind``: ``inquiry``, ``application``, ``unclassified`` (neither) or ``all``.
    ``min_asked``: how often the question was asked at least, over all sessions (the sum
    of ``asked_count`` over the tickets sharing the normalised question).
    ``order``: ``newest`` or ``oldest`` first by the time asked; or ``due``: applications
    whose reply clock runs, the earliest deadline first, then the others newest first.
    ``today`` (an ISO date): applications overdue on that day (due before it, without an
    outcome) come first, in the chosen order, then the others.
    ``assignee``: only the tickets given to this user id (我的工单).
    ``merged`` (with ``status="open"``): one row per open question, its earliest open
    ticket, whose ``open_count`` says how many open tickets share the question; the total
    then counts those rows.

    Each stretch is read in order from an index and paged in SQL; the counts come from
    ``ticket_counts``, ``ticket_groups`` and indexes, never from grouping every ticket.
    """
    q = _Queue(db, status, kind, min_asked, assignee, merged)
    total = q.count()
    by_time = ("t.created", "t.id")
    if order == "due":
        first = _Part(_RUNNING, [], True, ("t.due_on", "t.id"), True)
        rest = _Part(_NOT_RUNNING, [], False, by_time, False)
    elif today:
        first = _Part(_OVERDUE, [today], True, by_time, order == "oldest")
        rest = _Part(_NOT_OVERDUE, [today], False, by_time, order == "oldest")
    else:
        first, rest = None, _Part(None, [], False, by_time, order == "oldest")
    parts = [rest]
    if first is not None:
        first.size = q.count(first)
        parts.insert(0, first)
    rest.size = total - (first.size if first else 0)
    offset, rows = (max(1, page) - 1) * per_page, []
    for part in parts:
        if len(rows) < per_page and offset < part.size:
            rows += q.rows(part, offset, per_page - len(rows))
        offset = max(0, offset - part.size)
    return rows, total


def get_ticket(db: sqlite_utils.Database, ticket_id: int) -> dict[str, Any]:
    """A ticket with its assignee's and replier's names and its group's counts
    (``same_count``, ``asked_total``, ``open_count``); :class:`TicketNotFound` otherwise."""
    rows = list(db.query(
        "select t.*, a.username as assignee, r.username as replier, g.same_count, g.asked_total, g.open_count "
        "from tickets t join ticket_groups g on g.grp = t.grp "
        "left join users a on a.id = t.assigned_to left join users r on r.id = t.replied_by "
        "where t.id = ?", [ticket_id]))
    if not rows:
        raise TicketNotFound()
    return dict(rows[0])


def similar_open(db: sqlite_utils.Database, ticket: dict[str, Any], limit: int | None = None) -> list[dict[str, Any]]:
    """The first ``limit`` (:data:`SIMILAR_SHOWN`) other tickets with the same normalised
    question that still wait for an answer, oldest first (``open_count`` of
    :func:`get_ticket` says how many there are)."""
    if not ticket.get("normalised"):
        return []
    # An application is never answered with a group: it is closed through its own workflow.
    return [dict(r) for r in db.query(
        "select id, code, question, status, created, asked_count from tickets t indexed by tickets_open_grp "
        f"where t.grp = ? and t.{OPEN_SQL} and t.id != ? and t.kind is not 'application' order by t.id limit ?",
        [ticket["normalised"], ticket["id"], limit or SIMILAR_SHOWN])]


def similar_open_count(db: sqlite_utils.Database, ticket: dict[str, Any]) -> int:
    """How many other open inquiries share the ticket's question (what one reply can answer)."""
    if not ticket.get("normalised"):
        return 0
    return int(db.execute(
        f"select count(*) from tickets indexed by tickets_open_grp where grp = ? and {OPEN_SQL} and id != ? "
        "and kind is not 'application'", [ticket["normalised"], ticket["id"]]).fetchone()[0])


def session_history(db: sqlite_utils.Database, ticket: dict[str, Any], limit: int = 20) -> list[dict[str, Any]]:
    """What the same chat session asked before the ticket was opened (oldest first)."""
    if not ticket.get("session"):
        return []
    first = db.execute("select min(id) from asks where ticket_id = ?", [ticket["id"]]).fetchone()[0]
    if first is not None:
        cond, bound = "id < ?", first
    else:
        cond, bound = "created <= ?", ticket["created"]
    rows = db.query(f"select created, question, status from asks where session = ? and {cond} "
                    "order by id desc limit ?", [ticket["session"], bound, limit])
    return list(reversed([dict(r) for r in rows]))


def resolve_candidates(db: sqlite_utils.Database, candidates_json: str | None) -> list[dict[str, Any]]:
    """The matcher's candidates when it gave up, each with a readable label."""
    try:
        candidates = json.loads(candidates_json or "[]")
    except ValueError:
        return []
    out = []
    for cand in candidates if isinstance(candidates, list) else []:
        if not isinstance(cand, dict):
            continue
        kind, _, ref = str(cand.get("key", "")).partition(":")
        label, entry_id = "", None
        if kind == "faq" and is_number(ref):
            row = db.execute("select question, status from entries where id = ?", [int(ref)]).fetchone()
            entry_id = int(ref)
            label = row[0] + ("" if row[1] == "published" else "（未发布）") if row else "（条目已不存在）"
        elif kind == "passage" and is_number(ref):
            row = db.execute("select text from passages where id = ?", [int(ref)]).fetchone()
            label = f"年度报告正文：{row[0][:60]}" if row else "（段落已不存在）"
        elif kind == "row":
            row = db.execute("select row_label from facts where row_key = ? limit 1", [ref]).fetchone()
            label = f"年度报告数据：{row[0] if row else ref}"
        out.append({**cand, "label": label or str(cand.get("key", "")), "entry_id": entry_id})
    return out


def events(db: sqlite_utils.Database, ticket_id: int, limit: int | None = None) -> list[dict[str, Any]]:
    """A ticket's last ``limit`` (:data:`EVENTS_SHOWN`) events, oldest first (see :func:`event_count`)."""
    rows = db.query("select * from ticket_events where ticket_id = ? order by id desc limit ?",
                    [ticket_id, limit or EVENTS_SHOWN])
    return [dict(r, label=ACTIONS.get(r["action"], r["action"])) for r in rows][::-1]


def event_count(db: sqlite_utils.Database, ticket_id: int) -> int:
    """How many events a ticket has (each repeated question adds one)."""
    return int(db.execute("select count(*) from ticket_events where ticket_id = ?", [ticket_id]).fetchone()[0])


def search_entries(db: sqlite_utils.Database, text: str, limit: int = 20) -> list[dict[str, Any]]:
    """Published FAQ entries with this id, or whose question or an alternate contains every
    word of ``text`` (words separated by spaces)."""
    words = text.split()[:5]
    if not words:
        return []
    where, params = [], []
    for word in words:
        like = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append("(question like ? escape '\\' or id in "
                     "(select entry_id from alternates where text like ? escape '\\'))")
        params += [like, like]
    return [dict(r) for r in db.query(
        f"select id, question, category from entries where status = 'published' and "
        f"(cast(id as text) = ? or ({' and '.join(where)})) order by id limit ?",
        [text.strip(), *params, limit])]


# -- the reviewers' actions ---------------------------------------------------------------

def _event(db: sqlite_utils.Database, ticket_id: int, user: dict[str, Any] | None, action: str,
           detail: str) -> None:
    db.execute("insert into ticket_events (ticket_id, at, user_id, username, action, detail) "
               "values (?, ?, ?, ?, ?, ?)",
               [ticket_id, now(), user["id"] if user else None, user["username"] if user else CITIZEN,
                action, detail])


def _state(db: sqlite_utils.Database, ticket_id: int) -> dict[str, Any]:
    """The reviewable state of a ticket: what the audit log records (no contact details)."""
    row = db.execute("select id, code, status, assigned_to, reply, replied_at, replied_by, closed_at "
                     "from tickets where id = ?", [ticket_id]).fetchone()
    if row is None:
        raise TicketNotFound()
    return dict(zip(("id", "code", "status", "assigned_to", "reply", "replied_at", "replied_by",
                     "closed_at"), row))


def _update(db: sqlite_utils.Database, user: dict[str, Any], action: str, ticket_id: int,
            changes: dict[str, Any], detail: str) -> None:
    before = _state(db, ticket_id)
    changes = dict(changes, updated=now())
    db.execute(f"update tickets set {', '.join(f'{k} = ?' for k in changes)} where id = ?",
               [*changes.values(), ticket_id])
    _event(db, ticket_id, user, action, detail)
    audit(db, user, f"ticket_{action}", f"ticket:{ticket_id}", before=before, after=_state(db, ticket_id))


def take(db: sqlite_utils.Database, ticket_id: int, user: dict[str, Any]) -> None:
    """Assign the ticket to ``user`` and mark it in progress."""
    with immediate(db):
        state = _state(db, ticket_id)
        if state["status"] == "closed":
            raise TicketError("工单已关闭，如需继续处理，请先将状态改为“处理中”。")
        if state["assigned_to"] == user["id"] and state["status"] == "in_progress":
            raise TicketError("您已在处理这张工单。")
        previous = db.execute("select username from users where id = ?", [state["assigned_to"]]).fetchone() \
            if state["assigned_to"] else None
        detail = f"从 {previous[0]} 转为 {user['username']} 处理" if previous and previous[0] != user["username"] else ""
        _update(db, user, "take", ticket_id, {"assigned_to": user["id"], "status": "in_progress",
                                              "closed_at": None}, detail)


def assign(db: sqlite_utils.Database, ticket_id: int, user: dict[str, Any], assignee_id: int) -> str:
    """Give the ticket to another reviewer (or admin); return their username."""
    with immediate(db):
        state = _state(db, ticket_id)
        row = db.execute("select username, role, active from users where id = ?", [assignee_id]).fetchone()
        if row is None or row[1] not in ("reviewer", "admin") or not row[2]:
            raise TicketError("请选择一位办理工单的工作人员。")
        if state["status"] == "closed":
            raise TicketError("工单已关闭，如需继续处理，请先将状态改为“处理中”。")
        if state["assigned_to"] == assignee_id:
            raise TicketError(f"工单已由 {row[0]} 处理。")
        changes: dict[str, Any] = {"assigned_to": assignee_id}
        if state["status"] == "new":
            changes["status"] = "in_progress"
        _update(db, user, "assign", ticket_id, changes, f"分派给 {row[0]}")
    return str(row[0])


def assignees(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """The staff who may be given tickets: reviewers and admins, by name."""
    return [dict(r) for r in db.query(
        "select id, username from users where role in ('reviewer', 'admin') and active = 1 order by username")]


def group_emails(db: sqlite_utils.Database, ticket_ids: Iterable[int]) -> list[tuple[int, str, str]]:
    """(id, code, e-mail address) of those tickets whose citizen left an address."""
    ids = list(ticket_ids)
    if not ids:
        return []
    return [(r[0], r[1], r[2]) for r in db.execute(
        f"select id, code, contact_email from tickets where id in ({', '.join('?' * len(ids))}) "
        "and contact_email is not null and contact_email != ''", ids)]


def clean_reply(text: Any) -> str:
    """A reply's text: not empty, at most :data:`MAX_REPLY` characters."""
    text = unicodedata.normalize("NFC", text if isinstance(text, str) else "").replace("\r\n", "\n").strip()
    if not text:
        raise TicketError("请填写答复内容。")
    if len(text) > MAX_REPLY:
        raise TicketError(f"答复内容不能超过{MAX_REPLY}字（当前{len(text)}字）。")
    return text.replace("\x00", "")


def reply(db: sqlite_utils.Database, ticket_id: int, user: dict[str, Any], text: str,
          also: Iterable[int] = (), *, whole_group: bool = False) -> list[int]:
    """Answer the ticket, and with the same text those of ``also`` that share its question and
    are still open (others are left alone); with ``whole_group``, every open inquiry that
    shares its question (each citizen reads it under their own code and password).
    Returns the ids answered."""
    text = clean_reply(text)
    with immediate(db):
        ticket = get_ticket(db, ticket_id)
        _refuse_if_decided(db, ticket_id)
        if whole_group and ticket.get("normalised"):
            together = [r[0] for r in db.execute(
                f"select id from tickets indexed by tickets_open_grp where grp = ? and {OPEN_SQL} and id != ? "
                "and kind is not 'application' order by id", [ticket["grp"], ticket_id])]
        else:
            similar = {t["id"] for t in similar_open(db, ticket)}
            together = [i for i in dict.fromkeys(also) if i in similar]
        stamp = now()
        for i in [ticket_id, *together]:
            assigned = db.execute("select assigned_to from tickets where id = ?", [i]).fetchone()[0]
            note = f"（与工单 {display_code(ticket['code'])} 一并答复）\n" if i != ticket_id else ""
            _update(db, user, "reply", i, {
                "reply": text, "replied_at": stamp, "replied_by": user["id"], "status": "answered",
                "assigned_to": assigned or user["id"], "closed_at": None}, note + text)
    return [ticket_id, *together]


def _refuse_if_decided(db: sqlite_utils.Database, ticket_id: int) -> None:
    """A disclosure application closed with an outcome is final: it counts in table 三."""
    row = db.execute("select outcome from tickets where id = ?", [ticket_id]).fetchone()
    if row and row[0]:
        raise TicketError("该政府信息公开申请已办结并记录了办理结果，不能再修改状态或答复。")


def set_status(db: sqlite_utils.Database, ticket_id: int, user: dict[str, Any], status: str,
               note: str = "") -> None:
    """Move the ticket to ``status``, with an optional note for the history."""
    if status not in STATUSES:
        raise TicketError("状态无效。")
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise TicketError(f"备注不能超过{MAX_NOTE}字。")
    with immediate(db):
        state = _state(db, ticket_id)
        _refuse_if_decided(db, ticket_id)
        if state["status"] == status:
            raise TicketError(f"工单已是“{STATUSES[status]}”状态。")
        if status == "answered" and not state["reply"]:
            raise TicketError("工单还没有答复内容，请先填写答复。")
        detail = f"{STATUSES[state['status']]} → {STATUSES[status]}" + (f"：{note}" if note else "")
        action = "close" if status == "closed" else "status"
        _update(db, user, action, ticket_id,
                {"status": status, "closed_at": now() if status == "closed" else None}, detail)


def close(db: sqlite_utils.Database, ticket_id: int, user: dict[str, Any], note: str = "") -> None:
    """Close the ticket."""
    set_status(db, ticket_id, user, "closed", note)


def _same_text(a: str, b: str) -> bool:
    """Whether two phrasings are the same question (punctuation, spaces and case aside),
    as the FAQ curation compares them."""
    return _PUNCT_RE.sub("", clean(a)) == _PUNCT_RE.sub("", clean(b))


def _entry_key(db: sqlite_utils.Database, code: str) -> str:
    base = f"ticket-{code.lower()}"
    key, n = base, 1
    while db.execute("select 1 from entries where key = ?", [key]).fetchone():
        n += 1
        key = f"{base}-{n}"
    return key


def _shared_warnings(db: sqlite_utils.Database, text: str, entry_id: int) -> list[str]:
    return [f"注意：条目 {o['id']}“{o['question']}”也有相同的问法，群众这样问时可能得到其中任一条的答案或被要求澄清。"
            for o in faq.shared_phrasings(db, text, entry_id)]


def promote_new(db: sqlite_utils.Database, ticket_id: int, user: dict[str, Any], *, question: str,
                answer: str, category: str = "", source: str = "", publish: bool = False) -> tuple[int, list[str]]:
    """Make a new FAQ entry from a ticket: a draft that a curator reviews and publishes, or
    (``publish``, an admin where the config allows it) a published entry. The citizen's
    wording becomes an alternate when it differs from the canonical question. Returns the
    entry id and warnings.

    Written here rather than through :func:`service.faq.create_entry` so the entry, the
    alternate and the ticket's history are one transaction; the fields are checked by the
    same rules (:func:`service.faq.validate_entry`).
    """
    status = "published" if publish else "draft"
    try:
        fields = faq.validate_entry({"question": question, "answer": answer, "source": source,
                                     "category": (category or "").strip() or "其他", "status": status},
                                    new=True)
    except faq.InvalidEntry as exc:
        raise TicketError(str(exc)) from exc
    warnings: list[str] = []
    with immediate(db):
        ticket = get_ticket(db, ticket_id)
        for row in db.execute("select id, question from entries where status != 'archived'").fetchall():
            if _same_text(row[1], fields["question"]):
                raise TicketError(f"已有相同问法的常见问题（条目 {row[0]}），请改为添加相似问法。")
        stamp = now()
        entry = {**fields, "key": _entry_key(db, ticket["code"]), "version": 1, "created": stamp, "updated": stamp}
        entry_id = int(db["entries"].insert(entry).last_pk)
        alternate = " ".join(ticket["question"].split())
        alternates = []
        if _same_text(alternate, fields["question"]):
            pass
        elif len(alternate) > faq.MAX_ALTERNATE:
            warnings.append(f"群众的原话超过{faq.MAX_ALTERNATE}字，未作为相似问法加入。")
        else:
            alternates.append(alternate)
            db["alternates"].insert({"entry_id": entry_id, "text": alternate, "created": stamp})
        faq.record_version(db, user, entry_id, "create_entry")  # the entry's history starts here
        bump_version(db, "entries", [entry_id])
        state = "" if publish else "（草稿，待编辑发布）"
        _event(db, ticket_id, user, "promote_new", f"常见问题条目 {entry_id}{state}：{fields['question']}")
        audit(db, user, "create_entry", f"entry:{entry_id}",
              after={**{k: entry[k] for k in ("key", *faq.EDITABLE, "version")}, "alternates": alternates,
                     "from_ticket": ticket["code"]})
    # After the commit (a scan of every phrasing: seconds at 100,000 entries).
    for alternate in alternates:
        warnings += _shared_warnings(db, alternate, entry_id)
    return entry_id, warnings


def promote_alternate(db: sqlite_utils.Database, ticket_id: int, user: dict[str, Any], entry_id: int) -> list[str]:
    """Add the ticket's question as another phrasing of a published FAQ entry; return warnings."""
    with immediate(db):
        ticket = get_ticket(db, ticket_id)
        row = db.execute("select question, status from entries where id = ?", [entry_id]).fetchone()
        if row is None:
            raise TicketError(f"常见问题条目 {entry_id} 不存在。", 404)
        question, status = row
        if status != "published":
            raise TicketError(f"条目 {entry_id} 未发布，不能添加相似问法。")
        text = " ".join(ticket["question"].split())
        if len(text) > faq.MAX_ALTERNATE:
            raise TicketError(f"群众的问题超过{faq.MAX_ALTERNATE}字，不能作为相似问法；请新建常见问题并概括标准问法。")
        texts = [question, *(r[0] for r in db.execute("select text from alternates where entry_id = ?", [entry_id]))]
        if any(_same_text(text, t) for t in texts):
            raise TicketError(f"条目 {entry_id} 已有这个问法。")
        stamp = now()
        before = faq.snapshot(db, entry_id)
        alt_id = db["alternates"].insert({"entry_id": entry_id, "text": text, "created": stamp}).last_pk
        db.execute("update entries set version = version + 1, updated = ? where id = ?", [stamp, entry_id])
        faq.record_version(db, user, entry_id, "add_alternate", before)
        bump_version(db, "entries", [entry_id])
        _event(db, ticket_id, user, "promote_alternate", f"常见问题条目 {entry_id}：{question}")
        audit(db, user, "add_alternate", f"entry:{entry_id}",
              after={"id": alt_id, "text": text, "from_ticket": ticket["code"]})
    return _shared_warnings(db, text, entry_id)  # after the commit


BEIJING = "Asia/Shanghai"
# The zone of callers that name none (lists and exports outside the review pages): set
# from the app's ``TIME_ZONE`` when the review blueprint is registered.
_default_zone = [BEIJING]


def set_default_time_zone(name: str | None) -> None:
    """Make ``name`` the zone of :func:`display_time` calls that name none."""
    _default_zone[0] = name or BEIJING


def time_zone(name: str | None = None) -> tzinfo:
    """The zone named ``name`` (an IANA name such as ``Asia/Shanghai``), else the default;
    Beijing time when the name is unknown, so that a typo in the config hides no time."""
    try:
        return ZoneInfo(name or _default_zone[0])
    except (ZoneInfoNotFoundError, ValueError):
        return timezone(timedelta(hours=8))


def display_time(value: str | None, zone: str | None = None) -> str:
    """A stored UTC timestamp in ``zone`` (else the app's ``TIME_ZONE``, Beijing time by
    default), 2024-05-01 14:03."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(time_zone(zone)).strftime("%Y-%m-%d %H:%M")
