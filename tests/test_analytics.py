"""Staff analytics: the figures on a small known log, the lazy daily rollup, the period form,
the CSV export and who may see them."""
from __future__ import annotations

import csv
import io
from datetime import date

import pytest
import sqlite_utils

from service import analytics
from service.analytics import Period, PeriodError, parse_period, report, roll_up
from service.migrations import apply_migrations
from service.storage import connect
from service.tickets import _ASK_INSERT

from conftest import AuthActions, make_app

TODAY = date(2026, 5, 3)
PERIOD = Period(date(2026, 5, 1), date(2026, 5, 3))


def _ask(created: str, status: str = "answered", kind: str | None = "faq", entry_id: int | None = None,
         token: str | None = None) -> tuple:
    return (created, "s1", "问题", "问题", status, kind, entry_id, None, 0.9, 12.0, None, token)


def _log(db: sqlite_utils.Database, rows: list[tuple]) -> None:
    db.conn.executemany(_ASK_INSERT, rows)


# Beijing is UTC+8: 2026-05-01T15:59:59Z is 23:59:59 on 1 May in Beijing, 16:00:00Z is 2 May.
LOG = [
    _ask("2026-04-30T15:59:59+00:00", entry_id=1, token="before"),   # 30 April: outside the period
    _ask("2026-04-30T16:00:00+00:00", entry_id=1, token="a1"),       # 1 May, 00:00 Beijing
    _ask("2026-05-01T15:59:59+00:00", entry_id=1, token="a2"),       # 1 May, 23:59:59 Beijing
    _ask("2026-05-01T03:00:00+00:00", "clarify", None, token="a3"),  # 1 May
    _ask("2026-05-01T16:00:00+00:00", entry_id=2, token="a4"),       # 2 May, 00:00 Beijing
    _ask("2026-05-02T01:00:00+00:00", entry_id=1, token="a5"),       # 2 May
    _ask("2026-05-02T02:00:00+00:00", "escalated", "handoff", token="a6"),
    _ask("2026-05-02T04:00:00+00:00", "escalated", None, token="a7"),
    _ask("2026-05-02T05:00:00+00:00", "answered", "fact", token="a8"),
    _ask("2026-05-03T15:59:59+00:00", entry_id=2, token="after"),    # 3 May, 23:59:59 Beijing
    _ask("2026-05-03T16:00:00+00:00", entry_id=3, token="later"),    # 4 May: outside the period
]


@pytest.fixture
def db() -> sqlite_utils.Database:
    """A migrated in-memory database with four entries (one archived) and the known log."""
    database = sqlite_utils.Database(memory=True)
    apply_migrations(database)
    for i, (key, status) in enumerate([("fees", "published"), ("deadline", "published"),
                                       ("appeal", "published"), ("old", "archived")], 1):
        database["entries"].insert({"id": i, "key": key, "question": f"问题{i}", "answer": "答",
                                    "category": "申请", "status": status})
    _log(database, LOG)
    return database


def test_questions_per_beijing_day(db) -> None:
    result = report(db, PERIOD)
    assert result.daily == [
        {"day": "2026-05-01", "answered": 2, "clarify": 1, "escalated": 0, "total": 3},
        {"day": "2026-05-02", "answered": 3, "clarify": 0, "escalated": 2, "total": 5},
        {"day": "2026-05-03", "answered": 1, "clarify": 0, "escalated": 0, "total": 1},
    ]
    assert result.totals == {"answered": 6, "clarify": 1, "escalated": 2}
    assert result.total == 9
    assert result.share("answered") == pytest.approx(6 / 9)
    assert result.share("escalated") == pytest.approx(2 / 9)
    assert {k["kind"]: k["n"] for k in result.kinds} == {"faq": 5, "fact": 1, "": 2, "handoff": 1}


def test_an_empty_period_has_zero_days_and_no_division_by_zero(db) -> None:
    result = report(db, Period(date(2025, 1, 1), date(2025, 1, 2)))
    assert [d["total"] for d in result.daily] == [0, 0]
    assert result.total == 0 and result.share("answered") == 0.0
    assert result.top_entries == [] and result.slowest_tickets == [] and result.mean_reply_hours is None
    assert [e["entry_id"] for e in result.never_hit] == [1, 2, 3]


