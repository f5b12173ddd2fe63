"""Figures for the staff analytics page, over a period of Beijing days (no Flask).

The question log (``asks``) may hold tens of millions of rows, so the page never scans
it. It reads ``ask_daily``: one row per Beijing day, answer status, answer kind and FAQ
entry, with the number of questions. The rollup is kept up to date lazily: each view
first adds the log rows written since the last one (those past a high-water mark of
``asks.id`` kept in ``meta``), a bounded chunk per short write transaction, so that the
workers writing the log never wait long for the lock. Keying the mark on the row id,
not on the time, counts every row once even though workers write their buffered rows a
little late and out of order (see ``service.tickets.AskLog``). The ask path itself pays
nothing: there is no trigger on ``asks``.

Feedback (有用 / 没用) is rolled up the same way into ``feedback_daily``, per day and FAQ
entry, past a mark of feedback's rowid; but only ratings older than
:data:`FEEDBACK_SETTLE`, because a rating may be stored before the question it rates
(the log is batched) and is joined to it for the entry. Newer ratings are read live.
Neither table is ever deleted from, so their ids (and VACUUM) keep the marks valid.
Tickets are few (at most some hundred thousand), read live over an index on
``replied_at``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterable

import sqlite_utils

from .storage import immediate
from .tickets import display_code, display_time

BEIJING = timezone(timedelta(hours=8))
HIGH_WATER_KEY = "ask_daily_high_water"
FEEDBACK_HIGH_WATER_KEY = "feedback_daily_high_water"
# A rating is rolled up once it is this old: its question has been written to the log by
# then (workers write theirs within a second or so; see ASK_LOG_MAX_DELAY).
FEEDBACK_SETTLE = timedelta(minutes=10)
# Log rows rolled up per write transaction: about a quarter of a second's work, so a worker
# flushing its questions waits at most that long for the lock.
ROLLUP_CHUNK = 100_000
DEFAULT_DAYS = 30
MAX_DAYS = 366
EARLIEST = date(2000, 1, 1)
TOP_ENTRIES = 20
SLOWEST_TICKETS = 20

ASK_STATUSES = {"answered": "已回答", "clarify": "请求澄清", "escalated": "转人工"}
ASK_KINDS = {"faq": "常见问题", "fact": "报告数据", "chitchat": "寒暄", "handoff": "按要求转人工",
             "referral": "指引至其他机关", "": "其他"}
TICKET_KINDS = {"inquiry": "一般咨询", "application": "政府信息公开申请"}

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# A ticket's time to reply, in days, exactly as the index tickets_reply_days holds it.
_REPLY_DAYS = "julianday(replied_at) - julianday(created)"
# A stored UTC timestamp as the Beijing day it falls on.
_DAY_SQL = "date({column}, '+8 hours')"


class PeriodError(ValueError):
    """A period the page cannot show; the message is plain Chinese for the staff member."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Period:
    """Beijing calendar days ``start`` to ``end``, both included."""

    start: date
    end: date

    @property
    def days(self) -> list[date]:
        """Every day of the period, in order."""
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    def utc_bounds(self) -> tuple[str, str]:
        """The period as stored UTC timestamps: from the first day's Beijing midnight,
        up to (not including) the midnight after the last day."""
        begin = datetime.combine(self.start, datetime.min.time(), BEIJING).astimezone(timezone.utc)
        end = datetime.combine(self.end + timedelta(days=1), datetime.min.time(), BEIJING).astimezone(timezone.utc)
        return begin.isoformat(timespec="seconds"), end.isoformat(timespec="seconds")


def beijing_today(now: datetime | None = None) -> date:
    """Today's date in Beijing (UTC+8)."""
    return (now or datetime.now(timezone.utc)).astimezone(BEIJING).date()


