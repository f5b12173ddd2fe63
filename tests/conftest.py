"""Shared fixtures: an app on a fresh, seeded temporary database, its client and CLI runner.

With ``INQUIRY_TEST_DATABASE_URL=postgresql://user@host:port/postgres`` every app gets a new
PostgreSQL database instead of a SQLite file (a copy of one migrated and seeded template),
so the same tests run on both databases.
"""
from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from service import create_app

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("INQUIRY_TEST_DATABASE_URL")
ON_POSTGRES = bool(PG_URL)
# Config that changes what a new database is seeded with: such an app seeds its own.
_SEEDING = {"KNOWLEDGE_DIR", "HOME_AGENCY"}

sqlite_only = pytest.mark.skipif(ON_POSTGRES, reason="SQLite's own files (backup, WAL, permissions)")


def free_port() -> int:
    """An unused loopback port, for a server a test starts."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ask_worker(port: int, question: str) -> tuple[dict, str]:
    """Ask a server started with INQUIRY_SHOW_WORKER_PID=1: the reply and the answering worker's pid."""
    import urllib.request

    body = json.dumps({"question": question}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/ask", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read()), response.headers["X-Worker-Pid"]


def start_run_py(port: int, db: Path, env: dict, log: Path, workers: int = 2):  # type: ignore[no-untyped-def]
    """``python run.py`` (gunicorn) on ``port`` and ``db``, its output in ``log``; returns the
    process once ``/healthz`` answers (it is stopped again if it never does)."""
    import subprocess
    import sys
    import time
    import urllib.request

    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "run.py", "--port", str(port), "--db", str(db),
                                 "--workers", str(workers)], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    for _ in range(300):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    proc.wait()
    raise AssertionError(log.read_text(errors="replace"))


def from_every_worker(port: int, question: str, workers: int = 2) -> dict[str, list[dict]]:
    """Ask concurrently until ``workers`` worker processes have answered; every reply, by pid."""
    from concurrent.futures import ThreadPoolExecutor

    seen: dict[str, list[dict]] = {}
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(10):
            for reply, pid in pool.map(lambda _: ask_worker(port, question), range(40)):
                seen.setdefault(pid, []).append(reply)
            if len(seen) >= workers:
                return seen
    raise AssertionError("only one worker ever answered")


def make_app(tmp_path: Path, **config):  # type: ignore[no-untyped-def]
    """An app on a new database under ``tmp_path`` (or a new PostgreSQL database)."""
    # Rate limits are tested on their own (tests/test_security.py); elsewhere they would only
    # stop a test that asks hundreds of questions from one address.
    # The analytics log is written at once (no batching), so tests can read it back.
    database = str(tmp_path / "test.db")
    if ON_POSTGRES and "DATABASE" not in config:
        # The same folder is the same database, as with the file: a second app on it is a restart.
        if str(tmp_path) not in _PG_BY_FOLDER:
            _PG_BY_FOLDER[str(tmp_path)] = new_pg_database(seeded=not _SEEDING & set(config))
        database = _PG_BY_FOLDER[str(tmp_path)]
    return create_app({"TESTING": True, "DATABASE": database, "RATELIMIT_ENABLED": False,
                       "ASK_LOG_BATCH": 1,
                       "INSTANCE_PATH": str(tmp_path / "instance"), **config})


_PG_NAMES = itertools.count()
_PG_CREATED: list[str] = []
_PG_TEMPLATE: list[str] = []
_PG_BY_FOLDER: dict[str, str] = {}
_PG_SESSION: list[str] = []


def _pg_url(name: str) -> str:
    """The test server's URL with another database name."""
    parts = urlsplit(PG_URL or "")
    return urlunsplit(parts._replace(path="/" + name))


def _pg_admin():  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(PG_URL or "", autocommit=True)


def new_pg_database(seeded: bool = True, *, session: bool = False) -> str:
    """A new, empty or migrated-and-seeded PostgreSQL database; its URL.

    Seeded ones copy a template migrated and seeded once per test run (``CREATE DATABASE
    ... TEMPLATE``), which takes a fraction of a second instead of seeding each time. It is
    dropped when its test module ends, or with ``session`` when the test run ends.
    """
    prefix = f"inquiry_test_{os.getpid()}"
    with _pg_admin() as admin:
        if seeded and not _PG_TEMPLATE:
            template = f"{prefix}_template"
            admin.execute(f"drop database if exists {template}")
            admin.execute(f"create database {template}")
            _build_template(_pg_url(template))
            _PG_TEMPLATE.append(template)
        name = f"{prefix}_{next(_PG_NAMES)}"
        admin.execute(f"drop database if exists {name}")
        admin.execute(f"create database {name}" + (f" template {_PG_TEMPLATE[0]}" if seeded else ""))
    (_PG_SESSION if session else _PG_CREATED).append(name)
    return _pg_url(name)