def test_feedback_top_entries_and_entries_never_hit(db) -> None:
    db.conn.executemany("insert into feedback (ask_token, helpful, created) values (?, ?, ?)", [
        ("before", 0, "2026-04-30T15:59:59+00:00"),  # 30 April in Beijing: not counted
        ("a1", 1, "2026-04-30T16:00:01+00:00"),      # 1 May
        ("a2", 0, "2026-05-01T15:00:00+00:00"),      # 1 May
        ("a4", 0, "2026-05-01T16:30:00+00:00"),      # 2 May
        ("a5", 1, "2026-05-02T02:00:00+00:00"),      # 2 May
        ("a8", 1, "2026-05-02T06:00:00+00:00"),      # 2 May, a report figure: no entry
    ])
    result = report(db, PERIOD)
    assert result.feedback_daily == [{"day": "2026-05-01", "helpful": 1, "unhelpful": 1},
                                     {"day": "2026-05-02", "helpful": 2, "unhelpful": 1},
                                     {"day": "2026-05-03", "helpful": 0, "unhelpful": 0}]
    assert result.feedback_totals == {"helpful": 3, "unhelpful": 2}
    assert [(e["entry_id"], e["n"], e["helpful"], e["unhelpful"], e["key"]) for e in result.top_entries] == [
        (1, 3, 2, 1, "fees"), (2, 2, 0, 1, "deadline")]
    # Fewest 没用 last; ties in entry order.
    assert [(e["entry_id"], e["unhelpful"]) for e in result.unhelpful_entries] == [(1, 1), (2, 1)]
    # Entry 3 is asked only on 4 May, entry 4 is archived.
    assert [e["entry_id"] for e in result.never_hit] == [3]


def test_recent_ratings_are_read_live_and_rolled_up_once_settled(db) -> None:
    from datetime import datetime, timezone

    at = datetime(2026, 5, 2, 6, 0, tzinfo=timezone.utc)
    db.conn.executemany("insert into feedback (ask_token, helpful, created) values (?, ?, ?)", [
        ("a1", 1, "2026-05-01T00:00:00+00:00"),
        ("rated-first", 0, "2026-05-02T05:59:00+00:00"),  # its question is not logged yet
    ])
    early = report(db, PERIOD, now=at)  # one minute later: the second rating has not settled
    assert db.execute("select sum(helpful) + sum(unhelpful) from feedback_daily").fetchone()[0] == 1
    assert early.feedback_totals == {"helpful": 1, "unhelpful": 1}
    assert [(e["entry_id"], e["unhelpful"]) for e in early.unhelpful_entries] == []

    _log(db, [_ask("2026-05-02T05:58:59+00:00", entry_id=3, token="rated-first")])  # the log catches up
    live = report(db, PERIOD, now=at)
    assert [(e["entry_id"], e["unhelpful"]) for e in live.unhelpful_entries] == [(3, 1)]
    settled = report(db, PERIOD)  # now: everything has settled and is rolled up
    assert db.execute("select sum(helpful) + sum(unhelpful) from feedback_daily").fetchone()[0] == 2
    assert (settled.feedback_daily, settled.unhelpful_entries) == (live.feedback_daily, live.unhelpful_entries)
    assert settled.feedback_totals == {"helpful": 1, "unhelpful": 1}


