"""Security at the edge: response headers, rate limits, proxy awareness."""
from __future__ import annotations

import functools
import math
import os
import time
from typing import Any, Callable, TypeVar

from flask import Flask, Request, Response, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface, SessionMixin
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from werkzeug.exceptions import TooManyRequests
from werkzeug.middleware.proxy_fix import ProxyFix

from .addresses import client_key

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")

# One limiter for the app; the limits themselves come from the config, so a deployment
# (or a load test on loopback) can set its own.
def client() -> str:
    """The key a request is rate-limited under: its address, an IPv6 client by its /64."""
    return client_key(get_remote_address())


F = TypeVar("F", bound=Callable[..., Any])

limiter = Limiter(key_func=client, default_limits=[], headers_enabled=True)


def is_exempt(config: Any, remote_addr: str | None, forwarded: bool) -> bool:
    """Whether a request from ``remote_addr`` (``forwarded``: it carries X-Forwarded-For)
    is exempt from rate limits: health checks, monitoring and evaluation scripts on the
    host itself are not throttled.

    Behind nginx set PROXY_COUNT, so that clients are seen with their real address. A
    request relayed by a proxy on the same host carries X-Forwarded-For: it is a client's,
    not the host's, even if PROXY_COUNT was forgotten.
    """
    return (bool(config.get("RATE_LIMIT_EXEMPT_LOOPBACK")) and remote_addr in ("127.0.0.1", "::1")
            and not forwarded)


@limiter.request_filter
def _local_is_exempt() -> bool:
    """:func:`is_exempt` for Flask-Limiter's own limits."""
    from flask import current_app

    return is_exempt(current_app.config, request.remote_addr, "X-Forwarded-For" in request.headers)


def ask_limit() -> str:
    """Rate limit of ``POST /api/ask`` per client address."""
    from flask import current_app

    return current_app.config["RATE_LIMIT_ASK"]


def lookup_limit() -> str:
    """Rate limit of ticket look-ups per client address."""
    from flask import current_app

    return current_app.config["RATE_LIMIT_LOOKUP"]


def login_limit() -> str:
    """Rate limit of staff login attempts per client address."""
    from flask import current_app

    return current_app.config["RATE_LIMIT_LOGIN"]


def uncounted(config: Any, remote_addr: str | None, forwarded: bool) -> bool:
    """Whether a request is counted by no limit: limits are off, or it is exempt."""
    return not config.get("RATELIMIT_ENABLED", True) or is_exempt(config, remote_addr, forwarded)


def _uncounted() -> bool:
    """:func:`uncounted` for the request being handled."""
    from flask import current_app

    return uncounted(current_app.config, request.remote_addr, "X-Forwarded-For" in request.headers)


def ticket_allowed(config: Any, key: str) -> bool:
    """Whether the client of ``key`` may open one more ticket now (``RATE_LIMIT_TICKETS``
    per address, on top of the question limit): a flood of escalations must not bury the
    reviewers' queue. Counted in the limiter's shared storage, so across workers; for a
    request that :func:`uncounted` lets through, not called at all. A setting that cannot
    be read limits nothing (and is logged), as for the question limit: it made every
    question the desk could not answer a 500, with no ticket."""
    strategy = limiter.limiter
    return all(strategy.hit(item, "tickets", key) for item in _limits_of(config["RATE_LIMIT_TICKETS"]))


def may_open_ticket() -> bool:
    """:func:`ticket_allowed` for the request being handled."""
    from flask import current_app

    return _uncounted() or ticket_allowed(current_app.config, client())


@functools.lru_cache(maxsize=32)
def _limits_of(value: str) -> tuple[Any, ...]:
    """The limits a setting names; none (logged once) for a setting that names none or
    cannot be read: a mistyped limit must not turn every question away."""
    from flask import current_app
    from limits import parse_many

    try:
        return tuple(parse_many(value))
    except ValueError:
        current_app.logger.error("频率限制设置无法识别：%r，该接口暂不限制频率。请检查 RATE_LIMIT_* 设置。", value)
        return ()


def count(value: str, scope: str, key: str) -> tuple[list[tuple[str, str]], float | None]:
    """Count one request of the client ``key`` in ``scope`` against every limit that the
    setting ``value`` names, one count per limit in the limiter's shared storage: the
    ``X-RateLimit-Limit``, ``-Remaining`` and ``-Reset`` headers to show (those of the limit
    nearest to refusing), and, if a limit refuses it, when that limit's window ends."""
    strategy = limiter.limiter
    shown: tuple[int, int, int] | None = None
    for item in _limits_of(value):
        allowed = strategy.hit(item, scope, key)
        reset, remaining = strategy.get_window_stats(item, scope, key)
        if shown is None or remaining < shown[1] or not allowed:
            shown = (item.amount, 0 if not allowed else remaining, int(reset))
        if not allowed:
            return _limit_headers(shown), reset
    return (_limit_headers(shown) if shown is not None else []), None


def _limit_headers(shown: tuple[int, int, int]) -> list[tuple[str, str]]:
    limit, remaining, reset_at = shown
    return [("X-RateLimit-Limit", str(limit)), ("X-RateLimit-Remaining", str(remaining)),
            ("X-RateLimit-Reset", str(reset_at))]


def retry_after(reset: float) -> int:
    """The seconds a refused client is told to wait (``Retry-After``): at least one."""
    return max(1, math.ceil(reset - time.time()))


