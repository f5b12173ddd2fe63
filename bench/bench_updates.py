"""Knowledge updates at scale, under the production server: start-up, save-to-answer,
the worst wait of questions during saves, and memory per worker.

    python bench/bench_updates.py [--size 100000] [--workers 2] [--saves 10]

Builds (once, kept under --dir) a knowledge base of ``--size`` FAQ entries (the shipped
ones plus bench/synth.py's), then starts `python run.py` (gunicorn, preloaded app) twice:
  1. without an index snapshot: the full build, as every start did before snapshots;
  2. from the snapshot the first start wrote.
For each: seconds from the process start to its first answered question, and the
proportional memory (PSS) of the master and each worker (shared pages are divided
among the processes sharing them; "unique" is what a worker holds alone).
Then, with clients asking new questions all along, it saves ``--saves`` new phrasings
(a curator's save, written to the database as the staff pages do) and reports for each
how long until every worker answers the new phrasing with its entry (20 answers in a
row over several connections), and the questions' p50 / p99 / worst latency during
the saves next to the same without saves; then, after the master re-forked its workers,
each worker's private memory as ``--use`` distinct questions are asked (pages of the shared
index a worker writes to, CPython's reference counts, become its own); and last, a report
imported while clients ask (added in place since d0cd5b2, a build in full before; see the
README): how long until every worker answers its figures, the questions' latency
meanwhile, and the most a worker held. Loopback only; bounded in time.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


# The master forks fresh workers at most this often once it holds a newer index (60 s by
# default; shorter here so that the run shows it).
REFORK_SETTLE = 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url: str, question: str, timeout: float = 60) -> dict:
    """The reply, with the answering worker's pid under ``_pid``."""
    req = urllib.request.Request(url, data=json.dumps({"question": question}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return {**json.loads(r.read()), "_pid": r.headers.get("X-Worker-Pid")}


def pss(pid: int) -> tuple[float, float]:
    """Proportional and unique (private) memory of a process, MB."""
    from service.worker_memory import rollup_kb

    values = rollup_kb(f"/proc/{pid}/smaps_rollup")
    unique = values.get("Private_Clean", 0) + values.get("Private_Dirty", 0)
    return values.get("Pss", 0) / 1024, unique / 1024


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def start(db: Path, instance: Path, workers: int) -> tuple[subprocess.Popen, str, float]:
    """Start the server; return it, its ask URL and the seconds to its first answer."""
    port = free_port()
    env = {**os.environ, "INQUIRY_INSTANCE": str(instance), "INQUIRY_RATE_LIMIT_EXEMPT_LOOPBACK": "1",
           "INQUIRY_SHOW_WORKER_PID": "1", "INQUIRY_INDEX_REFORK_SETTLE": str(REFORK_SETTLE)}
    began = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "--port", str(port), "--db", str(db),
                             "--workers", str(workers)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}/api/ask"
    while True:
        if proc.poll() is not None:
            raise SystemExit("服务未能启动")
        try:
            if post(url, "申请政府信息公开要多长时间", timeout=5).get("status"):
                return proc, url, time.perf_counter() - began
        except OSError:
            time.sleep(0.05)


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def memory(proc: subprocess.Popen, master: bool = True) -> dict:
    """PSS of the master (unless ``master`` is false: each reading walks its page tables)
    and PSS and private memory of each worker, MB."""
    master_pss = pss(proc.pid)[0] if master else None
    workers = []
    for p in children(proc.pid):
        try:
            workers.append(pss(p))
        except OSError:
            pass  # a worker that exited between the listing and the reading (replaced)
    return {"master_pss": master_pss, "worker_pss": [w[0] for w in workers],
            "worker_unique": [w[1] for w in workers]}


class Askers:
    """Clients asking new questions all along, recording each latency with its time;
    ``tag`` keeps one group's questions apart from another's (none is ever cached)."""

    def __init__(self, url: str, tag: str, clients: int = 4):
        self.url = url
        self.tag = tag
        self.samples: list[tuple[float, float]] = []
        self.stopping = False
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(clients)]

    def run(self, k: int) -> None:
        bases = [json.loads(l)["q"] for l in (ROOT / "tests" / "data" / "heldout_questions.jsonl")
                 .read_text(encoding="utf-8").splitlines() if l.strip()]
        n = 0
        while not self.stopping:
            n += 1
            question = f"{bases[n % len(bases)]}（{self.tag}第{k}-{n}问）"
            t = time.perf_counter()
            try:
                post(self.url, question)
            except OSError:
                pass
            self.samples.append((t, (time.perf_counter() - t) * 1000))

    def __enter__(self) -> "Askers":
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping = True
        for t in self.threads:
            t.join(30)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] if ordered else float("nan")


