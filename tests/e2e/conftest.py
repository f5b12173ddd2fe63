"""Real-browser end-to-end tests: the production server (``run.py``, gunicorn, two workers) on a
temporary database and a free port, driven by Debian's Chromium through Playwright.

Skipped, with the reason, only when the browser (/usr/bin/chromium) or the ``playwright`` package
is missing; ``.ci/run`` installs both (and axe-core into ``.ci/node``), so in CI they always run.
No browser is ever downloaded: Playwright only provides the driver.
"""
from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from .helpers import CHROMIUM, PASSWORD, ROOT, TIMEOUT_MS, LiveServer

E2E_DIR = Path(__file__).resolve().parent
# Headless, as root, on a machine whose network reaches nothing: no background connections.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-quic"]


def _missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    reasons = []
    if not CHROMIUM.exists():
        reasons.append(f"{CHROMIUM} is missing (apt-get install -y chromium fonts-noto-cjk)")
    if importlib.util.find_spec("playwright") is None:
        reasons.append("the playwright package is missing (pip install -e '.[test]')")
    return "; ".join(reasons) or None


def pytest_collection_modifyitems(config, items):  # type: ignore[no-untyped-def]
    reason = _missing()
    if not reason:
        return
    skip = pytest.mark.skip(reason=f"browser tests skipped: {reason}")
    for item in items:
        if E2E_DIR in Path(str(item.fspath)).resolve().parents:
            item.add_marker(skip)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _create_user(db: Path, name: str, role: str) -> None:
    """A staff account, made the way the README says: the Flask CLI against the same database."""
    env = dict(os.environ, INQUIRY_DB=str(db))
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "service", "create-user", name,
                           "--role", role, "--password", PASSWORD],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


@contextlib.contextmanager
def running_server(tmp: Path, users: tuple[tuple[str, str], ...]) -> Iterator[LiveServer]:
    """``python run.py --port P --db DB --workers 2`` on a new database in ``tmp``, with these
    (name, role) staff accounts; stopped on exit."""
    import conftest as shared  # tests/conftest.py: which database the suite runs on

    port, db, log = _free_port(), tmp / "e2e.db", tmp / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("INQUIRY_")}
    where = ["--db", str(db)]
    if shared.ON_POSTGRES:
        db = env["INQUIRY_DATABASE_URL"] = shared.new_pg_database(session=True)  # type: ignore[assignment]
        where = []
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "run.py", "--port", str(port), *where, "--workers", "2"],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the server did not start:\n" + log.read_text(errors="replace"))
                time.sleep(0.1)
        for name, role in users:
            _create_user(db, name, role)
        yield LiveServer(f"http://127.0.0.1:{port}", db)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory) -> Iterator[LiveServer]:  # type: ignore[no-untyped-def]
    """The shared server of the browser tests, with a curator and a reviewer."""
    with running_server(tmp_path_factory.mktemp("e2e"), (("rev", "reviewer"), ("cur", "curator"))) as server:
        yield server


@pytest.fixture(scope="session")
def browser():  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _context(browser, **options):  # type: ignore[no-untyped-def]
    context = browser.new_context(locale="zh-CN", **options)
    context.set_default_timeout(TIMEOUT_MS)
    return context


@pytest.fixture
def new_context(browser):  # type: ignore[no-untyped-def]
    """Make fresh browser contexts (separate cookies and storage: one per person); closed at the end."""
    made = []

    def make(**options):  # type: ignore[no-untyped-def]
        context = _context(browser, **options)
        made.append(context)
        return context

    yield make
    for context in made:
        context.close()


@pytest.fixture
def page(new_context):  # type: ignore[no-untyped-def]
    """A page in a fresh context (the citizen)."""
    return new_context(viewport={"width": 1280, "height": 900}).new_page()
