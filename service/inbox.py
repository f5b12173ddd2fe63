"""The curators' inbox: what the desk missed, grouped, and what citizens' picks suggest (no Flask).

Three sources of missed questions, over a period of Beijing days:

* questions **sent to staff** (status ``escalated``; other bodies' business, small talk and
  explicit requests for a person are not misses of the knowledge and are left out);
* questions the desk **asked to clarify** (status ``clarify``);
* answers a citizen marked **没用** (``feedback.helpful = 0``).

They are counted per normalised text, then grouped by similarity (:func:`group`): two
questions belong together when the words they share carry most of their weight, each word
weighted by how rare it is in general Chinese (jieba's frequencies before the knowledge's
own terms were boosted: so 行政复议 counts, 怎么 hardly does). A
curator adds a group's question as a phrasing of an entry, drafts a new entry from it, or
dismisses it as noise; each decision is kept in ``inbox_marks`` so the group leaves the
inbox (a question marked as a phrasing comes back only if it is missed again afterwards).

**Suggested phrasings** (QnA Maker's active learning, kept under a human's eye): when the
desk asks to clarify, each suggestion carries a signed ``pick`` (:func:`pick_token`); when
the citizen clicks one, the pair (the question asked, the entry picked) is recorded once
per answer (``suggestion_picks``). Pairs picked by citizens are listed with their counts
for a curator to accept (the question becomes a phrasing of the entry, in every worker at
once: the knowledge version moves) or reject (``suggestion_decisions``).

After each accepted phrasing the inbox records how the answered share changes
(``inbox_changes``): the period's logged questions are replayed through the desk before
and after the change (:func:`replay`), the most asked missed questions first.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Sequence

import sqlite_utils

from .analytics import Period, roll_up

#: Two questions are grouped when the rarity-weighted share of the words they have in
#: common reaches this (weighted Dice coefficient, 0..1).
GROUP_SIMILARITY = 0.5
#: The most distinct missed questions read for one inbox page (most asked first).
MAX_DISTINCT = 3000
#: Examples shown per group.
EXAMPLES = 3
#: Missed questions (distinct, most asked first) replayed to measure a change's effect.
MAX_REPLAY = 300
#: Weights of words: jieba's rarity (0..1), floored so that no word counts for nothing;
#: a word jieba does not know (a name, a term of art) counts fully; numbers count little.
MIN_WORD_WEIGHT = 0.05
NUMBER_WEIGHT = 0.2

MISSED_STATUSES = ("escalated", "clarify")
#: Escalations that are not misses of the knowledge.
NOT_MISSES = ("referral", "chitchat", "handoff")
SOURCES = {"escalated": "转人工", "clarify": "请求澄清", "unhelpful": "答复没用"}
MARKS = {"phrasing": "已添加为相似问法", "draft": "已起草新条目", "dismissed": "已忽略"}
DECISIONS = {"accepted": "已采纳", "rejected": "已拒绝"}
MAX_NORMALISED = 500  # characters of one posted group key
MAX_MEMBERS = 200  # group keys posted with one action

_PICK_RE = re.compile(r"^([A-Za-z0-9_-]{22})\.([0-9]{1,9})\.([A-Za-z0-9_-]{16})$")


class InboxError(Exception):
    """An inbox action was refused; the message is plain Chinese, ``status`` the HTTP code."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


# -- picks of "did you mean" suggestions ---------------------------------------------------

def _raw(key: str | bytes) -> bytes:
    return key.encode() if isinstance(key, str) else key


def _pick_signature(token: str, entry_id: int, key: str | bytes) -> str:
    mac = hmac.new(_raw(key), f"pick:{token}:{entry_id}".encode(), hashlib.sha256).digest()[:12]
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def pick_token(token: str, entry_id: int, keys: Sequence[str | bytes]) -> str:
    """The opaque ``pick`` of one suggestion of a clarify reply: the answer's token, the
    entry, and a signature, so that only suggestions the desk made can be recorded."""
    return f"{token}.{entry_id}.{_pick_signature(token, entry_id, keys[0])}"


def read_pick(pick: Any, keys: Sequence[str | bytes]) -> tuple[str, int]:
    """``(token, entry_id)`` of a ``pick`` signed with any of ``keys``; :class:`InboxError`:
    400 for a malformed pick, 404 for one this service did not issue (like an unknown
    ``ask_id`` of feedback)."""
    match = _PICK_RE.match(pick) if isinstance(pick, str) and len(pick) <= 64 else None
    if not match:
        raise InboxError("所选的建议问题格式不正确，请直接输入您的问题。")
    token, entry, given = match.group(1), int(match.group(2)), match.group(3)
    ok = False
    for key in keys:
        ok |= hmac.compare_digest(given, _pick_signature(token, entry, key))
    if not ok:
        raise InboxError("找不到您所选的建议问题，请直接输入您的问题。", 404)
    return token, entry