def save_to_answer(url: str, db_path: Path, saves: int, workers: int) -> tuple[list[float], list[float]]:
    """Seconds from each saved phrasing's commit until every worker has answered it with its
    entry and 20 answers in a row did; and how long each save took the curator (with the
    warning about the same phrasing on other entries)."""
    from service import faq
    from service.knowledge import knowledge_version
    from service.storage import connect

    db = connect(db_path)
    entry = db.execute("select id from entries where status = 'published' order by id desc limit 1").fetchone()[0]
    out, took = [], []
    run = time.strftime("%H%M%S")
    for i in range(saves):
        phrasing = f"第{i + 1}号测试窗口（{run}）星期几对外办公"
        version = knowledge_version(db)
        began = time.perf_counter()
        # The curator's save, in another thread: the clock starts at its commit (the warning
        # about the same phrasing on other entries is worked out after it).
        def save(text: str = phrasing) -> None:
            faq.add_alternate(connect(db_path), None, entry, text)
            took.append(time.perf_counter() - began)

        saving = threading.Thread(target=save)
        saving.start()
        watch = connect(db_path)
        while knowledge_version(watch) == version:
            if not saving.is_alive() and knowledge_version(watch) == version:
                raise SystemExit("保存失败：知识库版本没有变化")
            time.sleep(0.002)
        watch.close()
        saved = time.perf_counter()
        streak = 0
        right: set[str] = set()
        while (streak < 20 or len(right) < workers) and time.perf_counter() - saved < 120:
            reply = post(url, f"{phrasing}{'？' * (streak % 3 + 1)}{' ' * streak}")
            if reply.get("entry_id") == entry:
                streak += 1
                right.add(reply["_pid"])
            else:
                streak = 0
        out.append(time.perf_counter() - saved)
        saving.join()
        time.sleep(0.5)
    db.close()
    return out, took


