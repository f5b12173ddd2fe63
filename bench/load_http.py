"""HTTP throughput of POST /api/ask under two load profiles, beside a trivial route, in one run.

    python bench/load_http.py [--seconds 10] [--connections 16] [--workers 2] [--rounds 1]
                              [--app DIR ...] [--exempt]

Starts `python run.py` (gunicorn, 2 workers) on a loopback port and a fresh database,
then drives it with wrk (Debian package `wrk`; a Python client is used when wrk is
missing), one after the other:

- GET /healthz, the trivial route (no database, no matching);
- **all new**: every request a question no worker has seen, so the reply cache cannot
  serve it and each one is matched. The citizens' questions of `tests/data/*.jsonl`,
  each combined with one of many openers and closers that real messages carry (您好，请问
  … 谢谢, 麻烦问一下 … 盼复): texts that still differ with every punctuation mark and space
  removed, so no normalisation of the cache key can make two of them one;
- **repeat mix**: 1,000 other such questions drawn with a Zipf distribution (s = 1), the
  way citizens repeat the same few questions and now and then ask a rare one; the cache
  starts empty, so the first asking of each is matched too;
- **repeat mix in sessions**: the same, over another 1,000 such questions, each sent with a
  session id as the chat page sends it, four questions a session: after its first answer,
  each question of a session comes with what the session asked before;
- **one cached answer**: a single question the desk answers, sent over and over, so every
  request after the first is an answer from the reply cache: the most any mix of questions
  can reach, since every mix also holds first askings and escalations with their tickets.

Prints requests/s, p50 and p99 of each and each profile's share of the trivial route's
throughput measured in the same run (answers, clarifications and escalations with their
ticket writes are all in both profiles). Every question is counted by the rate limiter as
a citizen's is (the loopback exemption is switched off, the limits set too high to be
reached); ``--exempt`` measures without that. With ``--rounds N`` the whole run is
repeated on a fresh server, to show how much the figures move; ``--app DIR`` (repeatable)
serves another checkout's run.py, e.g. an older commit unpacked with ``git archive``, so
before and after are measured in turn in the same run. Loopback only; bounded in time.
"""
from __future__ import annotations

import argparse
import json
import os
import random
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

# What citizens put around a question. Each pair makes a new text of every question; no
# opener or closer is another's with punctuation added, so all texts differ in words.
OPENERS = ["", "您好，", "你好，", "请问", "您好，请问", "老师好，", "想咨询一下，", "麻烦问一下，", "打扰一下，",
           "工作人员您好，", "我想问问，", "冒昧问一下，", "咨询一下：", "同志你好，", "有个问题，",
           "我有个问题想问，", "求助，", "问一下，", "你们好，", "领导好，", "想了解一下，", "请教一下，",
           "小白提问：", "早上好，", "下午好，"]
CLOSERS = ["", "谢谢", "，麻烦了", "，多谢", "，在线等", "，请尽快回复", "，感谢", "，辛苦了", "，请帮忙解答",
           "？谢谢您", "，盼复", "，望答复", "，万分感谢", "，先谢过", "，等回复", "，拜托了", "，谢谢老师",
           "，急用", "，感谢解答", "，麻烦告知"]
ZIPF_QUESTIONS = 1000
ZIPF_DRAWS = 100_000
SESSION_ASKS = 4  # questions a session asks in the sessions' mix, one after another


def base_questions() -> list[str]:
    """The citizens' questions of the test data (public and held-out)."""
    out = []
    for path in [ROOT / "tests" / "data" / "public_questions.jsonl", ROOT / "tests" / "data" / "heldout_questions.jsonl"]:
        if path.exists():
            out += [json.loads(l)["q"] for l in path.read_text(encoding="utf-8").splitlines() if l.strip()]
    return out


def varied_questions(seed: int = 13) -> list[str]:
    """Every question with every opener and closer, shuffled: texts distinct in their words
    (compared with all punctuation and spaces removed). The bare questions are left out;
    they warm the server up."""
    seen: set[str] = set()
    out: list[str] = []
    for q in base_questions():
        for opener in OPENERS:
            for closer in CLOSERS:
                if not opener and not closer:
                    continue
                text = opener + (q.rstrip("？?。！!") + closer if closer else q)
                key = re.sub(r"[\W_]", "", text)
                if key not in seen:
                    seen.add(key)
                    out.append(text)
    random.Random(seed).shuffle(out)
    return out


def zipf_sequence(n: int, draws: int, seed: int = 13, s: float = 1.0) -> list[int]:
    """``draws`` indices in ``range(n)``, index k drawn with probability proportional to 1/(k+1)^s."""
    weights = [1 / (k + 1) ** s for k in range(n)]
    return random.Random(seed).choices(range(n), weights=weights, k=draws)


