"""Reliability of the production server (gunicorn, 2 worker processes, one SQLite file).

Each test starts ``run.py`` as its own process group on a fresh database under tmp_path and
talks to it over loopback (rate limits exempt loopback clients):

* load: 2,000 escalating questions from 32 concurrent clients; every ticket acknowledged,
  distinct and stored exactly once, and (after a graceful stop flushes the batched log)
  every question in the asks log;
* kill: SIGKILL of the whole server and of a concurrent FAQ importer; the database is
  intact, no acknowledged ticket is lost, no import is half applied, the server restarts;
* backup/restore: the ``flask backup`` and ``flask restore`` commands against the live,
  busy server.

No timing is asserted; every wait and loop is bounded (deadlines are generous because the
machine may be a loaded 2-core box).
"""
from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from service.storage import connect

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
FLASK = str(Path(sys.executable).with_name("flask"))
IMPORTER = Path(__file__).resolve().parent / "helpers_import_loop.py"

START_TIMEOUT = 180.0  # seconds for the server to answer its first request
REQUEST_TIMEOUT = 120.0  # per HTTP request; a sync worker answers one request at a time
LOAD_QUESTIONS = int(os.environ.get("RELIABILITY_LOAD_N", "2000"))
LOAD_CLIENTS = 32
LOAD_DEADLINE = 1200.0  # the whole load run, as a bound, not an expectation


def question(n: int) -> str:
    """A distinct question outside the desk's knowledge: it escalates to a ticket."""
    return f"请问第{n}号食堂的菜谱能公开吗"