def test_slowest_answered_tickets_of_the_period(db) -> None:
    rows = [  # code, created, replied_at (UTC)
        ("GK1", "2026-04-20T00:00:00+00:00", "2026-05-01T00:00:00+00:00"),  # 264 h
        ("GK2", "2026-04-30T00:00:00+00:00", "2026-05-02T06:00:00+00:00"),  # 54 h
        ("GK3", "2026-05-02T00:00:00+00:00", "2026-05-02T01:30:00+00:00"),  # 1.5 h
        ("GK4", "2026-01-01T00:00:00+00:00", "2026-04-30T15:00:00+00:00"),  # replied 30 April (Beijing)
        ("GK5", "2026-05-02T00:00:00+00:00", None),                         # not replied
    ]
    for code, created, replied in rows:
        db["tickets"].insert({"code": code, "question": "问", "status": "answered" if replied else "new",
                              "created": created, "updated": created, "replied_at": replied, "kind": "inquiry"})
    result = report(db, PERIOD)
    assert [(t["code"], t["hours"]) for t in result.slowest_tickets] == [("GK1", 264.0), ("GK2", 54.0), ("GK3", 1.5)]
    assert result.replied_count == 3
    assert result.mean_reply_hours == pytest.approx(round((264 + 54 + 1.5) / 3, 1))
    plan = " ".join(r[3] for r in db.execute(
        f"explain query plan select id, {analytics._REPLY_DAYS} from tickets where replied_at >= ? "
        "and replied_at < ?", ["a", "b"]))
    assert "tickets_reply_days" in plan


def _from_scratch(db: sqlite_utils.Database) -> analytics.Report:
    db.execute("delete from ask_daily")
    db.execute("delete from feedback_daily")
    db.execute("delete from meta where key in (?, ?)", [analytics.HIGH_WATER_KEY, analytics.FEEDBACK_HIGH_WATER_KEY])
    return report(db, PERIOD)


def test_the_rollup_is_incremental_and_counts_each_row_once(db) -> None:
    db.conn.executemany("insert into feedback (ask_token, helpful, created) values (?, ?, ?)",
                        [("a1", 1, "2026-05-01T00:00:00+00:00"), ("a4", 0, "2026-05-02T00:00:00+00:00")])
    first = report(db, PERIOD)
    assert roll_up(db) == 0 and analytics.roll_up_feedback(db) == 0  # nothing new since the view
    # Rows logged after the view, some stamped earlier than rows already rolled up (a
    # worker's buffer written late), one on a day already counted.
    _log(db, [_ask("2026-05-01T10:00:00+00:00", "escalated", "handoff"),
              _ask("2026-04-30T20:00:00+00:00", entry_id=3),
              _ask("2026-05-03T01:00:00+00:00", "clarify", None)])
    db.execute("insert into feedback (ask_token, helpful, created) values ('a5', 1, '2026-05-02T03:00:00+00:00')")
    again = report(db, PERIOD)
    assert again.feedback_totals == {"helpful": 2, "unhelpful": 1}
    assert again.totals == {"answered": first.totals["answered"] + 1, "clarify": first.totals["clarify"] + 1,
                            "escalated": first.totals["escalated"] + 1}
    assert [d["total"] for d in again.daily] == [5, 5, 2]
    scratch = _from_scratch(db)
    assert (again.daily, again.kinds, again.top_entries, again.never_hit, again.feedback_daily,
            again.unhelpful_entries) == (scratch.daily, scratch.kinds, scratch.top_entries, scratch.never_hit,
                                         scratch.feedback_daily, scratch.unhelpful_entries)


def test_rolling_up_in_small_chunks_gives_the_same_figures(db) -> None:
    assert roll_up(db, chunk=2) == len(LOG)
    chunked = list(db.execute("select * from ask_daily order by 1, 2, 3, 4"))
    db.execute("delete from ask_daily")
    db.execute("delete from meta where key = ?", [analytics.HIGH_WATER_KEY])
    roll_up(db)
    assert list(db.execute("select * from ask_daily order by 1, 2, 3, 4")) == chunked


@pytest.mark.parametrize(("start", "end", "expected"), [
    ("", "", (date(2026, 4, 4), TODAY)),
    (None, None, (date(2026, 4, 4), TODAY)),
    ("2026-05-01", "", (date(2026, 5, 1), TODAY)),
    ("", "2026-04-10", (date(2026, 3, 12), date(2026, 4, 10))),
    (" 2025-05-03 ", "2026-05-03", (date(2025, 5, 3), TODAY)),  # 366 days
    ("2026-05-03", "2026-05-03", (TODAY, TODAY)),
])
def test_period_defaults_and_bounds(start, end, expected) -> None:
    period = parse_period(start, end, TODAY)
    assert (period.start, period.end) == expected


