"""What an attacker can learn or break, measured: sign-in timing by kind of failure, and how
many questions a rate limit lets through with several worker processes.

    python bench/bench_security.py [--workers 2 4] [--skip-servers]

Prints, for each kind of failed sign-in (unknown name, disabled account, locked account,
wrong password), the median time over 15 tries; then, for each worker count and each
rate-limit storage (per-process memory, the host's shared file, Redis if redis-server is
installed), how many of 80 questions got through a limit of 10 a minute.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def sign_in_times() -> dict[str, float]:
    from service import create_app
    from service.accounts import AccountError, authenticate, create_user
    from service.storage import connect

    tmp = Path(tempfile.mkdtemp())
    app = create_app({"TESTING": True, "DATABASE": str(tmp / "s.db"), "INSTANCE_PATH": str(tmp / "i")})
    db = connect(app.config["DATABASE"])
    create_user(db, "known", "pass-word-123", "curator")
    create_user(db, "gone", "pass-word-123", "curator")
    db.execute("update users set active = 0 where username = 'gone'")
    for _ in range(6):
        try:
            authenticate(db, "known", "wrong-1", "10.9.9.9")
        except AccountError:
            pass

    def median(name: str, address: str) -> float:
        times = []
        for _ in range(15):
            start = time.perf_counter()
            try:
                authenticate(db, name, "wrong-2", address)
            except AccountError:
                pass
            times.append((time.perf_counter() - start) * 1000)
        return statistics.median(times)

    return {"未知账号": median("nobody", "10.1.1.1"), "已停用": median("gone", "10.1.1.2"),
            "已锁定": median("known", "10.9.9.9"), "密码错误": median("known", "10.1.1.3")}


def limit_held(workers: int, storage: str | None) -> tuple[int, int]:
    import test_rate_limit_workers as t

    tmp = Path(tempfile.mkdtemp())
    proc, port = t._serve(tmp, workers, storage)
    try:
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda i: t._ask(port, f"你好{i % 3}"), range(80)))
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    return Counter(s for s, _ in results)[200], len({p for _, p in results if p})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--skip-servers", action="store_true")
    args = parser.parse_args()
    print("失败登录的耗时（中位数，毫秒）：")
    for kind, ms in sign_in_times().items():
        print(f"  {kind:　<6} {ms:7.1f}")
    if args.skip_servers:
        return
    storages: list[tuple[str, str | None]] = [("每进程内存 memory://", "memory://"), ("本机共享 counters://", None)]
    redis = None
    if shutil.which("redis-server"):
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        redis = subprocess.Popen(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
                                 stdout=subprocess.DEVNULL)
        time.sleep(0.5)
    print("限额每分钟 10 次、并发提问 80 次时放行的次数：")
    try:
        for workers in args.workers:
            for name, uri in storages + ([("Redis", f"redis://127.0.0.1:{port}")] if redis else []):
                if redis and uri and uri.startswith("redis"):
                    subprocess.run(["redis-cli", "-p", str(port), "flushall"], stdout=subprocess.DEVNULL)
                passed, pids = limit_held(workers, uri)
                print(f"  {workers} 个工作进程 · {name:<22} 放行 {passed:3d} 次（{pids} 个进程作答）")
    finally:
        if redis:
            redis.terminate()


if __name__ == "__main__":
    main()
