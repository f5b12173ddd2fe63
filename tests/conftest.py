"""Shared fixtures: an app on a fresh, seeded temporary database, its client and CLI runner."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from service import create_app

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


def make_app(tmp_path: Path, **config):  # type: ignore[no-untyped-def]
    """An app on a new database under ``tmp_path``."""
    return create_app({"TESTING": True, "DATABASE": str(tmp_path / "test.db"), **config})


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
def shared_app(tmp_path_factory):  # type: ignore[no-untyped-def]
    """One app per test module, for tests that only ask questions."""
    return make_app(tmp_path_factory.mktemp("shared"))


@pytest.fixture(scope="module")
def ask(shared_app):  # type: ignore[no-untyped-def]
    """Ask the shared app a question over its test client; returns the JSON reply."""
    client = shared_app.test_client()

    def _ask(question: str, session: str | None = None) -> dict:
        body = {"question": question}
        if session is not None:
            body["session"] = session
        response = client.post("/api/ask", json=body)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    return _ask


def load_scorer():  # type: ignore[no-untyped-def]
    """The shared scorer's ``judge``, so tests judge answers exactly as the scorer does."""
    spec = importlib.util.spec_from_file_location("eval_score", SHARED / "eval" / "score.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def load_cases(path: Path) -> list[dict]:
    """Read a JSON-lines question set."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
