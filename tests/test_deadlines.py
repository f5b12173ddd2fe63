"""Working-day deadlines around holidays and adjusted working weekends (dates counted by hand)."""
from __future__ import annotations

from datetime import date

import pytest

from service.deadlines import (CalendarRangeError, Clock, DeadlineError, Pause, WorkCalendar, compute)

CAL = WorkCalendar()


def test_spring_festival_2026_with_adjusted_saturdays() -> None:
    # Received Fri 6 Feb 2026. Working days: 9-13 Feb (5), Sat 14 Feb (adjusted, 6),
    # 15-23 Feb holiday, 24-27 Feb (10), Sat 28 Feb (adjusted, 11), 2-6 Mar (16), 9-12 Mar (20).
    result = compute(CAL, Clock(received=date(2026, 2, 6)))
    assert result.due == date(2026, 3, 12)
    # Supplement notice within 7 working days: 9-13 Feb (5), 14 Feb (6), 24 Feb (7).
    assert result.supplement_notice_due == date(2026, 2, 24)


def test_national_day_2025() -> None:
    # Received Fri 26 Sep 2025. Sun 28 Sep is a working day (1), 29-30 Sep (3), 1-8 Oct holiday,
    # 9-10 Oct (5), Sat 11 Oct (6), 13-17 (11), 20-24 (16), 27-30 Oct (20).
    assert compute(CAL, Clock(received=date(2025, 9, 26))).due == date(2025, 10, 30)


def test_extension_adds_up_to_twenty_working_days() -> None:
    # From 30 Oct 2025: 31 Oct (1), 3-7 Nov (6), 10-14 (11), 17-21 (16), 24-27 Nov (20).
    clock = Clock(received=date(2025, 9, 26), extension_days=20, extension_reason="需要调取档案")
    assert compute(CAL, clock).due == date(2025, 11, 27)
    with pytest.raises(DeadlineError):
        compute(CAL, Clock(received=date(2025, 9, 26), extension_days=21))


def test_supplement_pauses_then_restarts_the_clock() -> None:
    clock = Clock(received=date(2026, 3, 2), supplement_requested=date(2026, 3, 4))
    waiting = compute(CAL, clock)
    assert waiting.due is None and waiting.state == "waiting_supplement"
    # Supplement arrives Mon 16 Mar 2026: 20 working days from then, 17 Mar .. 13 Apr,
    # with Qingming (4-6 Apr 2026) off: 17-20 (4), 23-27 (9), 30-31 Mar (11), 1-3 Apr (14),
    # 7-10 Apr (18), 13-14 Apr (20).
    clock.supplement_received = date(2026, 3, 16)
    assert compute(CAL, clock).due == date(2026, 4, 14)


def test_third_party_consultation_is_not_counted() -> None:
    # Received Mon 1 Jun 2026, no pause: 2-5 Jun (4), 8-12 (9), 15-18 (13), 19 Jun Dragon Boat
    # holiday, 22-26 (18), 29-30 (20) -> 30 Jun.
    assert compute(CAL, Clock(received=date(2026, 6, 1))).due == date(2026, 6, 30)
    # Consultation from Wed 10 Jun to Wed 24 Jun: the working days 11-24 Jun are not counted.
    open_pause = Clock(received=date(2026, 6, 1), pauses=[Pause("third_party", date(2026, 6, 10))])
    assert compute(CAL, open_pause).state == "paused"
    closed = Clock(received=date(2026, 6, 1), pauses=[Pause("third_party", date(2026, 6, 10), date(2026, 6, 24))])
    # Counted: 2-5, 8-10 Jun (7); paused 11-24 Jun; 25-26 (9), 29-30 (11), 1-3 Jul (14),
    # 6-10 Jul (19), 13 Jul (20).
    assert compute(CAL, closed).due == date(2026, 7, 13)


def test_dates_beyond_the_known_calendar_are_refused_not_guessed() -> None:
    with pytest.raises(CalendarRangeError, match="2027"):
        compute(CAL, Clock(received=date(2026, 12, 20)))


def test_holidays_file_extends_the_calendar(tmp_path) -> None:
    path = tmp_path / "holidays.toml"
    path.write_text('[[year]]\nyear = 2027\nholidays = ["2027-01-01"]\nworkdays = []\n', encoding="utf-8")
    cal = WorkCalendar.load(path)
    # Received Thu 24 Dec 2026: 25 (1), 28-31 Dec (5), 1 Jan 2027 holiday, 4-8 Jan (10), 11-15 (15), 18-22 (20).
    assert compute(cal, Clock(received=date(2026, 12, 24))).due == date(2027, 1, 22)


def test_days_left_counts_working_days() -> None:
    result = compute(CAL, Clock(received=date(2026, 2, 6)))
    assert result.days_left(CAL, date(2026, 3, 12)) == 0
    assert result.days_left(CAL, date(2026, 3, 5)) == 5
    assert result.days_left(CAL, date(2026, 3, 13)) == -1
