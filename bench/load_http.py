"""HTTP throughput of POST /api/ask next to a trivial route, under the production server.

    python bench/load_http.py [--seconds 10] [--connections 16] [--workers 2]

Starts `python run.py` (gunicorn, 2 workers) on a loopback port and a fresh database,
then drives it with wrk (Debian package `wrk`; a Python client is used when wrk is
missing): first GET /healthz (no database, no matching), then POST /api/ask with the
public and held-out questions in rotation (so answers, clarifications and escalations
with their ticket writes are all in the mix). Prints requests/s and p50/p99 latency of
each, and the ratio. Loopback only; bounded in time.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def questions() -> list[str]:
    """The questions sent in rotation."""
    out = []
    for path in [ROOT / "tests" / "data" / "public_questions.jsonl", ROOT / "tests" / "data" / "heldout_questions.jsonl"]:
        if path.exists():
            out += [json.loads(l)["q"] for l in path.read_text(encoding="utf-8").splitlines() if l.strip()]
    return out


def free_port() -> int:
    """An unused loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wrk(url: str, seconds: int, connections: int, script: Path | None) -> dict:
    """Run wrk and read requests/s and the latency percentiles from its report."""
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    if script:
        cmd += ["-s", str(script)]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=seconds + 60).stdout

    def ms(label: str) -> float:
        m = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50": ms("50"), "p99": ms("99"), "non2xx": int(errors.group(1)) if errors else 0}


def python_client(url: str, seconds: int, connections: int, bodies: list[bytes] | None) -> dict:
    """A fallback load generator: threads with keep-alive connections."""
    import http.client

    stop = time.perf_counter() + seconds
    lat: list[float] = []
    bad = [0]
    lock = threading.Lock()
    host, port = url.split("//")[1].split("/")[0].split(":")
    path = "/" + url.split("//")[1].split("/", 1)[1]

    def run(n: int) -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        i = n
        while time.perf_counter() < stop:
            t = time.perf_counter()
            if bodies:
                conn.request("POST", path, bodies[i % len(bodies)], {"Content-Type": "application/json"})
            else:
                conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            with lock:
                lat.append((time.perf_counter() - t) * 1000)
                bad[0] += response.status >= 300
            i += connections

    threads = [threading.Thread(target=run, args=(n,)) for n in range(connections)]
    started = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    lat.sort()
    return {"rps": len(lat) / (time.perf_counter() - started), "p50": statistics.median(lat),
            "p99": lat[int(0.99 * (len(lat) - 1))], "non2xx": bad[0]}


def main() -> None:
    """Start the server, load both routes, print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "--port", str(port), "--db",
                                   str(Path(tmp) / "load.db"), "--workers", str(args.workers)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            for _ in range(300):
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                        break
                except OSError:
                    time.sleep(0.1)
            qs = questions()
            bodies = [json.dumps({"question": q}, ensure_ascii=False).encode() for q in qs]
            if shutil.which("wrk"):
                script = Path(tmp) / "ask.lua"
                lua_bodies = ",\n".join(json.dumps(b.decode(), ensure_ascii=False) for b in bodies)
                script.write_text("local bodies = {\n" + lua_bodies + "\n}\nlocal i = 0\n"
                                  "wrk.method = 'POST'\nwrk.headers['Content-Type'] = 'application/json'\n"
                                  "request = function()\n  i = i % #bodies + 1\n"
                                  "  return wrk.format(nil, nil, nil, bodies[i])\nend\n", encoding="utf-8")
                tool = "wrk"
                trivial = wrk(f"http://127.0.0.1:{port}/healthz", args.seconds, args.connections, None)
                ask = wrk(f"http://127.0.0.1:{port}/api/ask", args.seconds, args.connections, script)
            else:
                tool = "python client"
                trivial = python_client(f"http://127.0.0.1:{port}/healthz", args.seconds, args.connections, None)
                ask = python_client(f"http://127.0.0.1:{port}/api/ask", args.seconds, args.connections, bodies)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
    print(f"gunicorn, {args.workers} workers, {args.connections} connections, {args.seconds} s each, load by {tool}")
    print("| route | requests/s | p50 | p99 | non-2xx |")
    print("|---|---|---|---|---|")
    for name, r in [("GET /healthz (trivial)", trivial), ("POST /api/ask", ask)]:
        print(f"| {name} | {r['rps']:.0f} | {r['p50']:.2f} ms | {r['p99']:.2f} ms | {r['non2xx']} |")
    print(f"ask / trivial throughput: {ask['rps'] / trivial['rps']:.0%}")


if __name__ == "__main__":
    main()
