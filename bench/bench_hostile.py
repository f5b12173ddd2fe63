"""Hostile uploads: what each costs its parse, and what two at once cost the citizens.

    python bench/bench_hostile.py [--seconds 40] [--citizens 4] [--root PATH] [--skip-files] [--skip-server]

Files: builds the five hostile files of issue 10 at the issue's sizes (with the builders of
tests/test_hostile_files.py) and, for comparison, two valid reports, and parses each the
way the upload pages do, one wrapper process per file. Prints the outcome, the wall time
and the peak resident memory of the parse child (``ru_maxrss`` of the wrapper's children;
it never reads below the wrapper's own ~50 MB, as Linux counts the pages a child shares
before it becomes a new program), and the child's own peak (VmHWM) where it finished.

Server: starts ``run.py`` (gunicorn, 2 workers) on a fresh database, creates two curators
(``flask create-user``), logs them in through the login form (CSRF token and all) and
measures POST /api/ask from ``--citizens`` clients: first alone, then while both curators
upload hostile files at once, over and over. Prints p50/p99/max and failures of the
citizens, the upload replies by status, and the worker timeouts in the server's log.

``--root`` runs everything from another checkout, e.g. the code before the upload
sandbox (``git archive <commit> | tar -x -C /tmp/old``); a checkout without
service/uploads.py parses in the wrapper's own process, as its upload pages did.
Loopback only; bounded in time.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Callable

import requests

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "tests"), str(HERE)]
import test_hostile_files as hostile  # noqa: E402  (the builders)
from load_http import free_port, questions  # noqa: E402

MB = 1024 * 1024
PASSWORD = "bench-hostile-pass-42"

# name, builder, upload file name (its suffix picks the page: report or FAQ table)
FILES: list[tuple[str, Callable[[], bytes], str]] = [
    ("zip bomb .docx (document.xml 50 MB)", lambda: hostile.bomb_docx(50 * MB), "bomb.docx"),
    ("huge sharedStrings .xlsx (300 MB)", lambda: hostile.shared_strings_xlsx(300 * MB), "strings.xlsx"),
    ("A1:XFD5001 dimension .xlsx", lambda: hostile.dimension_xlsx(hostile.ROWS, last="x"), "dimension.xlsx"),
    ("one 1 GB text node .docx", lambda: hostile.text_node_docx(1024 * MB), "node.docx"),
    ("7 MB page of inline spans .html", lambda: hostile.spans_page(7 * MB), "spans.html"),
]
VALID: list[tuple[str, Callable[[], bytes], str]] = [
    ("valid report .docx (mof-2022)", lambda: (hostile.DATA / "mof-2022.docx").read_bytes(), "mof-2022.docx"),
    ("valid 3.5 MB report .html (Word markup)", lambda: big_report_html(3_500_000), "big.html"),
]

WRAPPER = r"""
import json, os, resource, sys, time
root, path, name = sys.argv[1:4]
sys.path.insert(0, root)
data = open(path, "rb").read()
from service import reports
if os.path.exists(os.path.join(root, "service", "uploads.py")):
    from service import uploads
else:  # (an editable install would otherwise find this checkout's module)
    uploads = None
if name.endswith(".xlsx"):
    from service.faq import ImportFormatError as FormatError
else:
    FormatError = reports.ReportFormatError  # without loading the FAQ's libraries into the wrapper
started = time.perf_counter()
result = {"sandbox": uploads is not None}
try:
    if uploads is None:  # the code before: parsed in the page's own process
        if name.endswith(".xlsx"):
            from service.faq import parse_import
            parse_import(data, name)
        else:
            reports.parse_report(data, name)
    elif name.endswith(".xlsx"):
        uploads.parse_faq(data, name, lock_path=path + ".lock")
    else:
        uploads.parse_report(data, name, lock_path=path + ".lock")
    result["outcome"], result["message"] = "parsed", ""
except FormatError as exc:
    result["outcome"], result["message"] = "refused (4xx)", str(exc)