# -- the server -----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One ``run.py`` process group (gunicorn master and its workers)."""

    def __init__(self, db: Path, log: Path):
        self.db, self.log, self.port = db, log, _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("INQUIRY_")}
        env["INQUIRY_SHOW_WORKER_PID"] = "1"
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [PYTHON, "run.py", "--port", str(self.port), "--db", str(db), "--workers", "2"],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.pgid = self.proc.pid  # a new session: the master leads its own process group

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log_text()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=5) as response:
                    response.read()
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"server did not start in {START_TIMEOUT:.0f} s:\n{self.log_text()}")

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def kill(self) -> None:
        """SIGKILL the whole group at once: master and workers, no chance to clean up."""
        _signal_group(self.proc, signal.SIGKILL)
        self.proc.wait(timeout=30)
        _wait_group_gone(self.pgid)

    def stop(self) -> None:
        """Shut down gracefully (SIGTERM to the group), then SIGKILL whatever is left."""
        if self.proc.poll() is None:
            _signal_group(self.proc, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        if _group_alive(self.pgid):  # the master, or a worker it left behind
            os.killpg(self.pgid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        _wait_group_gone(self.pgid)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:  # type: ignore[type-arg]
    """Signal the process group that ``proc`` leads (started with start_new_session=True)."""
    if proc.returncode is None or _group_alive(proc.pid):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_group_gone(pgid: int, timeout: float = 15.0) -> None:
    """Until no process of the group is left (orphaned workers are reaped by init)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _group_alive(pgid):
        time.sleep(0.05)


@pytest.fixture
def start_server(tmp_path) -> Iterator[Callable[[Path], Server]]:  # type: ignore[no-untyped-def]
    """Start ``run.py --workers 2`` on a database file; every server started is stopped."""
    servers: list[Server] = []

    def start(db: Path) -> Server:
        server = Server(db, tmp_path / f"server-{len(servers)}.log")
        servers.append(server)
        server.wait_ready()
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


# -- the client -----------------------------------------------------------------------


def post_ask(port: int, text: str, session: str | None = None,
             timeout: float = REQUEST_TIMEOUT) -> tuple[int, str]:
    """POST /api/ask; the HTTP status and the body text (errors included, not raised)."""
    body: dict[str, Any] = {"question": text}
    if session is not None:
        body["session"] = session
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/ask", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read().decode("utf-8", errors="replace")
    except http.client.IncompleteRead as exc:
        # The server died between the headers and the body (a SIGKILL lands there too): a
        # reply cut short acknowledges nothing, like a connection reset.
        raise ConnectionResetError(f"reply cut short: {exc!r}") from exc


def ticket_code(status: int, text: str) -> str | None:
    """The new ticket's code when the reply is a 200 escalation with a fresh ticket."""
    if status != 200:
        return None
    body = json.loads(text)
    ticket = body.get("ticket") or {}
    if body.get("status") == "escalated" and ticket.get("code") and ticket.get("password"):
        return ticket["code"]
    return None


def assert_escalates(port: int, session: str) -> None:
    """The probe the tests rely on: an out-of-scope question escalates with a new ticket."""
    status, text = post_ask(port, question(0), session)
    assert status == 200, text
    body = json.loads(text)
    assert body["status"] == "escalated", body
    assert re.fullmatch(r"GK[0-9A-Z]{10}", body["ticket"]["code"]), body
    assert re.fullmatch(r"\d{6}", body["ticket"]["password"]), body


def bad_reply(status: int, text: str) -> bool:
    """A reply no citizen should ever get from these questions."""
    return status != 200 or "locked" in text.lower()


def _tracebacks(server: Server) -> str:
    """The server log's error reports, for a failure message."""
    log = server.log_text()
    start = log.find("Traceback")
    return log[start:start + 4000] if start >= 0 else "(no traceback in the server log)"


def assert_clean_log(server: Server) -> None:
    """No exception was logged by any worker (a 500's traceback, a lock error)."""
    log = server.log_text()
    for marker in ("Traceback", "OperationalError", "database is locked", "WORKER TIMEOUT"):
        assert marker not in log, f"{marker!r} in the server log:\n{log[-5000:]}"


# -- 1. load ----------------------------------------------------------------------------


def test_two_thousand_concurrent_escalations_each_get_one_stored_ticket(start_server, tmp_path) -> None:
    db_path = tmp_path / "load.db"
    server = start_server(db_path)
    assert_escalates(server.port, "probe")

    results: list[tuple[int, int, str, str | None, float]] = []  # (n, status, body, transport error, s)
    lock = threading.Lock()
    deadline = time.monotonic() + LOAD_DEADLINE

    def client(c: int) -> None:
        session = f"load-{c}"
        for n in range(1 + c, LOAD_QUESTIONS + 1, LOAD_CLIENTS):
            if time.monotonic() > deadline:
                return
            sent = time.monotonic()
            try:
                status, text = post_ask(server.port, question(n), session)
                error = None
            except OSError as exc:  # connection refused or reset, timeout: never retried
                status, text, error = 0, "", repr(exc)
            with lock:
                results.append((n, status, text, error, round(time.monotonic() - sent, 2)))

    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(LOAD_CLIENTS)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(1.0, deadline - time.monotonic() + REQUEST_TIMEOUT))
    elapsed = time.monotonic() - started
    assert not any(t.is_alive() for t in threads), "clients still running after the deadline"
    print(f"\n{len(results)} asks from {LOAD_CLIENTS} clients in {elapsed:.1f} s "
          f"({len(results) / elapsed:.1f}/s)")

    errors = [r for r in results if r[3]]
    assert not errors, f"{len(errors)} transport errors, e.g. {errors[:3]}"
    bad = [(n, status, text[:300], f"{took} s") for n, status, text, _, took in results if bad_reply(status, text)]
    assert not bad, f"{len(bad)} bad replies, e.g. {bad[:5]}\n{_tracebacks(server)}"
    assert len(results) == LOAD_QUESTIONS, f"only {len(results)} of {LOAD_QUESTIONS} asked before the deadline"
    codes: dict[str, str] = {}  # question -> acknowledged code
    for n, status, text, _, _ in results:
        code = ticket_code(status, text)
        assert code, f"question {n} was not escalated with a new ticket: {text[:300]}"
        codes[question(n)] = code
    counts = Counter(codes.values())
    assert len(counts) == LOAD_QUESTIONS, [c for c, k in counts.items() if k > 1][:10]

    db = connect(db_path)  # tickets are written before they are acknowledged: read them live
    try:
        rows = db.execute("select question, code from tickets where session like 'load-%'").fetchall()
        stored = Counter(code for _, code in rows)
        assert len(rows) == LOAD_QUESTIONS and set(stored) == set(counts), \
            (len(rows), len(set(stored) - set(counts)), len(set(counts) - set(stored)))
        assert max(stored.values()) == 1
        assert dict(rows) == codes  # each question's ticket is the one its client was given
        assert db.execute("select count(*) from tickets").fetchone()[0] == LOAD_QUESTIONS + 1  # + the probe
    finally:
        db.close()

    # The asks log is buffered per worker (ASK_LOG_BATCH rows or ASK_LOG_MAX_DELAY seconds) and
    # flushed when a worker stops: after a graceful stop every question is in it.
    server.stop()
    assert server.proc.returncode == 0, server.log_text()[-3000:]
    db = connect(db_path)
    try:
        asks = db.execute("select a.question, a.status, t.code from asks a left join tickets t "
                          "on t.id = a.ticket_id where a.session like 'load-%'").fetchall()
        assert len(asks) == LOAD_QUESTIONS
        assert all(status == "escalated" for _, status, _ in asks)
        assert {q: code for q, _, code in asks} == codes
        assert db.execute("pragma integrity_check").fetchone()[0] == "ok"
    finally:
        db.close()
    assert_clean_log(server)


# -- 2. kill ----------------------------------------------------------------------------


def _round_in(path: Path) -> str:
    db = sqlite3.connect(path, timeout=30)
    try:
        return repr(db.execute("select distinct answer from entries where answer like '第%轮导入'").fetchall())
    finally:
        db.close()


class Importer:
    """tests/helpers_import_loop.py in its own process group, its output followed."""

    def __init__(self, db: Path):
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [PYTHON, str(IMPORTER), str(db), "--rounds", "100000", "--seconds", "300"], cwd=ROOT,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, encoding="utf-8",
            start_new_session=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def rounds(self, word: str) -> list[int]:
        return [int(line.split()[1]) for line in list(self.lines) if line.startswith(word + " ")]

    def in_flight(self) -> bool:
        """Whether a round has started applying and not yet reported its commit."""
        last = self.lines[-1] if self.lines else ""
        return last.startswith("applying ")

    def kill(self) -> None:
        _signal_group(self.proc, signal.SIGKILL)
        self.proc.wait(timeout=30)
        _wait_group_gone(self.proc.pid)
        self.reader.join(timeout=30)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def test_sigkill_during_asks_and_imports_loses_nothing_acknowledged(start_server, tmp_path) -> None:
    db_path = tmp_path / "kill.db"
    server = start_server(db_path)
    assert_escalates(server.port, "probe")
    probe_db = connect(db_path)
    try:
        original = dict(probe_db.execute("select key, answer from entries").fetchall())
    finally:
        probe_db.close()
    assert len(original) >= 10

    acked: list[str] = []
    bad: list[tuple[int, str]] = []
    early_errors: list[str] = []  # transport errors before the kill: there should be none
    killed, stop = threading.Event(), threading.Event()
    deadline = time.monotonic() + 300

    def client(c: int) -> None:
        n = 0
        while not stop.is_set() and time.monotonic() < deadline and n < 10_000:
            n += 1
            try:
                status, text = post_ask(server.port, question(100_000 * (c + 1) + n), f"kill-{c}")
            except OSError as exc:
                if not killed.is_set():
                    early_errors.append(repr(exc))
                return  # the server is gone (or broken): this client stops
            if bad_reply(status, text):
                bad.append((status, text[:300]))
                continue
            code = ticket_code(status, text)
            if code:
                acked.append(code)
            else:
                bad.append((status, text[:300]))

    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(8)]
    importer = None
    try:
        for t in threads:
            t.start()
        importer = Importer(db_path)
        # Both kinds of writes under way (a slow start must not leave nothing to check)...
        until = time.monotonic() + 120
        while time.monotonic() < until and not (importer.rounds("applied") and len(acked) >= 8):
            if importer.proc.poll() is not None:
                break
            time.sleep(0.05)
        assert importer.rounds("applied"), f"no import round applied:\n{importer.lines[-20:]}"
        assert len(acked) >= 8, f"only {len(acked)} tickets acknowledged before the kill"
        time.sleep(2.5)  # ... then a couple of seconds of both at once,
        assert importer.proc.poll() is None, f"importer stopped early:\n{importer.lines[-20:]}"
        until = time.monotonic() + 5  # and aim the kill at a round being applied
        while time.monotonic() < until and not importer.in_flight():
            time.sleep(0.001)
        killed.set()
        server.kill()
        importer.kill()
    finally:
        killed.set()
        stop.set()
        for t in threads:
            t.join(timeout=REQUEST_TIMEOUT + 10)
        if importer is not None:
            importer.kill()
    assert not any(t.is_alive() for t in threads)
    acknowledged = set(acked)  # after every client stopped
    applying, applied = importer.rounds("applying"), importer.rounds("applied")
    print(f"\n{len(acknowledged)} tickets acknowledged, import rounds applied: {len(applied)} "
          f"(last started: {applying[-1] if applying else None})")
    print(f"committed round in the database: {_round_in(db_path)}")
    assert not early_errors, early_errors[:5]
    assert not bad, f"{bad[:5]}\n{_tracebacks(server)}"
    assert not [line for line in importer.lines if line.startswith("error")], importer.lines[-20:]
    assert len(acknowledged) == len(acked)  # codes are distinct

    db = connect(db_path)  # the first connection after the crash recovers the WAL
    try:
        assert db.execute("pragma integrity_check").fetchall() == [("ok",)]
        assert db.execute("pragma foreign_key_check").fetchall() == []
        stored = {r[0] for r in db.execute("select code from tickets")}
        lost = acknowledged - stored
        assert not lost, f"{len(lost)} acknowledged tickets lost: {sorted(lost)[:10]}"
        answers = dict(db.execute("select key, answer from entries").fetchall())
        published = {r[0] for r in db.execute("select answer from entries where status = 'published'")}
        imports = db.execute("select count(*) from audit_log where action = 'import_faq'").fetchone()[0]
    finally:
        db.close()
    assert set(answers) == set(original)
    # Every answer from one and the same round: never a mix, never the originals (at least one
    # round reported its commit before the kill).
    assert len(published) == 1 and len(set(answers.values())) == 1, \
        f"not exactly one import round in the entries: {Counter(answers.values())}"
    (answer,) = published
    match = re.fullmatch(r"第(\d+)轮导入", answer)
    assert match, f"a committed import round was lost: {answer[:100]}"
    round_in_db = int(match.group(1))
    # The last round the importer saw commit, or the one in flight when it was killed.
    assert round_in_db in {applied[-1], applying[-1]}, (round_in_db, applied[-1:], applying[-1:])
    assert imports == round_in_db  # each committed round wrote its audit row with it

    again = start_server(db_path)  # the same file, after the crash
    assert_escalates(again.port, "after-restart")
    db = connect(db_path)
    try:
        faq_question, faq_answer = db.execute(
            "select question, answer from entries where key = 'who-may-apply'").fetchone()
    finally:
        db.close()
    status, text = post_ask(again.port, faq_question)
    assert status == 200, text
    body = json.loads(text)
    assert body["status"] == "answered" and faq_answer in body["answer"], body
    assert_clean_log(again)
    # The killed server's log ends abruptly, but nothing failed before the kill.
    assert_clean_log(server)


