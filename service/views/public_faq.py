"""The public knowledge base: ``/faq`` lists every published entry by category, searches
them with the chat's own matcher, and shows the most asked questions of the month
(热点问题); ``/faq/<key>`` is one entry at its stable address, with its source and
related entries. Server-rendered: it reads the same without JavaScript.

The entries are the desk's (the published knowledge of the current version, answers with
their placeholders filled), so the pages always say what the chat says.
"""
from __future__ import annotations

import re
import threading
from datetime import datetime, timedelta, timezone
from typing import Any, Container

import sqlite_utils
from flask import Blueprint, current_app, render_template, request

from ..db import get_db, get_desk
from ..privacy import mask_personal
from ..related import for_desk
from ..security import ask_limit, limiter

bp = Blueprint("faq", __name__)

MAX_SEARCH_CHARS = 100
SEARCH_RESULTS = 10
HOT_QUESTIONS = 5
#: Months begin in Beijing time, as citizens and the staff pages read dates.
BEIJING = timezone(timedelta(hours=8))
UNCATEGORISED = "其他问题"

_UNSAFE_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_SPACE_RE = re.compile(r"\s+")


# -- what the pages show (no Flask) -------------------------------------------------------


def category_of(entry: dict[str, Any]) -> str:
    """The category an entry is listed under."""
    return entry.get("category") or UNCATEGORISED


def anchor(category: str) -> str:
    """The id of a category's section on ``/faq`` (stable: the category's own name)."""
    return "category-" + _SPACE_RE.sub("-", category)