@pytest.mark.parametrize(("start", "end", "message"), [
    ("2026/05/01", "", "格式不正确"),
    ("20260501", "", "格式不正确"),
    ("2026-W18-1", "", "格式不正确"),
    ("yesterday", "", "格式不正确"),
    ("2026-02-30", "", "不是有效的日期"),
    ("", "2026-13-01", "不是有效的日期"),
    ("2026-05-02", "2026-05-01", "开始日期不能晚于结束日期"),
    ("", "2026-05-04", "不能晚于今天"),
    ("1999-12-31", "2000-01-01", "不能早于"),
    ("2025-05-02", "2026-05-03", "最长为 366 天"),
])
def test_nonsense_periods_are_refused_in_chinese(start, end, message) -> None:
    with pytest.raises(PeriodError, match=message):
        parse_period(start, end, TODAY)


def test_day_bounds_are_beijing_midnights() -> None:
    assert PERIOD.utc_bounds() == ("2026-04-30T16:00:00+00:00", "2026-05-03T16:00:00+00:00")


# -- the pages --------------------------------------------------------------------------

@pytest.fixture
def site(tmp_path):  # type: ignore[no-untyped-def]
    """An app whose today is 3 May 2026, with the known log and a signed-in client maker."""
    app = make_app(tmp_path, TODAY=TODAY)
    db = connect(app.config["DATABASE"])
    _log(db, LOG)
    entry = db.execute("select id from entries where status = 'published' order by id limit 1").fetchone()[0]
    db.execute("update entries set question = '=HYPERLINK(\"http://x\")怎么申请' where id = ?", [entry])
    db.execute("update asks set entry_id = ? where entry_id = 1", [entry])
    db.close()
    return app


def _signed_in(app, role: str):  # type: ignore[no-untyped-def]
    client = app.test_client()
    AuthActions(app, client).login(f"{role}1", role)
    return client


def test_anonymous_visitors_are_sent_to_sign_in(site) -> None:
    client = site.test_client()
    for url in ("/staff/analytics", "/staff/analytics.csv"):
        response = client.get(url)
        assert response.status_code == 302
        assert "/staff/login" in response.headers["Location"]


@pytest.mark.parametrize("role", ["curator", "reviewer", "admin"])
def test_staff_see_the_figures_with_charts_and_tables(site, role: str) -> None:
    client = _signed_in(site, role)
    page = client.get("/staff/analytics?from=2026-05-01&to=2026-05-03")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "北京时间（UTC+8）" in html
    assert html.count('role="img"') == 4  # per day, shares, feedback, top entries (no tickets)
    assert '<tr><th scope="row" class="nowrap">2026-05-02</th><td class="num">5</td><td class="num">3</td>' \
           '<td class="num">0</td><td class="num">2</td></tr>' in html
    assert "66.7%" in html  # 6 of 9 answered
    assert "<script" not in html.split("</head>", 1)[1]  # no inline script in the body
    assert " style=" not in html


def test_a_nonsense_period_is_a_400_with_the_reason(site) -> None:
    client = _signed_in(site, "reviewer")
    for query in ("from=abc", "from=2026-05-03&to=2026-05-01", "to=2099-01-01", "from=2026-02-31",
                  "from=%00%ff", "from=" + "9" * 5000):
        for url in ("/staff/analytics?", "/staff/analytics.csv?"):
            response = client.get(url + query)
            assert response.status_code == 400, (url, query)
            assert 'role="alert"' in response.get_data(as_text=True)


