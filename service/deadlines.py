"""Statutory deadlines of disclosure applications, in working days (no Flask).

The Regulations count in working days (工作日): weekends and public holidays do not
count, and the adjusted working weekends (调休上班) do. The calendar comes from the
chinese-calendar package, and ``knowledge/holidays.toml`` may add or correct years
(the State Council publishes each year's arrangement late in the year before), so a
new year needs no code change. A date outside every year known raises
:class:`CalendarRangeError` instead of guessing.

Rules (《政府信息公开条例》):

* 第三十三条: the reply is due 20 working days after the date of receipt; one
  extension of at most 20 more working days.
* 第三十条: an incomplete application gets one notice to supplement (补正) within 7
  working days of receipt; the reply period then starts again from the day the
  supplement arrives.
* 第三十二条 (and 第三十三条第三款): time spent consulting a third party (at most 15
  working days for its answer) or other agencies is not counted.

Counting starts on the working day after the starting date (the day of receipt itself
is not counted); a pause covers the working days after it starts up to and including
the day it ends.
"""
from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import chinese_calendar

REPLY_DAYS = 20
MAX_EXTENSION_DAYS = 20
SUPPLEMENT_NOTICE_DAYS = 7
THIRD_PARTY_DAYS = 15


class CalendarRangeError(Exception):
    """A date lies in a year whose holidays are not known."""


class DeadlineError(Exception):
    """Deadline data that contradicts the rules (e.g. an extension over 20 days)."""


@dataclass
class WorkCalendar:
    """Which days are working days: the package's data plus overrides from a file."""

    extra_holidays: set[date] = field(default_factory=set)
    extra_workdays: set[date] = field(default_factory=set)
    extra_years: set[int] = field(default_factory=set)
    _known: dict[date, bool] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, path: Path | None) -> "WorkCalendar":
        """Read ``holidays.toml`` (``[[year]]`` tables with ``year``, ``holidays`` and
        ``workdays`` lists of ISO dates); a missing file means no overrides."""
        cal = cls()
        if path is None or not path.exists():
            return cal
        with path.open("rb") as fh:
            data = tomllib.load(fh)
        for block in data.get("year", []):
            cal.extra_years.add(int(block["year"]))
            cal.extra_holidays.update(date.fromisoformat(d) for d in block.get("holidays", []))
            cal.extra_workdays.update(date.fromisoformat(d) for d in block.get("workdays", []))
        return cal

    def known_years(self) -> str:
        """The years covered, for messages."""
        years = sorted({d.year for d in chinese_calendar.constants.holidays} | self.extra_years)
        return f"{years[0]}–{years[-1]}年" if years else "（无）"

    def fingerprint(self) -> str:
        """What the working days depend on (the package's version and the overrides): due
        dates stored with another fingerprint must be computed again."""
        digest = hashlib.sha256(getattr(chinese_calendar, "__version__", "").encode())
        for part in (sorted(self.extra_holidays), sorted(self.extra_workdays), sorted(self.extra_years)):
            digest.update(repr(part).encode())
        return digest.hexdigest()[:16]

    def is_workday(self, day: date) -> bool:
        """Whether ``day`` is a working day; raise :class:`CalendarRangeError` if unknown."""
        known = self._known.get(day)
        if known is None:
            known = self._known[day] = self._is_workday(day)
        return known

    def _is_workday(self, day: date) -> bool:
        if day in self.extra_workdays:
            return True
        if day in self.extra_holidays:
            return False
        if day.year in self.extra_years:
            return day.weekday() < 5
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError as exc:
            raise CalendarRangeError(
                f"{day.isoformat()}所在年份的节假日安排尚未收录（目前覆盖{self.known_years()}），"
                "无法按工作日计算期限；请在 knowledge/holidays.toml 中补充该年的放假安排。"
            ) from exc

    def add_workdays(self, start: date, days: int, pauses: list[tuple[date, date]] = ()) -> date:  # type: ignore[assignment]
        """The date on which ``days`` working days after ``start`` have passed.

        Working days inside a pause (after its first day, up to and including its last)
        are not counted.
        """
        if days <= 0:
            return start
        day, counted = start, 0
        for _ in range(days * 7 + 400):  # a bound: no real stretch has so many non-working days
            day += timedelta(days=1)
            if any(p_start < day <= p_end for p_start, p_end in pauses):
                continue
            if self.is_workday(day):
                counted += 1
                if counted == days:
                    return day
        raise DeadlineError("期限计算超出合理范围。")

    def workdays_between(self, start: date, end: date) -> int:
        """Working days after ``start`` up to and including ``end`` (negative if end < start)."""
        if end < start:
            return -self.workdays_between(end, start)
        return sum(1 for n in range(1, (end - start).days + 1) if self.is_workday(start + timedelta(days=n)))


@dataclass
class Pause:
    """A stretch not counted in the reply period: third-party or inter-agency consultation."""

    kind: str  # "third_party" | "consultation"
    start: date
    end: date | None = None  # None while it lasts
    reason: str = ""


@dataclass
class Clock:
    """The facts a deadline depends on."""

    received: date
    supplement_requested: date | None = None
    supplement_received: date | None = None
    extension_days: int = 0
    extension_reason: str = ""
    pauses: list[Pause] = field(default_factory=list)


@dataclass
class Deadline:
    """The computed state of an application's clock."""

    due: date | None  # None while paused (waiting for a supplement or a third party)
    state: str  # "running" | "waiting_supplement" | "paused"
    supplement_notice_due: date
    note: str = ""

    def days_left(self, cal: WorkCalendar, today: date) -> int | None:
        """Working days from today to the due date (0 on the due date, negative when overdue)."""
        if self.due is None:
            return None
        if today <= self.due:
            return cal.workdays_between(today, self.due)
        # Long overdue: count at most a year back (the queue lists it first either way).
        return -cal.workdays_between(max(self.due, today - timedelta(days=366)), today)


def compute(cal: WorkCalendar, clock: Clock) -> Deadline:
    """Apply the rules to ``clock``."""
    if clock.extension_days < 0 or clock.extension_days > MAX_EXTENSION_DAYS:
        raise DeadlineError(f"延长期限最多{MAX_EXTENSION_DAYS}个工作日。")
    notice_due = cal.add_workdays(clock.received, SUPPLEMENT_NOTICE_DAYS)
    if clock.supplement_requested and not clock.supplement_received:
        return Deadline(None, "waiting_supplement", notice_due, "等待申请人补正，答复期限暂停计算")
    start = clock.supplement_received or clock.received
    if clock.supplement_received and clock.supplement_received < clock.received:
        raise DeadlineError("补正收到日期不能早于申请收到日期。")
    open_pauses = [p for p in clock.pauses if p.end is None]
    if open_pauses:
        return Deadline(None, "paused", notice_due,
                        "征求第三方意见期间不计入答复期限" if open_pauses[0].kind == "third_party"
                        else "征求其他机关意见期间不计入答复期限")
    spans = [(p.start, p.end) for p in clock.pauses if p.end is not None and p.end >= start]
    for p_start, p_end in spans:
        if p_end < p_start:
            raise DeadlineError("暂停的结束日期不能早于开始日期。")
    due = cal.add_workdays(start, REPLY_DAYS + clock.extension_days, spans)
    note = "自收到补正之日起重新计算" if clock.supplement_received else ""
    return Deadline(due, "running", notice_due, note)
