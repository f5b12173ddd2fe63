"""How the desk scales: 400, 10,000 and 100,000 FAQ entries, against two baselines.

    pip install -e ".[bench]" && python bench/bench_scale.py [--sizes 400,10000,100000]

For each size, a child process (so memory is measured alone) builds a knowledge base
(the shipped FAQ and report plus seeded synthetic entries from bench/synth.py) and
reports: start-up to the first answer, index build time, in-process p50/p99 of a full
ask (normalise, retrieve, re-rank, decide, open a ticket if escalated, log) and of the
same through the Flask test client (adds request parsing and JSON), and peak resident
memory. On the same data and questions it times two baselines — a linear
rapidfuzz scan over every phrasing (how ChatterBot matches) and rank_bm25 retrieval with
our re-rank — and reports top-1 accuracy on the FAQ questions of the public and
held-out question sets (a question counts when the top entry's answer passes its check).
"""
from __future__ import annotations

import argparse
import json
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def question_sets() -> list[dict]:
    """Answer cases of the public and held-out sets."""
    cases = []
    for path in [ROOT / "tests" / "data" / "public_questions.jsonl", ROOT / "tests" / "data" / "heldout_questions.jsonl"]:
        if path.exists():
            cases += [json.loads(l) for l in path.read_text(encoding="utf-8").splitlines() if l.strip()]
    return cases


def passes(case: dict, answer: str) -> bool:
    """The scorer's check for an answer case."""
    return any(re.search(c[3:], answer) if c.startswith("re:") else c in answer for c in case["any"])


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def build_db(path: Path, size: int) -> None:
    """The shipped knowledge plus synthetic entries up to ``size`` FAQ entries."""
    import synth
    from service.knowledge import now, read_faq, seed
    from service.migrations import apply_migrations
    from service.storage import connect

    db = connect(path)
    apply_migrations(db)
    seed(db, ROOT / "knowledge", "国家统计局")
    extra = max(0, size - len(read_faq(ROOT / "knowledge")))
    stamp = now()
    with db.atomic():
        for e in synth.entries(extra):
            entry_id = db["entries"].insert({"key": e["key"], "question": e["question"], "answer": e["answer"],
                                             "category": e["category"], "source": e["source"], "status": "published",
                                             "version": 1, "created": stamp, "updated": stamp}).last_pk
            db["alternates"].insert_all({"entry_id": entry_id, "text": a, "created": stamp} for a in e["alternates"])
        db.execute("update meta set value = cast(value as integer) + 1 where key = 'kb_version'")
    db.close()


def child(db_path: str, rounds: int, baseline_questions: int) -> dict:
    """Measure one size in this (fresh) process."""
    started = time.perf_counter()
    from service import create_app
    from service.db import get_desk

    app = create_app({"DATABASE": db_path, "RATELIMIT_ENABLED": False,
                      "INSTANCE_PATH": str(Path(db_path).parent / "instance")})
    client = app.test_client()
    client.post("/api/ask", json={"question": "怎么申请政府信息公开"})
    startup = time.perf_counter() - started
    cases = question_sets()
    questions = [c["q"] for c in cases]
    for q in questions[:20]:  # warm caches, as the first minutes of traffic would
        client.post("/api/ask", json={"question": q})
    flask_ms, core_ms = [], []
    from service.tickets import log_ask, open_ticket

    for i in range(rounds):
        for q in questions:
            app.extensions["desk"]._cache.clear()  # time new questions, not the reply cache
            t = time.perf_counter()
            client.post("/api/ask", json={"question": q, "session": f"b{i}"})
            flask_ms.append((time.perf_counter() - t) * 1000)
    with app.app_context():
        from service.db import get_db

        db, desk = get_db(), get_desk()
        for i in range(rounds):
            for q in questions:
                desk._cache.clear()  # time new questions, not the reply cache
                t = time.perf_counter()
                reply = desk.ask(q)
                ticket = None
                if reply.status == "escalated":
                    ticket = open_ticket(db, secret=app.config["SECRET_KEY"], question=q,
                                         normalised=reply.normalised, session=f"c{i}",
                                         candidates=reply.candidates)["id"]
                log_ask(db, {"session": f"c{i}", "question": q, "normalised": reply.normalised,
                             "status": reply.status, "kind": reply.kind, "entry_id": reply.entry_id,
                             "ref": reply.ref, "confidence": reply.confidence, "latency_ms": 0.0,
                             "ticket_id": ticket})
                core_ms.append((time.perf_counter() - t) * 1000)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # ours only, before the baselines
    with app.app_context():
        desk = get_desk()
        from service.db import get_db
        from service.desk import Desk

        app.extensions.pop("desk")
        t = time.perf_counter()
        desk = Desk.build(get_db(), Path(app.config["KNOWLEDGE_DIR"]), desk.settings, desk.version)
        build = time.perf_counter() - t
        entries = desk.entries
        faq_docs = [d for d in desk.index.docs if d.kind == "faq"]
        answers = {d.ref: entries[d.ref]["answer"] for d in faq_docs}
        # FAQ cases: answer cases that some FAQ answer can pass.
        faq_cases = [c for c in cases if c["expect"] == "answer" and any(passes(c, a) for a in answers.values())]
        result = {"entries": len(entries), "startup_s": startup, "build_s": build,
                  "ask_p50_ms": statistics.median(core_ms), "ask_p99_ms": pct(core_ms, 99),
                  "flask_p50_ms": statistics.median(flask_ms), "flask_p99_ms": pct(flask_ms, 99)}
        result.update(measure_methods(desk, faq_docs, answers, faq_cases[:baseline_questions]))
    result["rss_mb"] = rss
    return result


