"""In-process latency of one ask over the shipped knowledge base, and start-up time.

    python bench/bench_ask.py [--rounds 20]

Prints start-up to first answer (fresh database: migrate, seed, index), then p50/p99 of
a full ask (normalise, retrieve, re-rank, decide, log) through the Flask test client
and of the desk alone, over the public and held-out question sets.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def questions() -> list[str]:
    """The questions to time: the public set and our held-out set."""
    paths = [ROOT / "tests" / "data" / "public_questions.jsonl", ROOT / "tests" / "data" / "heldout_questions.jsonl"]
    out = []
    for path in paths:
        if path.exists():
            out += [json.loads(l)["q"] for l in path.read_text(encoding="utf-8").splitlines() if l.strip()]
    return out


def percentile(values: list[float], pct: float) -> float:
    """The pct-th percentile of values (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(pct / 100 * (len(ordered) - 1))))]


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        from service import create_app
        from service.db import get_desk

        app = create_app({"DATABASE": str(Path(tmp) / "bench.db")})
        client = app.test_client()
        client.post("/api/ask", json={"question": "怎么申请政府信息公开"})
        startup = time.perf_counter() - started
        qs = questions()
        http_ms: list[float] = []
        for i in range(args.rounds):
            for q in qs:
                app.extensions["desk"]._cache.clear()  # time new questions, not the reply cache
                t = time.perf_counter()
                client.post("/api/ask", json={"question": q, "session": f"bench-{i}"})
                http_ms.append((time.perf_counter() - t) * 1000)
        with app.app_context():
            desk = get_desk()
            core_ms: list[float] = []
            for _ in range(args.rounds):
                for q in qs:
                    desk._cache.clear()
                    t = time.perf_counter()
                    desk.ask(q)
                    core_ms.append((time.perf_counter() - t) * 1000)
            entries = len(desk.entries)
            docs = len(desk.index.docs)
    print(f"knowledge: {entries} FAQ entries, {docs} matchable documents; {len(qs)} questions x {args.rounds} rounds")
    print(f"start-up to first answer (new database): {startup:.2f} s")
    print(f"full ask via Flask test client (validate, match, decide, ticket, log): "
          f"p50 {statistics.median(http_ms):.2f} ms, p99 {percentile(http_ms, 99):.2f} ms")
    print(f"desk alone (normalise, retrieve, re-rank, decide): "
          f"p50 {statistics.median(core_ms):.2f} ms, p99 {percentile(core_ms, 99):.2f} ms")


if __name__ == "__main__":
    main()
