"""Table 三 generated from applications: synthetic year, the seed's 2021 figures, exports."""
from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path

from service import annual_table as t3
from service.reports import parse_report

ROOT = Path(__file__).resolve().parent.parent


def _synthetic(year: int, seed: int = 7) -> list[t3.Application]:
    rng = random.Random(seed)
    apps = []
    n = 0
    # every outcome row and applicant column at least once, in the year
    for outcome in t3.OUTCOMES:
        for col in t3.APPLICANT_COLS:
            for _ in range(rng.randint(1, 2)):
                received = date(year, 1, 1) + timedelta(days=rng.randint(0, 330))
                apps.append(t3.Application(f"A{n}", col, received, received + timedelta(days=rng.randint(1, 30)), outcome))
                n += 1
    # carried over from the year before, closed this year
    for col in t3.APPLICANT_COLS[:3]:
        apps.append(t3.Application(f"B{n}", col, date(year - 1, 12, 20), date(year, 1, 10), "disclosed"))
        n += 1
    # received late this year, still open (carried into the next year)
    for col in t3.APPLICANT_COLS[2:]:
        apps.append(t3.Application(f"C{n}", col, date(year, 12, 28), None, None))
        apps.append(t3.Application(f"D{n}", col, date(year, 12, 15), date(year + 1, 1, 5), "partial"))
        n += 1
    # noise that must not count: finished last year, received next year
    apps.append(t3.Application("E1", "natural", date(year - 1, 3, 1), date(year - 1, 3, 20), "disclosed"))
    apps.append(t3.Application("E2", "natural", date(year + 1, 1, 2), None, None))
    return apps


def test_synthetic_year_matches_independent_counts_and_the_rule() -> None:
    year = 2025
    apps = _synthetic(year)
    table = t3.compute(year, apps)
    assert table.problems == []
    for col in t3.APPLICANT_COLS:
        mine = [a for a in apps if a.applicant == col]
        new = sum(1 for a in mine if a.received.year == year)
        carried_in = sum(1 for a in mine if a.received.year < year and (a.closed is None or a.closed.year >= year))
        closed = [a for a in mine if a.received.year <= year and a.closed and a.closed.year == year]
        carried_out = sum(1 for a in mine if a.received.year <= year and (a.closed is None or a.closed.year > year))
        assert table.value("new", col) == new
        assert table.value("carried_in", col) == carried_in
        assert table.value("outcome_total", col) == len(closed)
        assert table.value("carried_out", col) == carried_out
        for outcome in t3.OUTCOMES:
            assert table.value(outcome, col) == sum(1 for a in closed if a.outcome == outcome)
        assert new + carried_in == len(closed) + carried_out
    assert table.value("carried_in", "total") == 3 and table.value("carried_out", "total") == 8
    assert all(table.value(o, "total") >= 1 for o in t3.OUTCOMES)


def test_a_closed_application_without_outcome_is_explained() -> None:
    apps = [t3.Application("GK1", "natural", date(2025, 3, 1), date(2025, 3, 20), None)]
    table = t3.compute(2025, apps)
    assert any("GK1" in p and "没有记录办理结果" in p for p in table.problems)
    assert any("第一项加第二项为1" in p for p in table.problems)


def test_the_seed_2021_figures_are_reproduced_cell_for_cell() -> None:
    seed = parse_report((ROOT / "knowledge" / "reports" / "nbs-2021-disclosure-report.txt").read_bytes(), "nbs.txt")
    apps, n = [], 0
    for outcome in t3.OUTCOMES:
        for col in t3.APPLICANT_COLS:
            for _ in range(int(seed.value(outcome, col, "三") or 0)):
                apps.append(t3.Application(f"S{n}", col, date(2021, 3, 1), date(2021, 3, 20), outcome))
                n += 1
    table = t3.compute(2021, apps)
    assert table.problems == []
    for row in t3.ROWS:
        for col in t3.COLS:
            assert table.value(row, col) == int(seed.value(row, col, "三") or 0), (row, col)


def test_exports_read_back_equal() -> None:
    table = t3.compute(2025, _synthetic(2025))
    for kind, data in [("xlsx", t3.to_xlsx(table)), ("docx", t3.to_docx(table))]:
        back = t3.read_back(data, kind)
        assert set(back) == set(t3.ROWS), kind
        for row in t3.ROWS:
            assert back[row] == table.cells[row], (kind, row)