def record_pick(db: sqlite_utils.Database, token: str, entry_id: int) -> bool:
    """Record that the citizen picked ``entry_id`` among the suggestions of the answer with
    ``token``; only the first pick of an answer counts. True if recorded."""
    cursor = db.execute("insert into suggestion_picks (ask_token, entry_id, created) values (?, ?, ?) "
                        "on conflict (ask_token) do nothing", [token, entry_id, _now()])
    return cursor.rowcount == 1


@dataclass
class Suggestion:
    """A question citizens asked, paired with the entry they then picked."""

    normalised: str
    question: str
    entry_id: int
    entry_question: str
    entry_status: str
    picks: int
    sessions: int
    last: str


def suggestions(db: sqlite_utils.Database, period: Period, limit: int = 50) -> list[Suggestion]:
    """Pairs picked in the period and not yet decided, most picked first.

    A pair is counted once per answer and its citizens once per session; the question of a
    pick whose log row is not written yet (the log is batched) joins on a later view.
    """
    begin, end = period.utc_bounds()
    rows = db.query(
        "select a.normalised, max(a.question) as question, p.entry_id, count(*) as picks, "
        "count(distinct a.session) as sessions, max(p.created) as last, "
        "e.question as entry_question, e.status as entry_status "
        "from suggestion_picks p join asks a on a.ask_token = p.ask_token "
        "join entries e on e.id = p.entry_id "
        "where p.created >= ? and p.created < ? and coalesce(a.normalised, '') != '' "
        "and not exists (select 1 from suggestion_decisions d where d.normalised = a.normalised "
        "and d.entry_id = p.entry_id) "
        "group by a.normalised, p.entry_id, e.id order by picks desc, last desc limit ?", [begin, end, limit])
    return [Suggestion(**{k: r[k] for k in ("normalised", "question", "entry_id", "entry_question",
                                              "entry_status", "picks", "sessions", "last")}) for r in rows]


def decide_suggestion(db: sqlite_utils.Database, normalised: str, entry_id: int, decision: str,
                      user: dict[str, Any] | None) -> None:
    """Keep a curator's decision on a suggested pair (``accepted`` or ``rejected``)."""
    if decision not in DECISIONS:
        raise InboxError("无效的操作。")
    db.execute("insert into suggestion_decisions (normalised, entry_id, decision, username, decided_at) "
               "values (?, ?, ?, ?, ?) on conflict (normalised, entry_id) do update set "
               "decision = excluded.decision, username = excluded.username, decided_at = excluded.decided_at",
               [normalised, entry_id, decision, (user or {}).get("username"), _now()])


# -- missed questions and their groups -------------------------------------------------------

@dataclass
class Missed:
    """One distinct missed question (by its normalised text) in a period."""

    normalised: str
    question: str  # an example as asked (masked before storage)
    n: int = 0
    escalated: int = 0
    clarify: int = 0
    unhelpful: int = 0
    last: str = ""


@dataclass
class Group:
    """Missed questions that say the same thing in different words."""

    members: list[Missed] = field(default_factory=list)

    @property
    def lead(self) -> Missed:
        """The most asked question of the group, which names it."""
        return self.members[0]

    @property
    def n(self) -> int:
        return sum(m.n for m in self.members)

    @property
    def counts(self) -> dict[str, int]:
        """How often the group was sent to staff, clarified, or found unhelpful."""
        return {s: sum(getattr(m, s) for m in self.members) for s in SOURCES}

    @property
    def last(self) -> str:
        return max(m.last for m in self.members)

    def examples(self, k: int = EXAMPLES) -> list[str]:
        """Up to ``k`` different wordings, most asked first."""
        seen: list[str] = []
        for m in self.members:
            if m.question not in seen:
                seen.append(m.question)
            if len(seen) == k:
                break
        return seen

    @property
    def keys(self) -> list[str]:
        """The normalised texts of the members (what an action marks)."""
        return [m.normalised for m in self.members[:MAX_MEMBERS]]


@dataclass
class MissedList:
    """The most asked missed questions of a period, and how many there were in all."""

    questions: list[Missed]
    distinct: int  # different wordings missed in the period (after the curators' marks)
    asked: int  # times they were asked, or rated 没用

    @property
    def truncated(self) -> bool:
        """Whether only the most asked :data:`MAX_DISTINCT` wordings are listed."""
        return self.distinct > len(self.questions)