result["seconds"] = time.perf_counter() - started
who = resource.RUSAGE_CHILDREN if uploads is not None else resource.RUSAGE_SELF
result["peak_mb"] = resource.getrusage(who).ru_maxrss / 1024
result["child"] = uploads.LAST.outcome if uploads else ""
result["child_hwm_mb"] = uploads.LAST.peak_mb if uploads else 0
print(json.dumps(result, ensure_ascii=False))
"""


def big_report_html(size: int) -> bytes:
    """A valid report of ``size`` bytes: the national tables and a long narrative laid out
    as Word's "save as web page" does (each run in its own styled span)."""
    import report_samples as samples

    page = samples.to_html(samples.mof_2022())
    para = ('<p class="MsoNormal" style="text-indent:32pt"><span style="font-family:仿宋_GB2312;font-size:16pt">'
            '本机关认真贯彻落实</span><span style="font-family:仿宋_GB2312;font-size:16pt">《中华人民共和国政府信息'
            '公开条例》，全年主动公开政府信息</span><span lang="EN-US" style="font-size:16pt">1234</span>'
            '<span style="font-family:仿宋_GB2312;font-size:16pt">条。</span></p>\n')
    cut = page.rfind("<p", 0, page.index("<table"))
    count = max(0, (size - len(page.encode())) // len(para.encode()))
    return (page[:cut] + para * count + page[cut:]).encode()


# -- files ---------------------------------------------------------------------------------


def bench_files(root: Path, folder: Path) -> dict[str, Path]:
    """Build and parse each file; print a table; return the built files by upload name."""
    built: dict[str, Path] = {}
    print("| file | size | outcome | time | peak memory of the parse | message |")
    print("|---|---|---|---|---|---|")
    for label, build, name in FILES + VALID:
        path = folder / name
        path.write_bytes(build())
        built[name] = path
        try:
            out = subprocess.run([sys.executable, "-c", WRAPPER, str(root), str(path), name], capture_output=True,
                                 text=True, timeout=600, cwd=root)
            result = json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else None
        except subprocess.TimeoutExpired:
            result = None
        if result is None:
            print(f"| {label} | {_size(path)} | wrapper failed | | | |")
            continue
        if result["sandbox"] and result["child"] == "refused" and not result["child_hwm_mb"]:
            peak = "no child (refused from the zip directory)"
        elif result["sandbox"]:
            hwm = f", child's own peak {result['child_hwm_mb']:.0f} MB" if result["child_hwm_mb"] else ""
            peak = f"{result['peak_mb']:.0f} MB{hwm}"
        else:
            peak = f"{result['peak_mb']:.0f} MB (in process)"
        message = result["message"][:60].replace("|", "/")
        print(f"| {label} | {_size(path)} | {result['outcome']}{' · ' + result['child'] if result['child'] else ''} "
              f"| {result['seconds']:.1f} s | {peak} | {message} |", flush=True)
    return built


def _size(path: Path) -> str:
    size = path.stat().st_size
    return f"{size / MB:.1f} MB" if size >= MB else f"{size / 1024:.1f} KB"


# -- server --------------------------------------------------------------------------------


class Server:
    """``run.py`` with two gunicorn workers on a fresh database, in its own process group."""

    def __init__(self, root: Path, folder: Path):
        self.root, self.db, self.log = root, folder / "bench.db", folder / "server.log"
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("INQUIRY_")}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "run.py", "--port", str(self.port), "--db", str(self.db),
                                          "--workers", "2"], cwd=root, env=env, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 300
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2):
                    break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"server did not start:\n{self.log.read_text(errors='replace')[-3000:]}")
                time.sleep(0.3)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def create_curator(self, name: str) -> None:
        flask = str(Path(sys.executable).with_name("flask"))
        subprocess.run([flask, "--app", "service", "create-user", name, "--role", "curator", "--password", PASSWORD],
                       cwd=self.root, env={**os.environ, "INQUIRY_DB": str(self.db)}, check=True,
                       capture_output=True, timeout=120)

    def log_count(self, marker: str) -> int:
        return self.log.read_text(errors="replace").count(marker)

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)