def parse_period(start: str | None, end: str | None, today: date) -> Period:
    """The period a form asked for; blank fields default to the last 30 days up to today.

    Raises :class:`PeriodError` on a date that is not YYYY-MM-DD, a start after the end,
    a period longer than 366 days, or one outside 2000-01-01 to today.
    """
    def one(value: str | None, default: date, label: str) -> date:
        text = (value or "").strip()
        if not text:
            return default
        if not _DATE_RE.match(text):
            raise PeriodError(f"{label}格式不正确，请按“年-月-日”填写，例如 {today.isoformat()}。")
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise PeriodError(f"{label}不是有效的日期：{text}。") from None

    last = one(end, today, "结束日期")
    first = one(start, last - timedelta(days=DEFAULT_DAYS - 1), "开始日期")
    if first > last:
        raise PeriodError("开始日期不能晚于结束日期。")
    if last > today:
        raise PeriodError(f"结束日期不能晚于今天（北京时间 {today.isoformat()}）。")
    if first < EARLIEST:
        raise PeriodError(f"开始日期不能早于 {EARLIEST.isoformat()}。")
    if (last - first).days + 1 > MAX_DAYS:
        raise PeriodError(f"统计期间最长为 {MAX_DAYS} 天，请缩短期间。")
    return Period(first, last)


# -- the daily rollup -----------------------------------------------------------------

def roll_up(db: sqlite_utils.Database, chunk: int = ROLLUP_CHUNK) -> int:
    """Add the log rows written since the last rollup to ``ask_daily``; return how many ids that covered.

    Each chunk is its own transaction that re-reads the mark under the write lock, so two
    workers rolling up at once never count a row twice.
    """
    added = 0
    while True:
        with immediate(db):
            mark = _high_water(db)
            top = db.execute("select max(id) from asks").fetchone()[0] or 0
            if top <= mark:
                return added
            upto = min(top, mark + chunk)
            db.execute(
                "insert into ask_daily (day, status, kind, entry_id, n, latency_ms) "
                f"select {_DAY_SQL.format(column='created')}, coalesce(status, ''), coalesce(kind, ''), "
                "coalesce(entry_id, 0), count(*), total(latency_ms) from asks where id > ? and id <= ? "
                "group by 1, 2, 3, 4 "
                "on conflict (day, status, kind, entry_id) do update set n = n + excluded.n, "
                "latency_ms = latency_ms + excluded.latency_ms",
                [mark, upto])
            _set_high_water(db, HIGH_WATER_KEY, upto)
            added += upto - mark


def roll_up_feedback(db: sqlite_utils.Database, now: datetime | None = None, chunk: int = ROLLUP_CHUNK) -> int:
    """Add the ratings older than :data:`FEEDBACK_SETTLE` and not yet rolled up to
    ``feedback_daily``; return how many rowids that covered."""
    cutoff = ((now or datetime.now(timezone.utc)) - FEEDBACK_SETTLE).astimezone(timezone.utc)
    added = 0
    while True:
        with immediate(db):
            mark = _high_water(db, FEEDBACK_HIGH_WATER_KEY)
            # The newest settled rating, found over the index on created: ratings are
            # stored as they arrive, so every row up to its rowid has settled too.
            row = db.execute("select rowid from feedback where created < ? order by created desc, rowid desc "
                             "limit 1", [cutoff.isoformat(timespec="seconds")]).fetchone()
            if not row or row[0] <= mark:
                return added
            upto = min(row[0], mark + chunk)
            db.execute(
                "insert into feedback_daily (day, entry_id, helpful, unhelpful) "
                f"select {_DAY_SQL.format(column='f.created')}, coalesce(a.entry_id, 0), total(f.helpful = 1), "
                "total(f.helpful = 0) from feedback f left join asks a on a.ask_token = f.ask_token "
                "where f.rowid > ? and f.rowid <= ? group by 1, 2 "
                "on conflict (day, entry_id) do update set helpful = helpful + excluded.helpful, "
                "unhelpful = unhelpful + excluded.unhelpful",
                [mark, upto])
            _set_high_water(db, FEEDBACK_HIGH_WATER_KEY, upto)
            added += upto - mark


def _high_water(db: sqlite_utils.Database, key: str = HIGH_WATER_KEY) -> int:
    row = db.execute("select value from meta where key = ?", [key]).fetchone()
    return int(row[0]) if row else 0


def _set_high_water(db: sqlite_utils.Database, key: str, value: int) -> None:
    db.execute("insert into meta (key, value) values (?, ?) "
               "on conflict (key) do update set value = excluded.value", [key, str(value)])


# -- the figures ------------------------------------------------------------------------