def counted(limit_value: Callable[[], str], scope: str) -> Callable[[F], F]:
    """A view's rate limit per client address, checked with :func:`count`: for
    ``POST /api/ask``, where Flask-Limiter's route decorator (resolving, filtering and
    evaluating its limits, then writing its headers) took a fifth of an answer from the
    reply cache. Every counted response carries ``X-RateLimit-Limit``, ``-Remaining`` and
    ``-Reset`` (also the view's own errors); a refusal is a 429 with ``Retry-After``."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def inner(*args: Any, **kwargs: Any) -> Any:
            from flask import after_this_request

            if _uncounted():
                return view(*args, **kwargs)
            headers, refused = count(limit_value(), scope, client())
            if headers:
                @after_this_request
                def show(response: Response) -> Response:
                    for name, value in headers:
                        response.headers[name] = value
                    return response

            if refused is not None:
                raise TooManyRequests(retry_after=retry_after(refused))
            return view(*args, **kwargs)

        return inner  # type: ignore[return-value]

    return decorate


_EVERY_RESPONSE = (
    ("Content-Security-Policy", CSP),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
)
_NOT_STORED = ("/staff", "/api/", "/tickets")


def edge_headers(path: str, secure: bool) -> list[tuple[str, str]]:
    """The security headers of a response to ``path`` (``secure``: asked over HTTPS)."""
    wanted = list(_EVERY_RESPONSE)
    if secure:
        wanted.append(("Strict-Transport-Security", "max-age=31536000"))
    if path.startswith(_NOT_STORED):
        wanted.append(("Cache-Control", "no-store"))
    return wanted


def _headers(response: Response) -> Response:
    """The security headers, unless the view set its own (one pass over the headers, not one
    per header: this runs on every response)."""
    present = {key.lower() for key in response.headers.keys()}
    response.headers.extend([(key, value) for key, value in edge_headers(request.path, request.is_secure)
                             if key.lower() not in present])
    return response


class _SessionInterface(SecureCookieSessionInterface):
    """Session cookies are Secure whenever the request came over HTTPS (or if configured)."""

    def get_cookie_secure(self, app: Flask) -> bool:  # type: ignore[override]
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:  # type: ignore[override]
        """A request without a session cookie (every citizen's question) starts an empty
        session without building the signing serializer."""
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:  # type: ignore[override]
        """An empty session nobody changed sets no cookie: only ``Vary: Cookie`` if it was read
        (as Flask's own would, without working out the cookie's settings first)."""
        if not session and not session.modified:
            if session.accessed:
                response.vary.add("Cookie")
            return
        super().save_session(app, session, response)


def init_app(app: Flask) -> None:
    """Headers on every response, the limiter, and trust in the proxy's headers if configured."""
    if app.config.get("PROXY_COUNT"):
        # Behind nginx: the client's address and scheme come from X-Forwarded-For/-Proto.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["PROXY_COUNT"],  # type: ignore[method-assign]
                                x_proto=app.config["PROXY_COUNT"])

    app.session_interface = _SessionInterface()
    app.after_request(_headers)
    if not app.config.get("PROXY_COUNT"):
        app.before_request(_warn_of_unknown_proxy)

    # Counters shared by every worker on the host (a memory-mapped table of their own),
    # unless Redis is configured (RATELIMIT_STORAGE_URI=redis://…) for several hosts.
    from . import ratelimit_store  # noqa: F401  (registers the counters:// scheme)

    app.config.setdefault("RATELIMIT_STORAGE_URI",
                          f"counters://{os.path.join(app.instance_path, 'ratelimits.table')}")
    limiter.init_app(app)
    _only_route_limits(app)
    if app.config.get("RATELIMIT_ENABLED", True) and str(app.config["RATELIMIT_STORAGE_URI"]).startswith("counters:"):
        # Map the table once, before workers fork: they count in the mapping they inherit.
        limiter.storage.check()


def _only_route_limits(app: Flask) -> None:
    """Every limit of the service is a view's own (``@limiter.limit``), checked when the view
    is called. Flask-Limiter also makes a pass before every request for application-wide,
    default and blueprint limits; with none of those it finds nothing, at the cost of a
    second check (a third of a cached answer's time). It is left out while there are none."""
    manager = limiter.limit_manager
    if (manager.application_limits or manager.default_limits or getattr(manager, "_blueprint_limits", True)
            or getattr(limiter, "_meta_limits", True)):
        return
    app.before_request_funcs[None] = [f for f in app.before_request_funcs.get(None, [])
                                      if f != limiter._check_request_limit]


_WARNED: list[bool] = []


def _warn_of_unknown_proxy() -> None:
    """:func:`warn_of_unknown_proxy` before every request, when no proxy is configured."""
    from flask import current_app

    warn_of_unknown_proxy(current_app, "X-Forwarded-For" in request.headers)


def warn_of_unknown_proxy(app: Flask, forwarded: bool) -> None:
    """Requests relayed by a proxy the service was not told about all share the proxy's
    address: one citizen's flood would throttle everyone. Say so, once per worker."""
    if forwarded and not _WARNED:
        _WARNED.append(True)
        app.logger.warning(
            "收到经由代理转发的请求（带 X-Forwarded-For），但未设置 INQUIRY_PROXY_COUNT：所有访问者将按代理的地址"
            "共用频率限制，一人频繁访问会限制所有人。若服务在反向代理之后，请设置 INQUIRY_PROXY_COUNT=代理层数。")
