"""Cross-validated quality of the fitting procedure, on the tune split only.

    python bench/cv_fit.py [--folds 5] [--max-wrong 0.003]

The tune cases are cut into folds (by a hash of each case's id, of its conversation for a
turn); for each fold, the decision model is fitted (``service.fitting.fit``) on the other
folds and the fold is asked through the API, as ``bench/quality.py`` asks. The figures are
what a change to the fitting procedure does to questions the fit did not see, without
looking at the holdout split: in-sample tune figures flatter a model that fits closely.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.quality import EVAL, report_files, run  # noqa: E402
from service.evaluation import Report, load_cases, split_of  # noqa: E402


def fold_of(case: dict, folds: int) -> int:
    """A case's fold, fixed by a hash of its id (its conversation's, for a turn)."""
    key = "cv:" + str(case.get("conv") or case["id"])
    return int(hashlib.sha256(key.encode()).hexdigest(), 16) % folds


def main() -> None:
    """Fit on all folds but one, ask that one; print the pooled figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--max-wrong", type=float, default=0.003)
    parser.add_argument("--show", action="store_true", help="list the wrong answers (tune cases only)")
    args = parser.parse_args()
    from service import create_app
    from service.db import get_desk
    from service.fitting import fit
    from service.knowledge import import_report
    from service.storage import connect

    pairs = report_files()
    cases = [c for c in load_cases(sorted(EVAL.glob("part_*.jsonl")) + [q for _, q in pairs])
             if split_of(c) == "tune"]
    # The calibration questions join every fold's fit (they only set its thresholds) and are
    # never asked here.
    calibration = [c for c in load_cases(sorted(EVAL.glob("calibration*.jsonl"))) if split_of(c) == "calibration"]
    tmp = Path(tempfile.mkdtemp(prefix="cv-fit-"))
    app = create_app({"TESTING": True, "DATABASE": str(tmp / "q.db"), "RATELIMIT_ENABLED": False,
                      "INSTANCE_PATH": str(tmp / "instance")})
    with app.app_context():
        db = connect(app.config["DATABASE"])
        for path, _ in pairs:
            import_report(db, path.read_bytes(), path.name)
    client = app.test_client()

    def ask(question: str, session: str) -> dict:
        response = client.post("/api/ask", json={"question": question, "session": session})
        return response.get_json() or {"status": None}

    pooled = Report()
    for k in range(args.folds):
        with app.app_context():
            fit(get_desk(), [c for c in cases if fold_of(c, args.folds) != k] + calibration,
                max_wrong=args.max_wrong)
        pooled.rows += run(ask, [c for c in cases if fold_of(c, args.folds) == k]).rows
    print(f"{'all (cross-validated)':22s} {pooled.tally().line()}")
    for name, t in pooled.by("expect").items():
        print(f"  {name:20s} {t.line()}")
    for name, t in pooled.by("style").items():
        print(f"  {name:20s} {t.line()}")
    if args.show:
        for case, reply, verdict in pooled.rows:
            if verdict.outcome == "wrong":
                print(f"  wrong {case['id']:8s} [{case['expect']} {case.get('key') or ''}] {case['q'][:60]} -> "
                      f"{reply.get('status')} {reply.get('key')} {(reply.get('answer') or '')[:40]!r}")


if __name__ == "__main__":
    main()