def _token(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    if not match:
        raise RuntimeError("no CSRF token on the page")
    return match.group(1)


def staff_session(url: str, name: str) -> requests.Session:
    """A curator logged in through the login form."""
    session = requests.Session()
    token = _token(session.get(f"{url}/staff/login", timeout=30).text)
    response = session.post(f"{url}/staff/login", data={"username": name, "password": PASSWORD, "csrf_token": token},
                            timeout=30, allow_redirects=False)
    if response.status_code not in (302, 303):
        raise RuntimeError(f"login of {name} failed: {response.status_code}")
    return session


def upload(session: requests.Session, url: str, path: Path) -> tuple[int, float]:
    """Upload one file through its page; (HTTP status or 0 for a failed connection, seconds)."""
    page = "/staff/faq/import" if path.suffix == ".xlsx" else "/staff/reports/import"
    started = time.perf_counter()
    try:
        token = _token(session.get(url + page, timeout=120).text)
        response = session.post(url + page, data={"csrf_token": token},
                                files={"file": (path.name, path.read_bytes())}, timeout=120)
        status = response.status_code
    except (requests.RequestException, RuntimeError):
        status = 0
    return status, time.perf_counter() - started


def citizens(url: str, clients: int, stop: threading.Event) -> list[tuple[float, int]]:
    """POST /api/ask from ``clients`` keep-alive connections until ``stop``; (ms, status) each."""
    host, port = url.split("//")[1].split(":")
    bodies = [json.dumps({"question": q}, ensure_ascii=False).encode() for q in questions()]
    results: list[tuple[float, int]] = []
    lock = threading.Lock()

    def run(n: int) -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=120)
        i = n
        while not stop.is_set():
            started = time.perf_counter()
            try:
                conn.request("POST", "/api/ask", bodies[i % len(bodies)], {"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                status = 0
                conn.close()
                conn = http.client.HTTPConnection(host, int(port), timeout=120)
            with lock:
                results.append(((time.perf_counter() - started) * 1000, status))
            i += clients
        conn.close()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    stop.wait()
    for thread in threads:
        thread.join()
    return results


def summary(results: list[tuple[float, int]]) -> str:
    latencies = sorted(ms for ms, _ in results)
    failed = sum(1 for _, status in results if status != 200)
    if not latencies:
        return "no requests"
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
    return (f"{len(latencies)} requests, p50 {statistics.median(latencies):.0f} ms, p99 {p99:.0f} ms, "
            f"max {latencies[-1]:.0f} ms, not 200: {failed}")


def bench_server(root: Path, folder: Path, built: dict[str, Path], seconds: float, clients: int) -> None:
    """Citizens alone, then citizens while two curators upload hostile files at once."""
    server = Server(root, folder)
    try:
        for name in ("bench-curator1", "bench-curator2"):
            server.create_curator(name)
        sessions = [staff_session(server.url, "bench-curator1"), staff_session(server.url, "bench-curator2")]
        for _ in range(2):  # every worker has built its index before anything is timed
            urllib.request.urlopen(urllib.request.Request(f"{server.url}/api/ask", b'{"question": "warm"}',
                                                          {"Content-Type": "application/json"}), timeout=120).read()
        stop = threading.Event()
        timer = threading.Timer(seconds, stop.set)
        timer.start()
        alone = citizens(server.url, clients, stop)
        print(f"citizens alone ({clients} clients, {seconds:.0f} s): {summary(alone)}")

        hostile_files = [built[name] for _, _, name in FILES]
        replies: list[tuple[str, int, float]] = []
        stop = threading.Event()

        def uploader(session: requests.Session, start: int) -> None:
            i = start
            while not stop.is_set():
                path = hostile_files[i % len(hostile_files)]
                status, took = upload(session, server.url, path)
                replies.append((path.name, status, took))
                i += 1

        workers = [threading.Thread(target=uploader, args=(session, start))
                   for session, start in zip(sessions, (4, 1))]  # the spans page and the strings table first
        timeouts_before = server.log_count("WORKER TIMEOUT")
        for thread in workers:
            thread.start()
        timer = threading.Timer(seconds, stop.set)
        timer.start()
        attacked = citizens(server.url, clients, stop)
        for thread in workers:
            thread.join()
        print(f"citizens during two hostile uploads at once: {summary(attacked)}")
        by_status: dict[str, list[float]] = {}
        for name, status, took in replies:
            by_status.setdefault(f"{name} -> {status or 'connection failed'}", []).append(took)
        for key, took in sorted(by_status.items()):
            print(f"  upload {key}: {len(took)}x, {statistics.median(took):.1f} s median, {max(took):.1f} s max")
        print(f"  worker timeouts in the server log: {server.log_count('WORKER TIMEOUT') - timeouts_before}")
    finally:
        server.stop()


def main() -> None:
    """Parse the flags, run the two parts, print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=40.0, help="length of each citizens' run")
    parser.add_argument("--citizens", type=int, default=4, help="concurrent citizen clients")
    parser.add_argument("--root", type=Path, default=HERE.parent, help="checkout to run (default: this one)")
    parser.add_argument("--skip-files", action="store_true")
    parser.add_argument("--skip-server", action="store_true")
    args = parser.parse_args()
    root = args.root.resolve()
    print(f"code: {root}{'' if (root / 'service' / 'uploads.py').exists() else ' (no upload sandbox)'}; "
          f"{os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.skip_files:
            built = {}
            for _, build, name in FILES:
                (folder / name).write_bytes(build())
                built[name] = folder / name
        else:
            built = bench_files(root, folder)
        if not args.skip_server:
            bench_server(root, folder, built, args.seconds, args.citizens)


if __name__ == "__main__":
    main()
