"""Shared fixtures: an app on a fresh, seeded temporary database, its client and CLI runner."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from service import create_app

ROOT = Path(__file__).resolve().parent.parent


def make_app(tmp_path: Path, **config):  # type: ignore[no-untyped-def]
    """An app on a new database under ``tmp_path``."""
    # Rate limits are tested on their own (tests/test_security.py); elsewhere they would only
    # stop a test that asks hundreds of questions from one address.
    # The analytics log is written at once (no batching), so tests can read it back.
    return create_app({"TESTING": True, "DATABASE": str(tmp_path / "test.db"), "RATELIMIT_ENABLED": False,
                       "ASK_LOG_BATCH": 1,
                       "INSTANCE_PATH": str(tmp_path / "instance"), **config})


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

        create_user(connect(self.app.config["DATABASE"]), username, self.PASSWORD, role)

    def login(self, username: str = "curator1", role: str = "curator", password: str | None = None):  # type: ignore[no-untyped-def]
        from service.storage import connect

        if not connect(self.app.config["DATABASE"]).execute("select 1 from users where username = ?", [username]).fetchone():
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