def measure_methods(desk, faq_docs, answers, cases) -> dict:  # type: ignore[no-untyped-def]
    """Ours and the two baselines: per-question latency and top-1 accuracy on FAQ cases."""
    from rank_bm25 import BM25Okapi
    from rapidfuzz import fuzz, process

    pipeline = desk.pipeline
    phrasings = [p for d in faq_docs for p in d.phrasings]
    owners = [d.ref for d in faq_docs for _ in d.phrasings]
    doc_tokens = [[t for toks in d.phrasing_tokens for t in toks] for d in faq_docs]
    t = time.perf_counter()
    bm25 = BM25Okapi(doc_tokens)
    bm25_build = time.perf_counter() - t

    def ours(q: str):  # type: ignore[no-untyped-def]
        norm, toks = pipeline.analyse(q)
        cands = [c for c in desk.index.search(desk.index.prepare(toks), norm, limit=10) if c.doc.kind == "faq"]
        return cands[0].doc.ref if cands else None

    def linear(q: str):  # type: ignore[no-untyped-def]
        norm = pipeline.normalise(q)
        best = process.extractOne(norm, phrasings, scorer=fuzz.ratio)
        return owners[best[2]] if best else None

    def bm25_rerank(q: str):  # type: ignore[no-untyped-def]
        norm, toks = pipeline.analyse(q)
        scores = bm25.get_scores(toks)
        top = sorted(range(len(scores)), key=scores.__getitem__, reverse=True)[:50]
        compact = norm.replace(" ", "")
        best = max(top, key=lambda i: max(fuzz.ratio(compact, p.replace(" ", "")) for p in faq_docs[i].phrasings),
                   default=None)
        return faq_docs[best].ref if best is not None else None

    out = {"faq_questions": len(cases), "bm25_build_s": bm25_build}
    for name, fn in [("ours", ours), ("linear", linear), ("bm25", bm25_rerank)]:
        times, correct = [], 0
        for case in cases:
            t = time.perf_counter()
            ref = fn(case["q"])
            times.append((time.perf_counter() - t) * 1000)
            correct += ref is not None and passes(case, answers[ref])
        out[f"{name}_p50_ms"] = statistics.median(times)
        out[f"{name}_p99_ms"] = pct(times, 99)
        out[f"{name}_top1"] = correct / len(cases) if cases else 0.0
    return out


def main() -> None:
    """Build each size, measure it in a child process, print the table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="400,10000,100000")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--baseline-questions", type=int, default=120)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], int(args.child[1]), int(args.child[2]))))
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in [int(s) for s in args.sizes.split(",")]:
            db = Path(tmp) / f"kb{size}.db"
            t = time.perf_counter()
            build_db(db, size)
            made = time.perf_counter() - t
            out = subprocess.run([sys.executable, __file__, "--child", str(db), str(args.rounds),
                                  str(args.baseline_questions)], capture_output=True, text=True, check=True)
            row = json.loads(out.stdout.strip().splitlines()[-1])
            row["size"], row["db_s"] = size, made
            rows.append(row)
            print(f"-- {size} entries (database made in {made:.1f} s)", flush=True)
            print(json.dumps(row, ensure_ascii=False), flush=True)
    print()
    print("| entries | start-up to first answer | index build | full ask p50 / p99 | via Flask test client p50 / p99 | peak RSS | "
          "ours p50 / top-1 | linear rapidfuzz p50 / top-1 | rank_bm25 + re-rank p50 / top-1 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['entries']:,} | {r['startup_s']:.2f} s | {r['build_s']:.2f} s | "
              f"{r['ask_p50_ms']:.2f} / {r['ask_p99_ms']:.2f} ms | {r['flask_p50_ms']:.2f} / {r['flask_p99_ms']:.2f} ms | "
              f"{r['rss_mb']:.0f} MB | "
              f"{r['ours_p50_ms']:.2f} ms / {r['ours_top1']:.1%} | {r['linear_p50_ms']:.2f} ms / {r['linear_top1']:.1%} | "
              f"{r['bm25_p50_ms']:.2f} ms / {r['bm25_top1']:.1%} |")
    print(f"(top-1 over {rows[0]['faq_questions']} FAQ questions of the public and held-out sets)")


if __name__ == "__main__":
    main()