@dataclass
class Report:
    """Everything the analytics page and its CSV show for one period."""

    period: Period
    daily: list[dict[str, Any]] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)
    kinds: list[dict[str, Any]] = field(default_factory=list)
    feedback_daily: list[dict[str, Any]] = field(default_factory=list)
    feedback_totals: dict[str, int] = field(default_factory=dict)
    top_entries: list[dict[str, Any]] = field(default_factory=list)
    unhelpful_entries: list[dict[str, Any]] = field(default_factory=list)
    never_hit: list[dict[str, Any]] = field(default_factory=list)
    slowest_tickets: list[dict[str, Any]] = field(default_factory=list)
    replied_count: int = 0
    mean_reply_hours: float | None = None

    @property
    def total(self) -> int:
        """Questions asked in the period."""
        return sum(self.totals.values())

    def share(self, status: str) -> float:
        """The fraction of the period's questions with this answer status (0 when none)."""
        return self.totals.get(status, 0) / self.total if self.total else 0.0


def report(db: sqlite_utils.Database, period: Period, *, rollup: bool = True,
           now: datetime | None = None) -> Report:
    """The period's figures; brings the rollups up to date first unless ``rollup`` is False."""
    if rollup:
        roll_up(db)
        roll_up_feedback(db, now)
    out = Report(period)
    first, last = period.start.isoformat(), period.end.isoformat()
    by_day: dict[str, dict[str, int]] = {d.isoformat(): {s: 0 for s in ASK_STATUSES} for d in period.days}
    out.totals = {s: 0 for s in ASK_STATUSES}
    for day, status, n in db.execute(
            "select day, status, sum(n) from ask_daily where day between ? and ? group by day, status",
            [first, last]):
        # A status outside the three (none in practice) still counts in the day's total.
        by_day[day][status] = by_day[day].get(status, 0) + n
        out.totals[status] = out.totals.get(status, 0) + n
    out.daily = [{"day": day, **counts, "total": sum(counts.values())} for day, counts in by_day.items()]
    out.kinds = [{"kind": kind, "label": ASK_KINDS.get(kind, kind), "n": n} for kind, n in db.execute(
        "select kind, sum(n) as n from ask_daily where day between ? and ? group by kind order by n desc, kind",
        [first, last])]

    begin, end = period.utc_bounds()
    fb_by_day = {d.isoformat(): {"helpful": 0, "unhelpful": 0} for d in period.days}
    votes: dict[int, tuple[int, int]] = {}
    # Rolled-up ratings, then those not rolled up yet (the last minutes'), read live.
    rolled = db.execute("select day, entry_id, helpful, unhelpful from feedback_daily where day between ? and ?",
                        [first, last])
    live = db.execute(
        f"select {_DAY_SQL.format(column='f.created')}, coalesce(a.entry_id, 0), total(f.helpful = 1), "
        "total(f.helpful = 0) from feedback f left join asks a on a.ask_token = f.ask_token "
        "where f.rowid > ? and +f.created >= ? and +f.created < ? group by 1, 2",  # over rowid: few rows
        [_high_water(db, FEEDBACK_HIGH_WATER_KEY), begin, end])
    for day, entry_id, helpful, unhelpful in [*rolled, *live]:
        if day in fb_by_day:
            fb_by_day[day]["helpful"] += int(helpful)
            fb_by_day[day]["unhelpful"] += int(unhelpful)
        if entry_id:
            h, u = votes.get(entry_id, (0, 0))
            votes[entry_id] = (h + int(helpful), u + int(unhelpful))
    out.feedback_daily = [{"day": day, **counts} for day, counts in fb_by_day.items()]
    out.feedback_totals = {k: sum(row[k] for row in out.feedback_daily) for k in ("helpful", "unhelpful")}
    out.top_entries = [_with_votes(row, votes) for row in db.query(
        "select d.entry_id, sum(d.n) as n, e.key, e.question, e.category, e.status from ask_daily d "
        "left join entries e on e.id = d.entry_id where d.day between ? and ? and d.entry_id != 0 "
        "group by d.entry_id, e.id order by n desc, d.entry_id limit ?", [first, last, TOP_ENTRIES])]
    unhelpful_ids = sorted((i for i in votes if votes[i][1]), key=lambda i: (-votes[i][1], i))[:TOP_ENTRIES]
    entries = _entries(db, unhelpful_ids)
    out.unhelpful_entries = [_with_votes({"entry_id": i, **entries.get(i, {})}, votes) for i in unhelpful_ids]
    out.never_hit = list(db.query(
        "select id as entry_id, key, question, category from entries where status = 'published' "
        "and id not in (select entry_id from ask_daily where day between ? and ?) order by category, id",
        [first, last]))

    # Ranked and averaged over the index tickets_reply_days (the same expression), then
    # the few slowest read in full.
    slowest = db.execute(
        f"select id, {_REPLY_DAYS} as days from tickets where replied_at >= ? and replied_at < ? "
        "order by days desc, id limit ?", [begin, end, SLOWEST_TICKETS]).fetchall()
    details = {row["id"]: row for row in db.query(
        "select id, code, question, kind, status, created, replied_at from tickets where id in "
        f"({', '.join('?' * len(slowest))})", [i for i, _ in slowest])} if slowest else {}
    out.slowest_tickets = [{**details[i], "hours": round(days * 24, 1)} for i, days in slowest]
    count, mean = db.execute(f"select count(*), avg({_REPLY_DAYS}) from tickets where replied_at >= ? "
                             "and replied_at < ?", [begin, end]).fetchone()
    out.replied_count, out.mean_reply_hours = count, (round(mean * 24, 1) if mean is not None else None)
    return out