def missed(db: sqlite_utils.Database, period: Period, limit: int = MAX_DISTINCT) -> MissedList:
    """The distinct missed questions of a period, most asked first, without those a curator
    dealt with (dismissed ones for good, the others unless missed again since), and the
    totals. Counting, ordering and the limit are SQL's, so a month of half a million
    different wordings costs the page the ``limit`` it shows, not all of them."""
    begin, end = period.utc_bounds()
    skip = ", ".join("?" for _ in NOT_MISSES)
    rows = list(db.query(
        "with hits as ("
        "  select normalised, question, case when status = 'escalated' then 1 else 0 end as escalated, "
        "         case when status = 'clarify' then 1 else 0 end as clarify, "
        "         0 as unhelpful, created from asks "
        "  where status in ('escalated', 'clarify') and created >= ? and created < ? "
        f"   and coalesce(kind, '') not in ({skip}) and coalesce(normalised, '') != '' "
        "  union all "
        "  select a.normalised, a.question, 0, 0, 1, f.created from feedback f join asks a on a.ask_token = f.ask_token "
        "  where f.helpful = 0 and f.created >= ? and f.created < ? "
        f"   and coalesce(a.kind, '') not in ({skip}) and coalesce(a.normalised, '') != ''), "
        "per as (select normalised, max(question) as question, count(*) as n, sum(escalated) as escalated, "
        "         sum(clarify) as clarify, sum(unhelpful) as unhelpful, max(created) as last "
        "         from hits group by normalised), "
        "kept as (select per.* from per left join inbox_marks k on k.normalised = per.normalised "
        "         where k.normalised is null or (k.action != 'dismissed' and k.marked_at < per.last)) "
        "select *, count(*) over () as distinct_total, sum(n) over () as asked_total from kept "
        "order by n desc, normalised limit ?",
        [begin, end, *NOT_MISSES, begin, end, *NOT_MISSES, limit]))
    questions = [Missed(r["normalised"], r["question"], r["n"], r["escalated"], r["clarify"], r["unhelpful"],
                        r["last"]) for r in rows]
    return MissedList(questions, rows[0]["distinct_total"] if rows else 0, rows[0]["asked_total"] if rows else 0)


def word_weight(rarity: Callable[[str], float | None]) -> Callable[[str], float]:
    """How much a word says about a question's topic, from jieba's rarity (see the constants)."""
    def weight(token: str) -> float:
        if token.isdigit():
            return NUMBER_WEIGHT
        r = rarity(token)
        return 1.0 if r is None else max(MIN_WORD_WEIGHT, r)
    return weight


def similarity(a: dict[str, float], b: dict[str, float]) -> float:
    """Weighted Dice coefficient of two weighted word sets: 1 for the same words, 0 for none shared."""
    total = sum(a.values()) + sum(b.values())
    if total <= 0:
        return 0.0
    return 2 * sum(w for t, w in a.items() if t in b) / total


def group(questions: Iterable[Missed], tokens: Callable[[str], list[str]], weight: Callable[[str], float],
          threshold: float = GROUP_SIMILARITY) -> list[Group]:
    """Group missed questions, most asked first: each joins the most similar group whose
    lead it resembles by at least ``threshold``, or starts a group of its own."""
    groups: list[Group] = []
    words: list[dict[str, float]] = []
    by_word: dict[str, list[int]] = {}
    for m in questions:
        own = {t: weight(t) for t in tokens(m.normalised)}
        best, best_score = None, threshold
        for i in {i for t in own for i in by_word.get(t, ())}:
            score = similarity(own, words[i])
            if score >= best_score:
                best, best_score = i, score
        if best is not None:
            groups[best].members.append(m)
            continue
        by_word_index = len(groups)
        groups.append(Group([m]))
        words.append(own)
        for t in own:
            by_word.setdefault(t, []).append(by_word_index)
    groups.sort(key=lambda g: (-g.n, g.lead.normalised))
    return groups


def mark(db: sqlite_utils.Database, keys: Iterable[str], action: str, user: dict[str, Any] | None,
         entry_id: int | None = None) -> int:
    """Keep a curator's decision on the questions with these normalised texts; return how many."""
    if action not in MARKS:
        raise InboxError("无效的操作。")
    stamp = _now()
    n = 0
    for key in clean_keys(keys):
        db.execute("insert into inbox_marks (normalised, action, entry_id, username, marked_at) "
                   "values (?, ?, ?, ?, ?) on conflict (normalised) do update set action = excluded.action, "
                   "entry_id = excluded.entry_id, username = excluded.username, marked_at = excluded.marked_at",
                   [key, action, entry_id, (user or {}).get("username"), stamp])
        n += 1
    return n


