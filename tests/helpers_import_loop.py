"""Apply FAQ spreadsheet imports in a loop against a database file (run as a subprocess).

    python tests/helpers_import_loop.py DB [--rounds N] [--seconds S]

Each round exports the FAQ as CSV, sets the 答案 cell of every row to "第N轮导入", and
applies the file through parse_import / plan_import / apply_import, as a curator's upload
would. A half-applied round would leave a mix of two markers in the entries.

Prints one line per event, flushed, for the test to follow:
    ready                 the service code is loaded
    applying N            about to apply round N
    applied N             round N committed
    error N <message>     round N raised (the loop stops; exit status 1)
Bounded by --rounds and --seconds; the test normally SIGKILLs it long before either.
"""
from __future__ import annotations

import argparse
import csv
import io
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from service import faq  # noqa: E402
from service.storage import connect  # noqa: E402

USER = {"id": None, "username": "reliability-importer"}


def marker(n: int) -> str:
    """The answer every entry gets in round ``n``."""
    return f"第{n}轮导入"


def round_file(db, n: int) -> bytes:  # type: ignore[no-untyped-def]
    """The FAQ as exported now, with every answer replaced by round ``n``'s marker."""
    text = faq.export_csv(db).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    column = rows[0].index(faq.FIELD_NAMES["answer"])
    for row in rows[1:]:
        row[column] = marker(n)
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("db")
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=120.0)
    args = parser.parse_args(argv)
    db = connect(args.db)
    print("ready", flush=True)
    deadline = time.monotonic() + args.seconds
    for n in range(1, args.rounds + 1):
        if time.monotonic() > deadline:
            break
        try:
            rows = faq.parse_import(round_file(db, n), f"round-{n}.csv")
            plan = faq.plan_import(db, rows)
            assert plan.has_changes, "a round must change every answer"
            print(f"applying {n}", flush=True)
            faq.apply_import(db, USER, rows, expected=plan.fingerprint(), filename=f"round-{n}.csv")
        except Exception as exc:  # reported to the test, which fails on it
            print(f"error {n} {type(exc).__name__}: {exc}", flush=True)
            return 1
        print(f"applied {n}", flush=True)
    db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