def by_category(entries: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    """Published entries grouped by category (``{"name", "anchor", "entries"}``), the
    categories in the order the knowledge first uses them (knowledge/faq.toml's order),
    entries in id order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for entry_id in sorted(entries):
        groups.setdefault(category_of(entries[entry_id]), []).append(entries[entry_id])
    return [{"name": name, "anchor": anchor(name), "entries": items} for name, items in groups.items()]


def clean_search(text: str) -> str:
    """A search text as the matcher takes it: control characters and lone surrogates
    dropped, runs of white space as one space."""
    return _SPACE_RE.sub(" ", _UNSAFE_RE.sub("", text)).strip()


def search(desk: Any, text: str, limit: int = SEARCH_RESULTS, shared: Any = None) -> list[int]:
    """The ids of published entries for a citizen's words, best first.

    First what the chat's matcher finds (the entry it would answer with, then its FAQ
    candidates above the desk's fitted suggestion floor, then its suggestions), then
    entries whose question or answer contains the text as typed.
    """
    found: list[int] = []

    def add(entry_id: Any) -> None:
        if isinstance(entry_id, int) and entry_id in desk.entries and entry_id not in found:
            found.append(entry_id)

    reply = desk.ask(text, shared=shared)  # the chat's replies, shared by the server's workers
    if reply.kind == "faq":
        add(reply.entry_id)
    for cand in reply.candidates:
        if cand["key"].startswith("faq:") and cand["score"] >= desk.model.suggestion_floor:
            ref = cand["key"][len("faq:"):]
            add(int(ref) if ref.isdigit() else None)
    for suggestion in reply.suggestions:
        add(suggestion.get("id"))
    needle = text.casefold()
    for entry_id, entry in desk.entries.items():
        if len(found) >= limit:
            break
        if needle in entry["question"].casefold() or needle in entry["answer"].casefold():
            add(entry_id)
    return found[:limit]


def month_start(moment: datetime) -> str:
    """The first instant of ``moment``'s month in Beijing time, as the log stores times
    (ISO 8601, UTC)."""
    local = moment.astimezone(BEIJING)
    first = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return first.astimezone(timezone.utc).isoformat(timespec="seconds")


def first_ask_since(db: sqlite_utils.Database, stamp: str) -> int:
    """The smallest ``asks`` id from which every row was logged at or after ``stamp``.

    The log is appended in time order, so this bisects its rowid (a few dozen primary-key
    seeks) rather than scanning a ``created`` column that has no index. Rows are written a
    batch at a time (at most ``ASK_LOG_MAX_DELAY`` seconds late), so around the boundary a
    row may sit a few ids off; callers filter on ``created`` as well.
    """
    lo, hi = db.execute("select coalesce(min(id), 1), coalesce(max(id), 0) + 1 from asks").fetchone()
    while lo < hi:
        mid = (lo + hi) // 2
        row = db.execute("select created from asks where id >= ? order by id limit 1", [mid]).fetchone()
        if row is None or (row[0] or "") >= stamp:
            hi = mid
        else:
            lo = mid + 1
    return int(lo)


class MonthCounts:
    """How often each entry answered a question this month, counted incrementally: the
    first count reads the month's log from :func:`first_ask_since`, every later one only
    the rows logged since (ids only grow), so 热点问题 is always current and cheap."""

    def __init__(self, since: str):
        """``since``: the month's first instant (ISO UTC), see :func:`month_start`."""
        self.since = since
        self.last = 0
        self.counts: dict[int, int] = {}
        self._lock = threading.Lock()

    def update(self, db: sqlite_utils.Database) -> None:
        """Count the answered questions logged since the last update."""
        with self._lock:
            last = db.execute("select coalesce(max(id), 0) from asks").fetchone()[0]
            if last < self.last:  # the database was restored from a backup: count again
                self.last, self.counts = 0, {}
            if last == self.last:
                return
            first = self.last + 1 if self.last else first_ask_since(db, self.since)
            rows = db.execute(
                "select entry_id, count(*) from asks where id between ? and ? and created >= ? "
                "and status = 'answered' and entry_id is not null group by entry_id",
                [first, last, self.since]).fetchall()
            for entry_id, times in rows:
                self.counts[entry_id] = self.counts.get(entry_id, 0) + times
            self.last = last

    def top(self, published: Container[int], limit: int = HOT_QUESTIONS) -> list[tuple[int, int]]:
        """``(entry id, times)`` of the published entries answered most often, most first."""
        ranked = sorted(((n, e) for e, n in self.counts.items() if e in published), key=lambda p: (-p[0], p[1]))
        return [(e, n) for n, e in ranked[:limit]]


def most_asked(db: sqlite_utils.Database, published: Container[int], since: str,
               limit: int = HOT_QUESTIONS) -> list[tuple[int, int]]:
    """``(entry id, times)`` of the published entries answered most often since ``since``
    (an ISO UTC time), most asked first; [] when nothing was answered."""
    counts = MonthCounts(since)
    counts.update(db)
    return counts.top(published, limit)


# -- views ------------------------------------------------------------------------------


_COUNTS_LOCK = threading.Lock()


def _hot(desk: Any) -> list[dict[str, Any]]:
    """This month's most asked published entries (kept per app and database, per month)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    key = (app.config["DATABASE"], month_start(datetime.now(timezone.utc)))
    with _COUNTS_LOCK:
        kept: dict[tuple[str, str], MonthCounts] = app.extensions.setdefault("faq_month_counts", {})
        counts = kept.get(key)
        if counts is None:
            kept.clear()  # last month's, or another database's (the CLI's --db)
            counts = kept[key] = MonthCounts(key[1])
    counts.update(get_db())
    return [{**desk.entries[e], "times": n} for e, n in counts.top(desk.entries)]


def _site() -> dict[str, str]:
    return {"agency": current_app.config["HOME_AGENCY"], "product": current_app.config["PRODUCT_NAME"]}


@bp.get("/faq")
@limiter.limit(ask_limit, exempt_when=lambda: not request.args.get("q"))  # a search runs the matcher
def index():  # type: ignore[no-untyped-def]
    """The knowledge base: a search box, 热点问题 and every published entry by category;
    with ``?q=`` the entries the citizen's words find."""
    desk = get_desk()
    raw = request.args.get("q", "")
    text, error, status, results = clean_search(raw), None, 200, None
    if len(text) > MAX_SEARCH_CHARS:
        error, status = f"搜索内容过长，请控制在{MAX_SEARCH_CHARS}字以内。", 400
        text = text[:MAX_SEARCH_CHARS]
    elif raw.strip() and not text:
        error, status = "搜索内容无法识别，请换个说法再试。", 400
    elif text:
        # Shared with the other workers only when it holds no personal number: the shared
        # file keeps questions as the chat stores them, masked.
        shared = current_app.extensions.get("shared_replies") if mask_personal(text) == text else None
        results = [desk.entries[e] for e in search(desk, text, shared=shared)]
    return render_template(
        "faq.html", query=text, error=error, results=results, max_chars=MAX_SEARCH_CHARS,
        hot=_hot(desk) if results is None else [], groups=by_category(desk.entries) if results is None else [],
        **_site()), status


@bp.get("/faq/<key>")
def show(key: str):  # type: ignore[no-untyped-def]
    """One published entry at its stable address: question, answer, source, related entries."""
    desk = get_desk()
    related = for_desk(desk)
    entry_id = related.by_key.get(key)
    if entry_id is None:
        return render_template("faq_missing.html", max_chars=MAX_SEARCH_CHARS, **_site()), 404
    entry = desk.entries[entry_id]
    category = category_of(entry)
    return render_template("faq_entry.html", entry=entry, category=category, category_anchor=anchor(category),
                           paragraphs=[p.strip() for p in entry["answer"].split("\n") if p.strip()],
                           related=related.questions(entry_id), **_site())