def clean_keys(keys: Iterable[Any]) -> list[str]:
    """Posted group keys as stored: non-empty strings of bounded length, at most
    :data:`MAX_MEMBERS`; :class:`InboxError` otherwise."""
    given = list(keys)
    if len(given) > MAX_MEMBERS:
        raise InboxError(f"一次最多处理 {MAX_MEMBERS} 个问题。")
    out: dict[str, None] = {}
    for key in given:
        if not isinstance(key, str) or not key.strip() or len(key) > MAX_NORMALISED:
            raise InboxError("要处理的问题无效，请刷新页面后重试。")
        out[key] = None
    if not out:
        raise InboxError("请选择要处理的问题。")
    return list(out)


# -- what a change does to the answered share ----------------------------------------------

@dataclass
class Replay:
    """The period's questions as the desk would answer them now."""

    total: int  # questions logged in the period
    answered_logged: int  # of which the desk answered at the time
    replayed: int  # missed questions (with repeats) replayed
    answered_now: int  # of the replayed, answered by the desk now

    @property
    def share(self) -> float:
        """The answered share if the period were asked again (replayed misses counted as
        the desk answers them now; the rest as logged)."""
        return (self.answered_logged + self.answered_now) / self.total if self.total else 0.0


def replay(db: sqlite_utils.Database, period: Period, ask: Callable[[str], str],
           questions: Sequence[Missed] | None = None) -> Replay:
    """Replay the period's most asked missed questions through ``ask`` (a question to the
    status the desk gives it) and count what would be answered."""
    roll_up(db)  # the period's totals come from the daily rollups, not a scan of the log
    placeholders = ", ".join("?" for _ in NOT_MISSES)
    total, answered = db.execute(
        "select coalesce(sum(n), 0), coalesce(sum(case when status = 'answered' then n end), 0) from ask_daily "
        f"where day between ? and ? and kind not in ({placeholders})",
        [period.start.isoformat(), period.end.isoformat(), *NOT_MISSES]).fetchone()
    sample = list(questions if questions is not None else missed_for_replay(db, period))[:MAX_REPLAY]
    now = sum(m.escalated + m.clarify for m in sample if ask(m.question) == "answered")
    return Replay(total, answered, sum(m.escalated + m.clarify for m in sample), now)


def missed_for_replay(db: sqlite_utils.Database, period: Period) -> list[Missed]:
    """The period's escalated and clarified questions, most asked first (marks ignored: a
    phrasing just added must count)."""
    begin, end = period.utc_bounds()
    placeholders = ", ".join("?" for _ in NOT_MISSES)
    rows = db.query(
        "select normalised, max(question) as question, count(*) as n, sum(status = 'escalated') as escalated, "
        "sum(status = 'clarify') as clarify from asks where status in ('escalated', 'clarify') "
        f"and created >= ? and created < ? and coalesce(kind, '') not in ({placeholders}) "
        "and coalesce(normalised, '') != '' group by normalised order by n desc limit ?",
        [begin, end, *NOT_MISSES, MAX_REPLAY])
    return [Missed(r["normalised"], r["question"], r["n"], r["escalated"], r["clarify"]) for r in rows]


def record_change(db: sqlite_utils.Database, user: dict[str, Any] | None, action: str, entry_id: int,
                  question: str, period: Period, before: Replay, after: Replay) -> None:
    """Keep what an accepted phrasing did to the answered share of the period replayed."""
    db["inbox_changes"].insert({
        "at": _now(), "username": (user or {}).get("username"), "action": action, "entry_id": entry_id,
        "question": question, "period_start": period.start.isoformat(), "period_end": period.end.isoformat(),
        "total": before.total, "replayed": before.replayed,
        "answered_before": before.answered_logged + before.answered_now,
        "answered_after": after.answered_logged + after.answered_now})


def changes(db: sqlite_utils.Database, limit: int = 20) -> list[dict[str, Any]]:
    """The latest accepted phrasings with the answered share before and after each."""
    rows = db.query("select c.*, e.question as entry_question from inbox_changes c "
                    "left join entries e on e.id = c.entry_id order by c.id desc limit ?", [limit])
    out = []
    for r in rows:
        total = r["total"] or 0
        out.append({**dict(r), "share_before": r["answered_before"] / total if total else 0.0,
                    "share_after": r["answered_after"] / total if total else 0.0})
    return out


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