def memory_under_use(proc: subprocess.Popen, url: str, total: int) -> dict:
    """Private memory of each worker after 1/6, 1/3, 2/3 and all of ``total`` distinct
    questions (4 clients): what a worker stops sharing as questions touch the index. Also
    the most any worker held at any reading (every 0.25 s), how many workers the master
    forked in the meantime (a worker over its memory budget is replaced, run.py), and the
    questions' latency throughout."""
    marks, out = [total // 6, total // 3, 2 * total // 3, total], []
    seen, highest = set(children(proc.pid)), 0.0
    started = len(seen)
    with Askers(url, "用后内存") as askers:
        while marks:
            unique = memory(proc, master=False)["worker_unique"]
            highest = max([highest, *unique])
            seen.update(children(proc.pid))
            if len(askers.samples) >= marks[0]:
                out.append((marks.pop(0), unique))
            time.sleep(0.25)
    return {"marks": out, "highest": highest, "forked": len(seen) - started,
            "latency": [ms for _, ms in askers.samples]}


REPORT = ROOT / "tests" / "data" / "reports" / "gd-general-office-2021.txt"


def import_to_answer(proc: subprocess.Popen, url: str, db_path: Path) -> dict:
    """A report imported while clients ask new questions all along: seconds from its commit
    until every worker answers one of its figures (20 answers in a row), the questions'
    latency meanwhile, and the most private memory any worker held at a reading (every
    second). The report is imported under a year the database does not hold yet for its
    agency, so that the figure is new to the desk."""
    from service import knowledge
    from service.storage import connect

    db = connect(db_path)
    held = {r[0] for r in db.execute("select year from reports where agency like '%广东%'")}
    year = next(y for y in range(2001, 2100) if y not in held)
    question = f"广东省政府办公厅{year}年本年新收政府信息公开申请多少件？"
    highest = 0.0
    with Askers(url, "导入中") as askers:
        time.sleep(1)
        began = time.perf_counter()
        knowledge.import_report(db, REPORT.read_bytes(), REPORT.name, year=year)
        db.close()
        imported = time.perf_counter()
        streak, right, read = 0, set(), 0.0
        while (streak < 20 or len(right) < 2) and time.perf_counter() - imported < 600:
            reply = post(url, f"{question}{'？' * (streak % 3 + 1)}{' ' * streak}")
            if "1314" in (reply.get("answer") or ""):
                streak += 1
                right.add(reply["_pid"])
            else:
                streak = 0
            if time.perf_counter() - read >= 1:
                highest = max([highest, *memory(proc, master=False)["worker_unique"]])
                read = time.perf_counter()
            time.sleep(0.05)
        answered = time.perf_counter()
    return {"seconds": answered - imported, "latency": [ms for t, ms in askers.samples if began <= t <= answered],
            "highest": highest}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--saves", type=int, default=10)
    parser.add_argument("--dir", default="/tmp/bench-updates")
    parser.add_argument("--use", type=int, default=12_000, help="distinct questions for the memory-under-use figures")
    args = parser.parse_args()
    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / f"kb-{args.size}.db"
    if not db.exists():
        from bench_scale import build_db

        t = time.perf_counter()
        build_db(db, args.size)
        print(f"知识库 {args.size} 条已生成（{time.perf_counter() - t:.0f} 秒）", flush=True)
    instance = folder / f"instance-{args.size}"
    shutil.rmtree(instance / "index", ignore_errors=True)

    proc, url, cold = start(db, instance, args.workers)
    time.sleep(2)
    cold_mem = memory(proc)
    stop(proc)
    snapshot = next((instance / "index").glob("index-*.pickle"), None)
    proc, url, warm = start(db, instance, args.workers)
    try:
        time.sleep(2)
        warm_mem = memory(proc)
        with Askers(url, "无保存") as quiet:
            time.sleep(10)
        base = [ms for _, ms in quiet.samples]
        with Askers(url, "保存中") as busy:
            time.sleep(1)
            pids_before = children(proc.pid)
            waits, took = save_to_answer(url, db, args.saves, args.workers)
        during = [ms for _, ms in busy.samples]
        after_mem = memory(proc)
        time.sleep(REFORK_SETTLE + 10)  # the master re-forks its workers with its current index
        post(url, "申请政府信息公开要多长时间")
        settled_mem = memory(proc)
        pids_after = children(proc.pid)
        in_use = memory_under_use(proc, url, args.use)
        imported = import_to_answer(proc, url, db)
    finally:
        stop(proc)

    print(f"\n{args.size} 条问答，gunicorn {args.workers} 个进程")
    print(f"{'':24}{'无快照（全量构建）':>16}{'有快照':>12}")
    print(f"{'启动到首个回答 (s)':24}{cold:>16.1f}{warm:>12.1f}")
    print(f"{'主进程 PSS (MB)':24}{cold_mem['master_pss']:>16.0f}{warm_mem['master_pss']:>12.0f}")
    for i, (a, b) in enumerate(zip(cold_mem["worker_pss"], warm_mem["worker_pss"])):
        print(f"{f'工作进程{i + 1} PSS (MB)':24}{a:>16.0f}{b:>12.0f}")
    for i, (a, b) in enumerate(zip(cold_mem["worker_unique"], warm_mem["worker_unique"])):
        print(f"{f'工作进程{i + 1} 独占 (MB)':24}{a:>16.0f}{b:>12.0f}")
    print(f"快照文件：{snapshot.stat().st_size / 1e6:.0f} MB" if snapshot else "未生成快照")
    print(f"\n保存 {len(waits)} 次新问法，从提交到所有进程都答出（秒）：中位 {statistics.median(waits):.2f}，"
          f"最长 {max(waits):.2f}；保存本身（含查找其他条目的相同问法）：中位 {statistics.median(took):.2f}")
    print(f"工作进程：保存前 {pids_before}，结束时 {pids_after}（主进程重新派生过：{'是' if pids_before != pids_after else '否'}）")
    print(f"{'提问延迟 (ms)':24}{'p50':>8}{'p99':>8}{'最长':>8}{'问题数':>8}")
    for label, values in [("无保存时", base), ("保存期间", during)]:
        print(f"{label:24}{pct(values, 50):>8.1f}{pct(values, 99):>8.1f}{max(values):>8.1f}{len(values):>8}")
    print(f"保存 {args.saves} 次之后，工作进程独占内存 (MB)：" +
          "、".join(f"{u:.0f}" for u in after_mem["worker_unique"]) +
          "；主进程重新派生工作进程之后：" + "、".join(f"{u:.0f}" for u in settled_mem["worker_unique"]) +
          "（PSS：" + "、".join(f"{u:.0f}" for u in settled_mem["worker_pss"]) + "）")
    print("持续提问后，工作进程独占内存 (MB)：" + "；".join(
        f"{n:,} 个新问题后 " + "、".join(f"{u:.0f}" for u in unique) for n, unique in in_use["marks"]) +
          f"；任一读数最高 {in_use['highest']:.0f}；其间新派生的工作进程 {in_use['forked']} 个")
    lat = in_use["latency"]
    print(f"{'持续提问期间 (ms)':24}{pct(lat, 50):>8.1f}{pct(lat, 99):>8.1f}{max(lat):>8.1f}{len(lat):>8}")
    lat = imported["latency"]
    print(f"导入一份年报，从提交到所有进程都答出其数字：{imported['seconds']:.1f} 秒；"
          f"其间工作进程独占内存最高 {imported['highest']:.0f} MB")
    print(f"{'导入期间 (ms)':24}{pct(lat, 50):>8.1f}{pct(lat, 99):>8.1f}{max(lat):>8.1f}{len(lat):>8}")


if __name__ == "__main__":
    main()