def free_port() -> int:
    """An unused loopback port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


WRK_THREADS = 2


def wrk(url: str, seconds: int, connections: int, script: Path | None) -> dict:
    """Run wrk and read requests/s and the latency percentiles from its report."""
    cmd = ["wrk", f"-t{WRK_THREADS}", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    if script:
        cmd += ["-s", str(script)]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=seconds + 60).stdout

    def ms(label: str) -> float:
        m = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50": ms("50"), "p99": ms("99"), "requests": total,
            "non2xx": int(errors.group(1)) if errors else 0}


def wrk_script(path: Path, bodies: list[bytes], order: list[int] | None, sessions: bool = False) -> Path:
    """A wrk script that POSTs ``bodies`` in ``order`` (default: each once, in turn). Each of
    wrk's threads takes every other item, so no two threads send the same item. With
    ``sessions``, item k of the order is sent with session ``load-<k // SESSION_ASKS>``."""
    lua_bodies = ",\n".join(json.dumps(b.decode(), ensure_ascii=False) for b in bodies)
    lua_order = ",".join(str(k + 1) for k in (order if order is not None else range(len(bodies))))
    # A body ends with "}": the session goes in before it.
    send = (f'string.sub(bodies[order[k]], 1, -2) .. \', "session": "load-\' .. math.floor((k - 1) / {SESSION_ASKS}) '
            '.. \'"}\'' if sessions else "bodies[order[k]]")
    path.write_text(
        "local bodies = {\n" + lua_bodies + "\n}\nlocal order = {" + lua_order + "}\n"
        "local threads = 0\n"
        "function setup(thread)\n  thread:set('id', threads)\n  threads = threads + 1\nend\n"
        "local i = -1\n"
        "wrk.method = 'POST'\nwrk.headers['Content-Type'] = 'application/json'\n"
        "request = function()\n  i = i + 1\n"
        f"  local k = (i * {WRK_THREADS} + id) % #order + 1\n"
        f"  return wrk.format(nil, nil, nil, {send})\nend\n", encoding="utf-8")
    return path


def session_bodies(questions: list[str], order: list[int], count: int) -> list[bytes]:
    """For the Python client: the first ``count`` asks of the sessions' mix, each with its session."""
    return [json.dumps({"question": questions[k], "session": f"load-{n // SESSION_ASKS}"},
                       ensure_ascii=False).encode() for n, k in enumerate(order[:count])]


def python_client(url: str, seconds: int, connections: int, bodies: list[bytes] | None,
                  order: list[int] | None = None) -> dict:
    """A fallback load generator: threads with keep-alive connections; connection n sends
    items n, n + connections, ... of ``order`` (default: every body once, in turn)."""
    import http.client

    stop = time.perf_counter() + seconds
    lat: list[float] = []
    bad = [0]
    lock = threading.Lock()
    host, port = url.split("//")[1].split("/")[0].split(":")
    path = "/" + url.split("//")[1].split("/", 1)[1]
    sequence = order if order is not None else list(range(len(bodies or [])))

    def run(n: int) -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        i = n
        while time.perf_counter() < stop:
            t = time.perf_counter()
            if bodies:
                conn.request("POST", path, bodies[sequence[i % len(sequence)]], {"Content-Type": "application/json"})
            else:
                conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            if response.getheader("Connection", "").lower() == "close":
                conn.close()
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
            "p99": lat[int(0.99 * (len(lat) - 1))], "requests": len(lat), "non2xx": bad[0]}


def body(question: str) -> bytes:
    """The JSON of one ask."""
    return json.dumps({"question": question}, ensure_ascii=False).encode()