def test_the_csv_export(site) -> None:
    client = _signed_in(site, "curator")
    response = client.get("/staff/analytics.csv?from=2026-05-01&to=2026-05-03")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "analytics-2026-05-01-2026-05-03.csv" in response.headers["Content-Disposition"]
    body = response.get_data()
    assert body.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0] == ["统计期间（北京时间）：2026-05-01 至 2026-05-03"]
    daily = rows.index(["每日提问（北京时间）"])
    assert rows[daily + 1] == ["日期", "提问总数", "已回答", "请求澄清", "转人工"]
    assert rows[daily + 2:daily + 5] == [["2026-05-01", "3", "2", "1", "0"], ["2026-05-02", "5", "3", "0", "2"],
                                         ["2026-05-03", "1", "1", "0", "0"]]
    shares = rows.index(["处理结果占比"])
    assert rows[shares + 2] == ["已回答", "6", "66.7%"]
    top = rows[rows.index(["提问最多的条目"]) + 2]
    assert top[2] == "'=HYPERLINK(\"http://x\")怎么申请" and top[4] == "3"  # formula-safe, 3 hits


def test_the_citizen_api_is_unaffected_and_its_questions_are_counted(site) -> None:
    staff = _signed_in(site, "reviewer")
    citizen = site.test_client()
    response = citizen.post("/api/ask", json={"question": "答复期限是多久"})
    assert response.status_code == 200 and response.get_json()["status"] == "answered"
    assert citizen.get("/staff/analytics").status_code == 302  # a citizen's client is still not staff

    def today_row(text: str) -> list[str]:
        real_today = analytics.beijing_today().isoformat()
        return next(r for r in csv.reader(io.StringIO(text)) if r and r[0] == real_today)

    # The app's TODAY is fixed in May 2026; the question is logged at the real time.
    site.config["TODAY"] = analytics.beijing_today()
    before = staff.get("/staff/analytics.csv").get_data().decode("utf-8-sig")
    citizen.post("/api/ask", json={"question": "申请政府信息公开要收费吗？"})
    after = staff.get("/staff/analytics.csv").get_data().decode("utf-8-sig")
    assert int(today_row(after)[1]) == int(today_row(before)[1]) + 1


@pytest.mark.parametrize(("largest", "ticks"), [
    (0, ["0", "1", "2", "3", "4", "5"]),
    (7, ["0", "2", "4", "6", "8", "10"]),
    (14, ["0", "5", "10", "15", "20"]),
    (1234, ["0", "500", "1,000", "1,500", "2,000"]),
])
def test_chart_columns_are_scaled_to_round_ticks(largest: int, ticks: list[str]) -> None:
    from service.views.staff_analytics import _stacked_columns

    chart = _stacked_columns([{"day": "2026-05-01", "a": largest, "b": 0},
                              {"day": "2026-05-02", "a": largest // 2, "b": largest - largest // 2}], ["a", "b"])
    assert [t["value"] for t in chart["ticks"]] == ticks
    tall = largest / float(ticks[-1].replace(",", "")) * (chart["bottom"] - chart["ticks"][-1]["y"])
    for column in chart["columns"]:  # both days total `largest`: equally tall, stacked without gaps
        assert sum(p["height"] for p in column["parts"]) == pytest.approx(tall, abs=0.02)
        for lower, upper in zip(column["parts"], column["parts"][1:]):
            assert upper["y"] + upper["height"] == pytest.approx(lower["y"], abs=0.02)


def test_the_roll_up_command_builds_the_daily_tables_ahead_of_the_page(tmp_path) -> None:
    app = make_app(tmp_path)
    db = connect(app.config["DATABASE"])
    _log(db, LOG)
    db.execute("insert into feedback (ask_token, helpful, created) values ('a1', 1, '2026-05-01T00:00:00+00:00')")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["roll-up"])
    assert result.exit_code == 0, result.output
    assert f"已汇总 {len(LOG)} 条提问记录、1 条评价" in result.output
    assert db.execute("select sum(n) from ask_daily").fetchone()[0] == len(LOG)
    assert db.execute("select sum(helpful) from feedback_daily").fetchone()[0] == 1
    again = runner.invoke(args=["roll-up"])
    assert "已汇总 0 条提问记录、0 条评价" in again.output  # nothing counted twice
    assert db.execute("select sum(n) from ask_daily").fetchone()[0] == len(LOG)