# -- 3. backup and restore under load --------------------------------------------------------


def _flask(command: list[str], db: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INQUIRY_")}
    env["INQUIRY_DB"] = str(db)
    return subprocess.run([FLASK, "--app", "service", *command], cwd=ROOT, env=env, capture_output=True,
                          text=True, encoding="utf-8", timeout=timeout)


def _tickets(path: Path) -> dict[int, str]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return dict(db.execute("select id, code from tickets"))
    finally:
        db.close()


def test_backup_and_restore_commands_while_the_server_takes_questions(start_server, tmp_path) -> None:
    db_path = tmp_path / "live.db"
    copy_path = tmp_path / "backups" / "copy.db"
    server = start_server(db_path)
    assert_escalates(server.port, "probe")

    acked: list[tuple[float, float, str]] = []  # (monotonic times of the request and the reply, code)
    bad: list[tuple[int, str]] = []
    errors: list[str] = []
    stop = threading.Event()
    deadline = time.monotonic() + 600

    def client(c: int) -> None:
        n = 0
        while not stop.is_set() and time.monotonic() < deadline and n < 10_000:
            n += 1
            sent = time.monotonic()
            try:
                status, text = post_ask(server.port, question(100_000 * (c + 1) + n), f"backup-{c}")
            except OSError as exc:
                errors.append(repr(exc))
                return
            code = ticket_code(status, text) if not bad_reply(status, text) else None
            if code:
                acked.append((sent, time.monotonic(), code))
            else:
                bad.append((status, text[:300]))

    def acks_after(moment: float) -> int:
        return sum(1 for sent, _, _ in list(acked) if sent > moment)

    def wait_for_acks(moment: float, count: int) -> None:
        until = time.monotonic() + 180
        while acks_after(moment) < count and time.monotonic() < until and not errors:
            time.sleep(0.05)
        assert acks_after(moment) >= count, f"the server stopped acknowledging: {errors[:3]} {bad[:3]}"

    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(8)]
    try:
        for t in threads:
            t.start()
        wait_for_acks(0, 20)
        backup_started = time.monotonic()
        before_backup = {code for _, replied, code in list(acked) if replied < backup_started}
        backup = _flask(["backup", str(copy_path)], db_path)
        backup_done = time.monotonic()
        wait_for_acks(backup_done, 10)
        live_before_restore = _tickets(db_path)
        restore_started = time.monotonic()
        restore = _flask(["restore", str(copy_path), "--yes"], db_path)
        restore_done = time.monotonic()
        wait_for_acks(restore_done, 20)  # the server keeps serving after the restore
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=REQUEST_TIMEOUT + 10)
    assert not any(t.is_alive() for t in threads)
    print(f"\nbackup {backup_done - backup_started:.1f} s, restore {restore_done - restore_started:.1f} s, "
          f"{len(acked)} tickets acknowledged")
    assert backup.returncode == 0, backup.stdout + backup.stderr
    assert "完整性检查通过" in backup.stdout
    assert restore.returncode == 0, restore.stdout + restore.stderr
    assert "已恢复" in restore.stdout
    assert not errors, errors[:5]
    assert not bad, f"{bad[:5]}\n{_tracebacks(server)}"
    assert acks_after(backup_started) and acks_after(restore_started)  # the clients kept writing

    copy_db = sqlite3.connect(f"file:{copy_path}?mode=ro", uri=True)
    try:
        assert copy_db.execute("pragma integrity_check").fetchall() == [("ok",)]
    finally:
        copy_db.close()
    in_copy = _tickets(copy_path)
    assert before_backup <= set(in_copy.values()), "a ticket acknowledged before the backup is missing"
    # A snapshot of one moment: exactly the live tickets up to its newest one, same ids and codes.
    last = max(in_copy)
    assert in_copy == {i: code for i, code in live_before_restore.items() if i <= last}
    assert max(live_before_restore) > last  # the server wrote on while and after the copy was taken
    # The restore put the copy back; tickets asked for after it are kept on top of it.
    live = _tickets(db_path)
    assert {i: code for i, code in live.items() if i <= last} == in_copy
    after_restore = {code for sent, _, code in list(acked) if sent > restore_done}
    assert after_restore and after_restore <= set(live.values())
    status, text = post_ask(server.port, question(1), "after-restore")
    assert status == 200 and ticket_code(status, text), text
    assert_clean_log(server)
