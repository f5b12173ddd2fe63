"""The ask lane (service/views/ask_lane.py) serves POST /api/ask as the Flask view does.

Every other test of the ask goes through the lane (the test client calls ``app.wsgi_app``);
these compare it, response by response, with the Flask view it stands in for, and pin down
when it steps aside.
"""
from __future__ import annotations

import io
import json
import re
import sys
from typing import Any

import pytest

from conftest import make_app
from service import asking
from service.errors import MESSAGES


def _pair(tmp_path, **config: Any):  # type: ignore[no-untyped-def]
    """Two apps on databases of their own, alike but for the lane: (lane, Flask view)."""
    return (make_app(tmp_path / "lane", ASK_LANE=True, **config),
            make_app(tmp_path / "view", ASK_LANE=False, **config))


# Drawn fresh for every response: the feedback id, a ticket's code and password, the signed
# "did you mean" picks, and (in the answer's text) the ticket's code.


def _comparable(value: Any) -> Any:
    if isinstance(value, dict):
        if "code" in value and ("password" in value or "reused" in value):  # a ticket: its keys stay
            return {k: ("<drawn>" if k in ("code", "password") and v else v) for k, v in value.items()}
        return {k: ("<drawn>" if k in ("ask_id", "pick") and v is not None else _comparable(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    if isinstance(value, str):
        return re.sub(r"GK[0-9A-Z]{2}(?:-?[0-9A-Z]{4}){2,3}", "<code>", value)
    return value


def _headers(response) -> dict[str, str]:  # type: ignore[no-untyped-def]
    # The window's end (and so the wait a refusal names) may fall in another second for the
    # second app. Flask's path reads
    # the staff session (the login hook) and so says ``Vary: Cookie``; the lane reads no
    # cookie, and the answer depends on none (and is ``no-store``, kept by no cache).
    assert response.headers["Cache-Control"] == "no-store"
    if "Retry-After" in response.headers:
        assert 1 <= int(response.headers["Retry-After"]) <= 3600
    return {k: v for k, v in response.headers.items()
            if k not in ("Content-Length", "X-RateLimit-Reset", "Retry-After", "Vary")}


REQUESTS: list[tuple[str, dict[str, Any]]] = [
    ("answered", {"json": {"question": "申请政府信息公开要收费吗？"}}),
    ("clarify", {"json": {"question": "期限"}}),
    ("escalated with a ticket", {"json": {"question": "你们单位食堂几点开饭？"}}),
    ("referred elsewhere", {"json": {"question": "我家小区停水了找谁"}}),
    ("small talk", {"json": {"question": "谢谢"}}),
    ("a session and a follow-up", {"json": {"question": "申请公开要多久", "session": "s-1"}}),
    ("asked for a person", {"json": {"question": "申请政府信息公开要收费吗？", "escalate": True}}),
    ("escalate not a flag", {"json": {"question": "你好", "escalate": "yes"}}),
    ("a pick that is not one", {"json": {"question": "你好", "pick": "forged"}}),
    ("personal numbers masked", {"json": {"question": "我的手机号13812345678，申请公开要多久"}}),
    ("not JSON by its type", {"data": "question=你好", "content_type": "application/x-www-form-urlencoded"}),
    ("JSON sent as text", {"data": "{\"question\": \"你好\"}", "content_type": "text/plain"}),
    ("JSON of another type", {"data": "{\"question\": \"你好\"}", "content_type": "application/vnd.api+json"}),
    ("broken JSON", {"data": "{\"question\": ", "content_type": "application/json"}),
    ("not UTF-8", {"data": b"{\"question\": \"\xff\xfe\"}", "content_type": "application/json"}),
    ("a list", {"json": ["你好"]}),
    ("no question", {"json": {"session": "s-2"}}),
    ("a number", {"json": {"question": 12}}),
    ("blank", {"json": {"question": "   "}}),
    ("too long", {"json": {"question": "问" * 5000}}),
    ("a session of another type", {"json": {"question": "你好", "session": 5}}),
    ("too large a body", {"data": json.dumps({"question": "问" * 20_000}), "content_type": "application/json"}),
    ("nested a thousand deep", {"data": "[" * 5_000 + "]" * 5_000, "content_type": "application/json"}),
    ("over HTTPS", {"json": {"question": "你好"}, "base_url": "https://localhost"}),
    ("asked twice in a session", {"json": {"question": "你们单位食堂几点开饭？", "session": "s-3"}}),
]


@pytest.mark.parametrize(("name", "request_args"), REQUESTS, ids=[name for name, _ in REQUESTS])
def test_the_lane_answers_as_the_flask_view_does(tmp_path, name: str, request_args: dict[str, Any]) -> None:
    lane, view = _pair(tmp_path)
    responses = []
    for app in (lane, view):
        client = app.test_client()
        if name == "a session and a follow-up":
            client.post("/api/ask", json={"question": "2023年收到多少政府信息公开申请？", "session": "s-1"})
        if name == "asked twice in a session":  # the ticket of the first asking, reused
            client.post("/api/ask", json={"question": "你们单位食堂几点开饭？", "session": "s-3"})
        responses.append(client.post("/api/ask", **request_args))
    ours, theirs = responses
    assert ours.status_code == theirs.status_code, name
    assert _comparable(ours.get_json()) == _comparable(theirs.get_json()), name
    assert _headers(ours) == _headers(theirs), name
    assert ours.get_data().endswith(b"\n") and ours.is_json


def test_the_lane_counts_and_refuses_as_the_flask_view_does(tmp_path) -> None:
    seen = []
    for lane_on in (True, False):
        # One app at a time: the limiter is the process's, with the storage of the last app made.
        app = make_app(tmp_path / str(lane_on), ASK_LANE=lane_on, RATELIMIT_ENABLED=True,
                       RATE_LIMIT_EXEMPT_LOOPBACK=False, RATE_LIMIT_ASK="3 per minute;5 per hour",
                       RATE_LIMIT_TICKETS="1 per hour")
        client = app.test_client()
        answers = [client.post("/api/ask", json={"question": "你们单位食堂几点开饭？"}) for _ in range(4)]
        seen.append([(r.status_code, _comparable(r.get_json()), _headers(r)) for r in answers])
        assert answers[-1].status_code == 429 and answers[-1].get_json() == {"error": MESSAGES[429]}
        assert "Retry-After" in answers[-1].headers
        # The second escalation from the address is over the ticket limit: no ticket.
        assert answers[0].get_json()["ticket"] and answers[1].get_json().get("ticket_refused")
    assert seen[0] == seen[1]


def test_the_lane_serves_the_route_unless_turned_off(tmp_path) -> None:
    lane, view = _pair(tmp_path)
    for app in (lane, view):
        def broken():  # type: ignore[no-untyped-def]
            raise AssertionError("the Flask view was called")

        app.view_functions["chat.ask"] = broken
    assert lane.test_client().post("/api/ask", json={"question": "你好"}).status_code == 200
    # Without the lane the view is what answers (here, with the error handler's 500).
    assert view.test_client().post("/api/ask", json={"question": "你好"}).status_code == 500
    # Other methods and paths are Flask's.
    assert lane.test_client().get("/api/ask").status_code == 405
    assert lane.test_client().post("/api/ask/", json={"question": "你好"}).status_code == 404


def test_the_lane_steps_aside_for_application_wide_limits(tmp_path) -> None:
    """Flask-Limiter checks application-wide limits before every view (when a deployment sets
    any, see security._only_route_limits); the lane would skip that check, so it leaves the
    route to Flask. (Set here on the app alone: the limiter's settings are the process's.)"""
    from service.security import limiter

    app = make_app(tmp_path, RATELIMIT_ENABLED=True)
    calls: list[str] = []
    view = app.view_functions["chat.ask"]

    def counted_view():  # type: ignore[no-untyped-def]
        calls.append("view")
        return view()

    app.view_functions["chat.ask"] = counted_view
    client = app.test_client()
    assert client.post("/api/ask", json={"question": "你好"}).status_code == 200 and calls == []
    app.before_request_funcs.setdefault(None, []).append(limiter._check_request_limit)
    assert client.post("/api/ask", json={"question": "你好"}).status_code == 200 and calls == ["view"]


def test_an_unexpected_error_is_a_plain_500_and_logged(tmp_path, monkeypatch, caplog) -> None:
    lane, view = _pair(tmp_path)

    def fails(*_args: Any) -> dict[str, Any]:
        raise RuntimeError("boom")

    monkeypatch.setattr(asking, "answer", fails)
    for app in (lane, view):
        response = app.test_client().post("/api/ask", json={"question": "你好"})
        assert response.status_code == 500 and response.get_json() == {"error": MESSAGES[500]}
        assert response.headers["Cache-Control"] == "no-store"
    assert sum("unhandled error on /api/ask" in r.getMessage() for r in caplog.records) == 2


def _environ(body: Any, **extra: Any) -> dict[str, Any]:
    return {"REQUEST_METHOD": "POST", "PATH_INFO": "/api/ask", "SCRIPT_NAME": "", "QUERY_STRING": "",
            "SERVER_NAME": "localhost", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1", "CONTENT_TYPE": "application/json", "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body) if isinstance(body, bytes) else body, "wsgi.errors": sys.stderr, "wsgi.multithread": False,
            "wsgi.multiprocess": True, "wsgi.run_once": False, "wsgi.version": (1, 0), **extra}


def _call(app, environ: dict[str, Any]) -> tuple[int, Any]:  # type: ignore[no-untyped-def]
    status: list[str] = []
    body = b"".join(app.wsgi_app(environ, lambda s, h, exc=None: status.append(s)))
    return int(status[0].split()[0]), json.loads(body)


def test_a_body_without_a_length_is_read_as_werkzeug_reads_it(tmp_path) -> None:
    """A chunked body (the server says the input ends, and gives no length), one with no
    length and no end, one whose length is not a number: as the Flask view reads them."""
    lane, view = _pair(tmp_path)
    small = json.dumps({"question": "你好"}).encode()
    large = json.dumps({"question": "问" * 20_000}).encode()
    cases = [(small, {"wsgi.input_terminated": True}), (large, {"wsgi.input_terminated": True}),
             (small, {}), (small, {"CONTENT_LENGTH": "many"}), (small, {"CONTENT_LENGTH": "-5"}),
             # The client went away: a body shorter than its length, a connection reset.
             (small[:5], {"CONTENT_LENGTH": str(len(small))}), (_Reset(), {"wsgi.input_terminated": True})]
    ours = [_call(lane, _environ(body, **extra)) for body, extra in cases]
    theirs = [_call(view, _environ(body, **extra)) for body, extra in cases]
    assert [(status, _comparable(body)) for status, body in ours] == \
        [(status, _comparable(body)) for status, body in theirs]
    assert ours[0][0] == 200
    # Read no further than the limit, which leaves no JSON; no body at all likewise.
    assert [status for status, _ in ours[1:5]] == [400, 400, 400, 400]
    assert all(body == {"error": asking.BAD_JSON} for _, body in ours[1:5])
    # A client gone is a 400 (Werkzeug's ClientDisconnected), not an error of the service.
    assert ours[5:] == [(400, {"error": MESSAGES[400]})] * 2


class _Reset(io.RawIOBase):
    """A request body whose connection is reset while it is read."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        raise ConnectionResetError("reset by peer")


def test_the_hooks_the_lane_stands_in_for(tmp_path) -> None:
    """The lane does, for POST /api/ask, what these app-wide hooks would: warn of an unknown
    proxy, the security headers, closing the request's transaction. CSRF, staff sessions and
    Flask-Limiter's own bookkeeping have nothing to do for it. A hook added to this list must
    be weighed for the lane (service/views/ask_lane.py) too."""
    app = make_app(tmp_path, RATELIMIT_ENABLED=True)  # the limiter's hooks come with its limits

    def names(funcs: Any) -> list[str]:
        return [getattr(getattr(f, "func", f), "__qualname__", repr(f)) for f in funcs]

    assert names(app.before_request_funcs.get(None, [])) == [
        "_warn_of_unknown_proxy", "CSRFProtect.init_app.<locals>.csrf_protect", "_load_user"]
    assert names(app.after_request_funcs.get(None, [])) == ["_headers", "Limiter.__inject_headers"]
    assert names(app.teardown_request_funcs.get(None, [])) == ["Limiter.__release_context"]
    assert names(app.teardown_appcontext_funcs) == ["close_db"]
    assert not app.url_value_preprocessors and not app.url_default_functions
    # Nor any of the chat blueprint's own.
    for hooks in (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs):
        assert "chat" not in hooks


def test_behind_a_proxy_the_lane_sees_the_client(tmp_path) -> None:
    """With PROXY_COUNT, ProxyFix sits outside the lane: each client behind the proxy is
    counted apart, and HTTPS at the proxy brings HSTS, as on Flask's path."""
    seen = []
    for lane_on in (True, False):
        app = make_app(tmp_path / str(lane_on), ASK_LANE=lane_on, PROXY_COUNT=1, RATELIMIT_ENABLED=True,
                       RATE_LIMIT_EXEMPT_LOOPBACK=True, RATE_LIMIT_ASK="2 per minute")
        client = app.test_client()
        codes = []
        for who in ("198.51.100.1", "198.51.100.1", "198.51.100.1", "198.51.100.2"):
            response = client.post("/api/ask", json={"question": "你好"},
                                   headers={"X-Forwarded-For": who, "X-Forwarded-Proto": "https"})
            codes.append(response.status_code)
            assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
        seen.append(codes)
    assert seen == [[200, 200, 429, 200]] * 2


def test_an_ask_inside_the_apps_context_keeps_it(tmp_path) -> None:
    """A caller already in the app's context (a script, a test) is answered in it, as Flask's
    request would be, and its transaction on the kept connection is not rolled back."""
    from service.db import get_db
    from service.storage import immediate

    app = make_app(tmp_path)
    with app.app_context():
        db = get_db()
        with immediate(db):
            db.execute("insert into canned_replies (title, body, created, updated) values ('t', 'b', 'x', 'x')")
            assert app.test_client().post("/api/ask", json={"question": "你好"}).status_code == 200
            assert db.conn.in_transaction
        assert db.execute("select count(*) from canned_replies where title = 't'").fetchone()[0] == 1