def _build_template(url: str) -> None:
    from service.knowledge import seed, seed_paraphrases
    from service.migrations import apply_migrations
    from service.storage import connect

    db = connect(url)
    try:
        apply_migrations(db)
        seed(db, ROOT / "knowledge", "国家统计局")
        seed_paraphrases(db, ROOT / "knowledge")
    finally:
        db.close()


def drop_pg_databases(names: list[str]) -> None:
    """Drop test databases, ending the connections apps still keep to them."""
    if not names:
        return
    with _pg_admin() as admin:
        for name in names:
            admin.execute(f"drop database if exists {name} with (force)")


@pytest.fixture(scope="module", autouse=True)
def _pg_cleanup():  # type: ignore[no-untyped-def]
    """Each module's PostgreSQL databases go when the module ends."""
    start = len(_PG_CREATED)
    yield
    if ON_POSTGRES:
        drop_pg_databases(_PG_CREATED[start:])
        del _PG_CREATED[start:]


def pytest_sessionfinish(session, exitstatus):  # type: ignore[no-untyped-def]
    if ON_POSTGRES:
        drop_pg_databases(_PG_CREATED + _PG_SESSION + _PG_TEMPLATE)


@pytest.fixture
def app(tmp_path):  # type: ignore[no-untyped-def]
    """A fresh app per test, for tests that change data."""
    return make_app(tmp_path)


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()


@pytest.fixture
def runner(app):  # type: ignore[no-untyped-def]
    return app.test_cli_runner()


@pytest.fixture(scope="module")
def module_app(tmp_path_factory):  # type: ignore[no-untyped-def]
    """One app per test module, for tests that only ask questions."""
    return make_app(tmp_path_factory.mktemp("module"))


@pytest.fixture(scope="module")
def ask(module_app):  # type: ignore[no-untyped-def]
    """Ask the module's app a question over its test client; returns the JSON reply."""
    client = module_app.test_client()

    def _ask(question: str, session: str | None = None) -> dict:
        body = {"question": question}
        if session is not None:
            body["session"] = session
        response = client.post("/api/ask", json=body)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    return _ask


def load_cases(path: Path) -> list[dict]:
    """Read a JSON-lines question set."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def csrf_token(client, url: str) -> str:  # type: ignore[no-untyped-def]
    """The CSRF token of the form on a page, as a browser would send it back."""
    import re

    page = client.get(url).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, f"no CSRF token on {url}"
    return match.group(1)


class AuthActions:
    """Create staff accounts and log them in through the real login form."""

    PASSWORD = "correct-horse-42"

    def __init__(self, app, client):  # type: ignore[no-untyped-def]
        self.app, self.client = app, client

    def create(self, username: str, role: str) -> None:
        from service.accounts import create_user
        from service.storage import connect

        db = connect(self.app.config["DATABASE"])
        try:
            create_user(db, username, self.PASSWORD, role)
        finally:
            db.close()

    def login(self, username: str = "curator1", role: str = "curator", password: str | None = None):  # type: ignore[no-untyped-def]
        from service.storage import connect

        db = connect(self.app.config["DATABASE"])
        try:
            known = db.execute("select 1 from users where username = ?", [username]).fetchone()
        finally:
            db.close()
        if not known:
            self.create(username, role)
        token = csrf_token(self.client, "/staff/login")
        return self.client.post("/staff/login", data={"username": username, "password": password or self.PASSWORD,
                                                      "csrf_token": token})

    def logout(self):  # type: ignore[no-untyped-def]
        token = csrf_token(self.client, "/staff/")
        return self.client.post("/staff/logout", data={"csrf_token": token})


@pytest.fixture
def auth(app, client):  # type: ignore[no-untyped-def]
    return AuthActions(app, client)


def routes_of(app, prefix: str) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """(method, path) of every route whose endpoint starts with ``prefix``, ids filled with 1."""
    import re

    out = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith(prefix):
            path = re.sub(r"<(?:int:)?[^>]+>", "1", rule.rule)
            out += [(m, path) for m in sorted(rule.methods - {"HEAD", "OPTIONS"})]
    return out


@pytest.fixture
def redis_url(tmp_path_factory):  # type: ignore[no-untyped-def]
    """A private redis-server on a free port (.ci/run installs Debian's redis-server)."""
    import shutil
    import socket
    import subprocess
    import time

    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (.ci/run installs it from Debian's redis-server package)")
    pytest.importorskip("redis", reason="the redis client is a test dependency: pip install -e '.[test]'")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path_factory.mktemp("redis"))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