def start_server(app: Path, port: int, tmp: Path, workers: int, exempt: bool) -> subprocess.Popen:
    """``python run.py`` of checkout ``app`` on a fresh database and instance folder; returns
    once /healthz answers and every worker has built its desk."""
    env = dict(os.environ, INQUIRY_INSTANCE=str(tmp / f"instance-{port}"))
    if not exempt:
        # Counted like a citizen's question (one address; limits no run can reach).
        env.update(INQUIRY_RATE_LIMIT_EXEMPT_LOOPBACK="0", INQUIRY_RATE_LIMIT_ASK="100000000 per minute",
                   INQUIRY_RATE_LIMIT_TICKETS="100000000 per hour")
    server = subprocess.Popen([sys.executable, str(app / "run.py"), "--port", str(port), "--db",
                               str(tmp / f"load-{port}.db"), "--workers", str(workers)], env=env, cwd=str(app),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                break
        except OSError:
            time.sleep(0.1)
    bare = [body(q) for q in base_questions()]
    # Each worker builds its desk at its first question, and its pinyin table at its first
    # question in Latin letters: the bare questions (never sent again) are asked until
    # answers come quickly, so neither is measured.
    deadline = time.perf_counter() + 120
    warm = python_client(f"http://127.0.0.1:{port}/api/ask", 3, 4 * workers, bare)
    while warm["p99"] > 200 and time.perf_counter() < deadline:
        warm = python_client(f"http://127.0.0.1:{port}/api/ask", 2, 4 * workers, bare)
    return server


def answered_question(url: str) -> str:
    """The first of the bare questions that the server answers (for the cached-answer line)."""
    for question in base_questions():
        req = urllib.request.Request(url, body(question), {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            if json.loads(r.read()).get("status") == "answered":
                return question
    raise SystemExit("no question of the test data is answered: is the knowledge loaded?")


def one_run(args: argparse.Namespace, app: Path, new_questions: list[str], repeat: list[str], order: list[int],
            tmp: Path, in_sessions: list[str]) -> dict[str, dict]:
    """Start a server, load the trivial route and the profiles, stop it."""
    port = free_port()
    server = start_server(app, port, tmp, args.workers, args.exempt)
    ask_url = f"http://127.0.0.1:{port}/api/ask"
    new_bodies = [body(q) for q in new_questions]
    repeat_bodies = [body(q) for q in repeat]
    cached_body = body(answered_question(ask_url))
    try:
        if shutil.which("wrk") and not args.python_client:
            new_script = wrk_script(tmp / f"new-{port}.lua", new_bodies, None)
            mix_script = wrk_script(tmp / f"mix-{port}.lua", repeat_bodies, order)
            sessions_script = wrk_script(tmp / f"sessions-{port}.lua", [body(q) for q in in_sessions], order,
                                         sessions=True)
            return {"trivial": wrk(f"http://127.0.0.1:{port}/healthz", args.seconds, args.connections, None),
                    "new": wrk(ask_url, args.seconds, args.connections, new_script),
                    "mix": wrk(ask_url, args.seconds, args.connections, mix_script),
                    "sessions": wrk(ask_url, args.seconds, args.connections, sessions_script),
                    "cached": wrk(ask_url, args.seconds, args.connections,
                                  wrk_script(tmp / f"cached-{port}.lua", [cached_body], None))}
        return {"trivial": python_client(f"http://127.0.0.1:{port}/healthz", args.seconds, args.connections, None),
                "new": python_client(ask_url, args.seconds, args.connections, new_bodies),
                "mix": python_client(ask_url, args.seconds, args.connections, repeat_bodies, order),
                "sessions": python_client(ask_url, args.seconds, args.connections,
                                          session_bodies(in_sessions, order, 30_000 * args.seconds)),
                "cached": python_client(ask_url, args.seconds, args.connections, [cached_body])}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def main() -> None:
    """Start the server, load the trivial route and both profiles, print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1, help="repeat the whole run on a fresh server")
    parser.add_argument("--python-client", action="store_true", help="load with the Python client, not wrk")
    parser.add_argument("--app", action="append", type=Path, default=None,
                        help="a checkout to serve (repeatable; default: this one)")
    parser.add_argument("--exempt", action="store_true", help="leave loopback exempt from rate limiting")
    args = parser.parse_args()
    apps = [a.resolve() for a in args.app] if args.app else [ROOT]
    varied = varied_questions()
    repeat, in_sessions = varied[:ZIPF_QUESTIONS], varied[ZIPF_QUESTIONS:2 * ZIPF_QUESTIONS]
    new_questions = varied[2 * ZIPF_QUESTIONS:]
    order = zipf_sequence(len(repeat), ZIPF_DRAWS)
    tool = "wrk" if shutil.which("wrk") and not args.python_client else "python client"
    print(f"gunicorn, {args.workers} workers, {args.connections} connections, {args.seconds} s each, load by {tool}; "
          f"all new: {len(new_questions):,} distinct questions; repeat mix: Zipf over {len(repeat):,} (and over "
          f"{len(in_sessions):,} others in sessions of {SESSION_ASKS}); "
          f"rate limiter {'exempting loopback' if args.exempt else 'counting every question'}")
    print("| round | app | load | requests/s | p50 | p99 | non-2xx | share of trivial |")
    print("|---|---|---|---|---|---|---|---|")
    names = {"trivial": "GET /healthz (trivial)", "new": "POST /api/ask, all new", "mix": "POST /api/ask, repeat mix",
             "sessions": "POST /api/ask, repeat mix in sessions",
             "cached": "POST /api/ask, one cached answer (the ceiling)"}
    with tempfile.TemporaryDirectory() as tmp:
        # Each server its own slice of new questions (a fresh server has an empty cache anyway).
        share = len(new_questions) // (args.rounds * len(apps))
        for n in range(args.rounds):
            for a, app in enumerate(apps):
                start = (n * len(apps) + a) * share
                result = one_run(args, app, new_questions[start:start + share], repeat, order, Path(tmp),
                                 in_sessions)
                for key, r in result.items():
                    ratio = "" if key == "trivial" else f"{r['rps'] / result['trivial']['rps']:.0%}"
                    print(f"| {n + 1} | {app.name} | {names[key]} | {r['rps']:,.0f} | {r['p50']:.1f} ms | "
                          f"{r['p99']:.1f} ms | {r['non2xx']} | {ratio} |", flush=True)
                if result["new"]["requests"] > share:
                    print(f"warning: {result['new']['requests']:,} new questions sent but only {share:,} "
                          "prepared: some were repeats", flush=True)


if __name__ == "__main__":
    main()
