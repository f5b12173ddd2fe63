"""``POST /api/ask`` served ahead of Flask's request machinery: the ask lane.

An answer the reply cache already held took about 280 µs in the app, and half of that was
Flask rather than answering: a request context, URL matching, the before- and after-request
hooks of staff sessions, CSRF and cookies (none of which a citizen's question uses),
request and response objects, and some forty look-ups of ``request`` and ``current_app``.
The lane is a WSGI wrapper of the app that takes this one route first and does what the
view does, directly: in an app context (so ``get_db`` and ``get_desk`` work as in a view),
the same rate limit and headers, the same body checks and messages, the same
:func:`service.asking.answer` and the same JSON. Every other request goes on to Flask.

It steps aside (the Flask view then serves the route) when ``ASK_LANE`` is off, when the
limiter has application-wide limits, which Flask checks before every request, and when
``TRUSTED_HOSTS`` names the hosts Flask is to accept.
``tests/test_ask_lane.py`` compares the two paths response by response, and names the
hooks the lane stands in for, so that a hook added later is not silently skipped.
"""
from __future__ import annotations

import os
from contextlib import nullcontext
from typing import Any, Callable, Iterable

from flask import Flask, current_app, has_app_context
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wsgi import get_input_stream

from .. import asking, security
from ..addresses import client_key
from ..errors import MESSAGES, TOO_DEEP
from .citizen_chat import surroundings

PATH = "/api/ask"

StartResponse = Callable[..., Any]


def _is_json(environ: dict[str, Any]) -> bool:
    """Whether the body says it is JSON, as Werkzeug's ``Request.is_json`` decides."""
    mimetype = environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
    return mimetype == "application/json" or (mimetype.startswith("application/") and mimetype.endswith("+json"))


class AskLane:
    """The WSGI app to install as ``app.wsgi_app``, wrapping Flask's own (``inner``)."""

    def __init__(self, app: Flask, inner: Callable[[dict[str, Any], StartResponse], Iterable[bytes]]):
        self.app = app
        self.inner = inner
        self.show_pid = bool(app.config.get("SHOW_WORKER_PID") or os.environ.get("INQUIRY_SHOW_WORKER_PID"))

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if (environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "POST"
                or not self._open()):
            return self.inner(environ, start_response)
        with self._context():
            status, body, headers = self._serve(environ)
            try:
                payload = self._dumps(body)
            except Exception:
                self.app.logger.exception("unhandled error on %s", PATH)
                status, payload = 500, self._dumps({"error": MESSAGES[500]})
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(payload))), *headers,
                   *security.edge_headers(PATH, environ.get("wsgi.url_scheme") == "https")]
        if self.show_pid:
            headers.append(("X-Worker-Pid", str(os.getpid())))
        start_response(f"{status} {HTTP_STATUS_CODES.get(status, 'UNKNOWN').upper()}", headers)
        return [payload]

    def _open(self) -> bool:
        """Whether the lane serves the route now (see the module's docstring; a deployment
        that names its trusted hosts has Flask check them)."""
        app = self.app
        return bool(app.config.get("ASK_LANE", True)) and not app.config.get("TRUSTED_HOSTS") and (
            security.limiter._check_request_limit not in app.before_request_funcs.get(None, ()))

    def _context(self) -> Any:
        """The app context to answer in: the caller's, if it is this app's (as Flask's own
        request would use it), else a new one."""
        if has_app_context() and current_app._get_current_object() is self.app:  # type: ignore[attr-defined]
            return nullcontext()
        return self.app.app_context()

    def _serve(self, environ: dict[str, Any]) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        """Status, body and the rate-limit headers of one ask, as the view and the app's
        error handlers would give them."""
        app = self.app
        config = app.config
        remote = environ.get("REMOTE_ADDR")
        forwarded = "HTTP_X_FORWARDED_FOR" in environ
        if not config.get("PROXY_COUNT"):
            security.warn_of_unknown_proxy(app, forwarded)
        headers: list[tuple[str, str]] = []
        try:
            if security.uncounted(config, remote, forwarded):
                may_open_ticket: Callable[[], bool] = lambda: True  # noqa: E731
            else:
                key = client_key(remote or "127.0.0.1")  # as Flask-Limiter's get_remote_address
                headers, refused = security.count(security.ask_limit(), "ask", key)
                if refused is not None:
                    headers.append(("Retry-After", str(security.retry_after(refused))))
                    return 429, {"error": MESSAGES[429]}, headers
                may_open_ticket = lambda: security.ticket_allowed(config, key)  # noqa: E731
            data = self._json(environ, config["MAX_API_BODY"])
            return 200, asking.answer(data, surroundings(may_open_ticket)), headers
        except asking.AskRefused as exc:
            return exc.status, {"error": exc.message}, headers
        except HTTPException as exc:
            # As service/errors.py answers them: too large a body (413), a client gone
            # before its body arrived (Werkzeug's ClientDisconnected, a 400).
            status = exc.code or 500
            kept = [(name, value) for name, value in exc.get_headers() if name.lower() in ("allow", "retry-after")]
            return status, {"error": MESSAGES.get(status, exc.description or MESSAGES[500])}, headers + kept
        except RecursionError:
            # JSON nested a thousand levels deep: the client's fault (see service/errors.py).
            return 400, {"error": TOO_DEEP}, headers
        except OverflowError:
            return 404, {"error": MESSAGES[404]}, headers  # as service/errors.py has it
        except Exception:
            app.logger.exception("unhandled error on %s", PATH)
            return 500, {"error": MESSAGES[500]}, headers

    def _json(self, environ: dict[str, Any], limit: int) -> Any:
        """The body's JSON as ``request.get_json(silent=True)`` reads it with the body limit
        ``limit``: None unless the body says it is JSON and is; too large a body raises
        ``RequestEntityTooLarge``."""
        if not _is_json(environ):
            return None
        raw = get_input_stream(environ, max_content_length=limit).read()
        try:
            return self.app.json.loads(raw)
        except ValueError:  # not JSON, or not in a Unicode encoding
            return None

    def _dumps(self, body: dict[str, Any]) -> bytes:
        """The body as Flask's ``jsonify`` writes it."""
        provider: Any = self.app.json
        if (provider.compact is None and self.app.debug) or provider.compact is False:
            text = provider.dumps(body, indent=2)
        else:
            text = provider.dumps(body, separators=(",", ":"))
        return f"{text}\n".encode()
