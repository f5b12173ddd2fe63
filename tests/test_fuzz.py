"""Property-based and fuzz tests of the text pipeline, the matcher and the public API."""
from __future__ import annotations

import json
import re

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import make_app

NASTY = st.one_of(
    st.text(max_size=200),
    st.text(alphabet=st.characters(codec="utf-8", categories=["Cc", "Cf", "Zs", "So", "Lo"]), max_size=60),
    st.sampled_from([
        "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "'; drop table tickets; --",
        "\" or 1=1 --", "😀" * 50, "\u202e申请\u202c", "\ud800", "\udfff申请", "\x00\x01\x1f", "问" * 10_000,
        "${jndi:ldap://x}", "{{7*7}}", "%s%s%n", "../../etc/passwd",
    ]),
)


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory):  # type: ignore[no-untyped-def]
    return make_app(tmp_path_factory.mktemp("fuzz"))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=NASTY)
def test_pipeline_and_matcher_never_fail(fuzz_app, text: str) -> None:
    from service.db import get_desk

    with fuzz_app.app_context():
        desk = get_desk()
        normalised, tokens = desk.pipeline.analyse(text)
        assert isinstance(normalised, str) and all(isinstance(t, str) and t for t in tokens)
        reply = desk.ask(text) if text.strip() else None
        if reply is not None:
            assert reply.status in ("answered", "clarify", "escalated")
            assert 0.0 <= reply.confidence <= 1.0 + 1e-9 or reply.status != "answered"


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(question=NASTY, session=st.one_of(st.none(), st.text(max_size=300), st.integers(), st.lists(st.integers())))
def test_api_never_answers_500(fuzz_app, question, session) -> None:
    client = fuzz_app.test_client()
    body = json.dumps({"question": question, "session": session})  # escapes lone surrogates like a browser
    response = client.post("/api/ask", data=body, content_type="application/json")
    assert response.status_code in (200, 400, 413), response.status_code
    data = response.get_json()
    assert ("error" in data) == (response.status_code != 200)
    if response.status_code == 400:
        assert re.search(r"[\u4e00-\u9fff]", data["error"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=300))
def test_api_survives_arbitrary_bodies(fuzz_app, raw: bytes) -> None:
    response = fuzz_app.test_client().post("/api/ask", data=raw, content_type="application/json")
    assert response.status_code in (200, 400)


def test_stored_html_is_never_executed_in_any_page(fuzz_app) -> None:
    """A script a citizen typed, escalated into a ticket, shows as text on staff and citizen pages."""
    client = fuzz_app.test_client()
    payload = "<script>alert('x')</script><img src=x onerror=alert(1)>贵单位食堂的菜谱能公开吗"
    reply = client.post("/api/ask", json={"question": payload}).get_json()
    assert reply["status"] == "escalated"
    from conftest import AuthActions

    auth = AuthActions(fuzz_app, client)
    auth.login("fuzz-reviewer", "reviewer")
    for path in ["/staff/tickets", "/staff/tickets?status=all"]:
        page = client.get(path).get_data(as_text=True)
        assert "<script>alert" not in page and "<img src=x" not in page
        assert "&lt;script&gt;" in page
    ticket_id = re.search(r'/staff/tickets/(\d+)', client.get("/staff/tickets").get_data(as_text=True)).group(1)
    page = client.get(f"/staff/tickets/{ticket_id}").get_data(as_text=True)
    assert "<script>alert" not in page and "&lt;script&gt;" in page


schema = schemathesis.openapi.from_wsgi("/api/openapi.json", make_app(__import__("pathlib").Path(
    __import__("tempfile").mkdtemp(prefix="schemathesis-"))))


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_matches_its_openapi_description(case) -> None:
    response = case.call()
    case.validate_response(response)
    assert response.status_code < 500
