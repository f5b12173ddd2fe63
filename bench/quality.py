"""How well the desk answers the project's own labelled questions, by split, style and decision.

    python bench/quality.py                      # every set, in process, on a fresh database
    python bench/quality.py --split holdout      # the held-out split only
    python bench/quality.py --show               # also list the tune split's failures
    python bench/quality.py --url http://127.0.0.1:5000   # over HTTP against a running server

The question sets are ``tests/data/eval/part_*.jsonl`` (written by helpers shown only the
topic list, ``tests/data/eval/topics.md``) and the checks of the other agencies' reports,
``tests/data/reports/*.questions.jsonl`` (each report is imported first, by the CLI's code).
Each case belongs to ``tune`` or ``holdout`` by a hash of its id (``service/evaluation.py``).
The rule: nobody looks at holdout failures to change the knowledge or the code; ``--show``
lists tune failures only.

Prints, per split: accuracy, the share answered and the share of answers that were wrong,
by style and by expected decision.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.evaluation import Report, judge, load_cases, split_of  # noqa: E402

EVAL = ROOT / "tests" / "data" / "eval"
REPORTS = ROOT / "tests" / "data" / "reports"


def report_files() -> list[tuple[Path, Path]]:
    """(report file, its checks) for every foreign report with checks."""
    out = []
    for checks in sorted(REPORTS.glob("*.questions.jsonl")):
        stem = checks.name[: -len(".questions.jsonl")]
        found = [p for p in REPORTS.glob(stem + ".*") if p.suffix in (".docx", ".html", ".txt")]
        if found:
            out.append((found[0], checks))
    return out


def in_process_asker(reports: list[Path]) -> Callable[[str, str], dict[str, Any]]:
    """Ask a fresh app (temporary database) through Flask's test client."""
    from service import create_app
    from service.knowledge import import_report
    from service.storage import connect

    tmp = Path(tempfile.mkdtemp(prefix="quality-"))
    app = create_app({"TESTING": True, "DATABASE": str(tmp / "q.db"), "RATELIMIT_ENABLED": False,
                      "INSTANCE_PATH": str(tmp / "instance")})
    with app.app_context():
        db = connect(app.config["DATABASE"])
        for path in reports:
            import_report(db, path.read_bytes(), path.name)
        keys = {r["id"]: r["key"] for r in db.query("select id, key from entries")}
    client = app.test_client()

    def ask(question: str, session: str) -> dict[str, Any]:
        response = client.post("/api/ask", json={"question": question, "session": session})
        reply = response.get_json() or {"status": None, "error": response.status_code}
        if "key" not in reply and reply.get("kind") == "faq":  # a server older than the key field
            reply["key"] = f"faq:{keys.get(reply.get('entry_id'))}"
        return reply

    return ask