def _entries(db: sqlite_utils.Database, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    ids = list(ids)
    if not ids:
        return {}
    marks = ", ".join("?" * len(ids))
    return {row["id"]: {k: row[k] for k in ("key", "question", "category", "status")}
            for row in db.query(f"select id, key, question, category, status from entries where id in ({marks})", ids)}


def _with_votes(row: dict[str, Any], votes: dict[int, tuple[int, int]]) -> dict[str, Any]:
    helpful, unhelpful = votes.get(row["entry_id"], (0, 0))
    return {**row, "helpful": helpful, "unhelpful": unhelpful}


# -- CSV ----------------------------------------------------------------------------

def csv_sections(result: Report) -> list[tuple[str, list[str], list[list[Any]]]]:
    """The report as (title, header, rows) tables, the same figures the page shows."""
    daily = [[r["day"], r["total"], *(r[s] for s in ASK_STATUSES)] for r in result.daily]
    shares = [[label, result.totals.get(s, 0), f"{result.share(s) * 100:.1f}%"] for s, label in ASK_STATUSES.items()]
    feedback = [[r["day"], r["helpful"], r["unhelpful"]] for r in result.feedback_daily]
    entry_header = ["条目编号", "条目键", "问题", "分类", "命中次数", "有用", "没用"]
    never_hit = [[r["entry_id"], r["key"] or "", r["question"] or "", r["category"] or ""] for r in result.never_hit]
    tickets = [[display_code(t["code"]), t["question"] or "", TICKET_KINDS.get(t["kind"] or "", "未分类"),
                display_time(t["created"]), display_time(t["replied_at"]), t["hours"]]
               for t in result.slowest_tickets]
    return [
        ("每日提问（北京时间）", ["日期", "提问总数", *ASK_STATUSES.values()], daily),
        ("处理结果占比", ["结果", "提问数", "占比"], shares),
        ("每日反馈（北京时间）", ["日期", "有用", "没用"], feedback),
        ("提问最多的条目", entry_header, _entry_rows(result.top_entries)),
        ("“没用”最多的条目", entry_header, _entry_rows(result.unhelpful_entries)),
        ("期间内未被命中的已发布条目", ["条目编号", "条目键", "问题", "分类"], never_hit),
        ("答复最慢的工单", ["工单编号", "问题", "类型", "提问时间（北京时间）", "答复时间（北京时间）",
                         "用时（小时）"], tickets),
    ]


def _entry_rows(rows: list[dict[str, Any]]) -> list[list[Any]]:
    return [[r["entry_id"], r.get("key") or "", r.get("question") or "（条目已删除）", r.get("category") or "",
             r.get("n", ""), r["helpful"], r["unhelpful"]] for r in rows]