def http_asker(base: str) -> Callable[[str, str], dict[str, Any]]:
    """Ask a running server over HTTP, as a real client would."""
    def ask(question: str, session: str) -> dict[str, Any]:
        body = json.dumps({"question": question, "session": session}).encode()
        req = urllib.request.Request(base.rstrip("/") + "/api/ask", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    return ask


def run(ask: Callable[[str, str], dict[str, Any]], cases: list[dict[str, Any]]) -> Report:
    """Ask every case (turns of a conversation in one session) and judge the replies."""
    report = Report()
    for i, case in enumerate(cases):
        session = f"quality-{case['conv']}" if case.get("conv") else f"quality-{i}"
        try:
            reply = ask(case["q"], session)
        except Exception as exc:  # a crash is a failure, not the end of the run
            reply = {"status": None, "error": repr(exc)[:120]}
        report.rows.append((case, reply, judge(case, reply)))
    return report


def print_report(report: Report, split: str, show: bool) -> None:
    """Print one split's figures."""
    in_split = (lambda c: True) if split == "all" else (lambda c: split_of(c) == split)
    print(f"\n== {split} ==")
    print(f"{'all':22s} {report.tally(in_split).line()}")
    print("-- by decision expected")
    for name, t in report.by("expect", in_split).items():
        print(f"  {name:20s} {t.line()}")
    print("-- by style")
    for name, t in report.by("style", in_split).items():
        extra = f" · second question offered {t.also_offered}/{t.also}" if t.also else ""
        print(f"  {name:20s} {t.line()}{extra}")
    print("-- by set")
    for name, t in report.by("source", in_split).items():
        print(f"  {name:36s} {t.line()}")
    if show and split != "holdout":
        print("-- failures (tune only)")
        for case, reply, verdict in report.rows:
            if in_split(case) and split_of(case) == "tune" and verdict.outcome != "correct":
                print(f"  {verdict.outcome:5s} {case['id']:8s} [{case['expect']} {case.get('key') or ''}] "
                      f"{case['q'][:70]} -> {reply.get('status')} {reply.get('key')} "
                      f"{(reply.get('answer') or '')[:50]!r}")


def print_curve(cases: list[dict[str, Any]], reports: list[Path], split: str) -> None:
    """The trade-off between the share answered and the share of answers that are wrong, as
    the answer threshold moves, over the single questions of a split that expect an answer
    or an escalation (what the decision model decides between)."""
    from service import create_app
    from service.db import get_desk
    from service.fitting import candidate_is_right
    from service.knowledge import import_report
    from service.storage import connect

    tmp = Path(tempfile.mkdtemp(prefix="curve-"))
    app = create_app({"TESTING": True, "DATABASE": str(tmp / "q.db"), "INSTANCE_PATH": str(tmp / "instance")})
    points = []
    with app.app_context():
        db = connect(app.config["DATABASE"])
        for path in reports:
            import_report(db, path.read_bytes(), path.name)
        desk = get_desk()
        for case in cases:
            if split_of(case) != split or case["expect"] not in ("answer", "escalate"):
                continue
            if (case.get("conv") and int(case.get("turn", 1)) > 1) or desk._chitchat(case["q"]) is not None:
                continue
            whole = desk._analyse(case["q"])
            reading, _ = desk._focus(case["q"], whole)
            if not reading.candidates:
                points.append((0.0, False))
                continue
            top = reading.candidates[0]
            text = desk.passages[top.doc.ref]["text"] if top.doc.kind == "passage" else ""
            # What no confidence could make an answer (a candidate the candidate model finds
            # more likely wrong, another body's business) stays unanswered at every threshold.
            confidence = reading.confidence if desk.model.answerable(reading.features) else 0.0
            points.append((confidence, candidate_is_right(desk, case, top.doc.kind, top.doc.ref, text)))
        threshold = desk.model.answer_threshold
    print(f"\n== answered / wrong curve ({split}, {len(points)} questions; the fitted threshold is {threshold:.3f}) ==")
    print("  threshold  answered  wrong of answers")
    for t in (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, round(threshold, 3), 0.95, 0.97, 0.99):
        answered = [ok for p, ok in points if p >= t]
        wrong = sum(not ok for ok in answered)
        share = len(answered) / len(points) if points else 0.0
        print(f"  {t:9.3f}  {100 * share:7.1f}%  {100 * wrong / len(answered) if answered else 0:6.1f}%")


def main() -> None:
    """Parse flags, run the sets, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="score a running server over HTTP (reports must be imported there)")
    parser.add_argument("--split", choices=["tune", "holdout", "calibration", "all", "both"], default="both",
                        help="calibration: the questions the fit sets its thresholds on (figures only)")
    parser.add_argument("--show", action="store_true", help="list the tune split's failures")
    parser.add_argument("--only", help="only sets whose file name contains this")
    parser.add_argument("--curve", action="store_true",
                        help="also print the answered / wrong curve of the decision model on each split")
    args = parser.parse_args()
    pairs = report_files()
    paths = sorted(EVAL.glob("part_*.jsonl")) + [checks for _, checks in pairs]
    if args.split == "calibration":
        paths = sorted(EVAL.glob("calibration*.jsonl"))
    if args.only:
        paths = [p for p in paths if args.only in p.name]
    cases = load_cases(paths)
    ask = http_asker(args.url) if args.url else in_process_asker([r for r, _ in pairs])
    report = run(ask, cases)
    for split in (["tune", "holdout"] if args.split == "both" else [args.split]):
        print_report(report, split, args.show)
        if args.curve and split != "all":
            print_curve(cases, [r for r, _ in pairs], split)


if __name__ == "__main__":
    main()
