"""政务公开智能问答: the inquiry desk for government information disclosure."""
from __future__ import annotations

import atexit
# Werkzeug encodes a request's host with the idna codec, which Python imports at its first
# use (3 ms). Imported with the app, a pre-forking server's workers share it rather than
# each importing it at its first citizen's request.
import encodings.idna  # noqa: F401
import os
from pathlib import Path
from typing import Any, Mapping

from flask import Flask

ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the Flask app: config, database (migrated and seeded), blueprints."""
    # Tests keep their files apart; an operator may keep the instance folder (secret keys,
    # config.py, the default database) elsewhere with INQUIRY_INSTANCE.
    instance = (test_config or {}).get("INSTANCE_PATH") or (
        os.environ.get("INQUIRY_INSTANCE") if test_config is None else None)
    app = Flask(__name__, instance_relative_config=True, static_folder=str(ROOT / "static"),
                instance_path=str(instance) if instance else None)
    app.config.from_mapping(
        DATABASE=os.path.join(app.instance_path, "inquiry.db"),
        KNOWLEDGE_DIR=str(ROOT / "knowledge"),
        HOME_AGENCY="国家统计局",
        PRODUCT_NAME="政务公开智能问答",
        MAX_QUESTION_CHARS=500,
        MAX_CONTENT_LENGTH=10 * 1024 * 1024,  # report uploads; the API sets its own limit
        MAX_API_BODY=16 * 1024,
        # The analytics log is written in batches of this many questions (or every
        # ASK_LOG_MAX_DELAY seconds), so logging does not serialise the workers.
        ASK_LOG_BATCH=64,
        ASK_LOG_MAX_DELAY=1.0,
        # POST /api/ask served ahead of Flask's request machinery (service/views/ask_lane.py);
        # off, the Flask view serves it, with the same answers.
        ASK_LANE=True,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=8 * 3600,
        # Rate limits per client address (Flask-Limiter syntax), counted for all workers of
        # the host in instance/ratelimits.db, or RATELIMIT_STORAGE_URI="redis://host:6379"
        # to share them between hosts.
        RATE_LIMIT_ASK="120 per minute",
        RATE_LIMIT_LOOKUP="20 per minute",
        # Tickets one address may open (escalations beyond it are answered, not queued).
        RATE_LIMIT_TICKETS="30 per hour",
        RATE_LIMIT_LOGIN="10 per minute",
        RATE_LIMIT_FEEDBACK="30 per minute",  # POST /api/feedback (有用 / 没用 on answers)
        RATE_LIMIT_EXEMPT_LOOPBACK=True,
        PROXY_COUNT=0,  # set to 1 behind one reverse proxy (nginx)
        TIME_ZONE="Asia/Shanghai",  # every time staff and citizens read (stored in UTC)
        PROMOTE_PUBLISHES_FOR_ADMINS=False,  # else a ticket promoted to the FAQ is a draft
        # E-mail to citizens who left an address (none while MAIL_SERVER is unset); also
        # MAIL_USERNAME, MAIL_PASSWORD, MAIL_USE_TLS (STARTTLS), MAIL_TIMEOUT, PUBLIC_URL.
        MAIL_SERVER=None,
        MAIL_PORT=25,
        MAIL_FROM="noreply@localhost",
    )
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
    else:
        app.config.update(test_config)
    # The environment wins over the config file, for the server and the CLI alike.
    if os.environ.get("INQUIRY_DB") and (test_config is None or "DATABASE" not in test_config):
        app.config["DATABASE"] = os.environ["INQUIRY_DB"]
    # PostgreSQL (postgresql://user@host/name) for several hosts sharing one database.
    if os.environ.get("INQUIRY_DATABASE_URL") and (test_config is None or "DATABASE" not in test_config):
        app.config["DATABASE"] = os.environ["INQUIRY_DATABASE_URL"]
    # Redis for what several hosts must share besides the database: rate limits and the
    # citizens' conversation contexts (service/session_store.py).
    if os.environ.get("INQUIRY_REDIS_URL") and (test_config is None or "REDIS_URL" not in test_config):
        app.config["REDIS_URL"] = os.environ["INQUIRY_REDIS_URL"]
    if app.config.get("REDIS_URL"):
        app.config.setdefault("RATELIMIT_STORAGE_URI", app.config["REDIS_URL"])
        app.config.setdefault("SESSION_STORE_URI", app.config["REDIS_URL"])
    if os.environ.get("INQUIRY_ASK_LOG_BATCH"):
        app.config["ASK_LOG_BATCH"] = int(os.environ["INQUIRY_ASK_LOG_BATCH"])
    for key in ("RATE_LIMIT_ASK", "RATE_LIMIT_LOOKUP", "RATE_LIMIT_LOGIN", "RATE_LIMIT_TICKETS", "RATELIMIT_STORAGE_URI"):
        if os.environ.get(f"INQUIRY_{key}") and (test_config is None or key not in test_config):
            app.config[key] = os.environ[f"INQUIRY_{key}"]
    if os.environ.get("INQUIRY_RATE_LIMIT_EXEMPT_LOOPBACK") and (
            test_config is None or "RATE_LIMIT_EXEMPT_LOOPBACK" not in test_config):
        app.config["RATE_LIMIT_EXEMPT_LOOPBACK"] = os.environ["INQUIRY_RATE_LIMIT_EXEMPT_LOOPBACK"] not in ("0", "false")
    # The index's thresholds (service/index_keeper.py, run.py): seconds, or 0/1 for INDEX_REFORK;
    # a worker's private memory budget in MB (service/worker_memory.py, 0 for none).
    for key in ("INDEX_BACKGROUND_AFTER", "INDEX_SNAPSHOT_AFTER", "INDEX_REFORK", "INDEX_REFORK_SETTLE",
                "INDEX_MIN_DOCUMENTS", "WORKER_MEMORY_MB", "WORKER_MEMORY_INTERVAL"):
        if os.environ.get(f"INQUIRY_{key}") and (test_config is None or key not in test_config):
            app.config[key] = float(os.environ[f"INQUIRY_{key}"])
    if os.environ.get("INQUIRY_PROXY_COUNT"):
        app.config["PROXY_COUNT"] = int(os.environ["INQUIRY_PROXY_COUNT"])
    from . import tickets
    from .session_store import RedisSessions

    tickets.use_session_store(RedisSessions(app.config["SESSION_STORE_URI"], tickets.FOLLOW_UP_WINDOW)
                              if app.config.get("SESSION_STORE_URI") else None)
    if str(app.config["DATABASE"]).startswith("postgres") and not app.config.get("REDIS_URL") \
            and not str(app.config.get("RATELIMIT_STORAGE_URI", "")).startswith("redis"):
        # Several hosts on one database would each count their own rate limits.
        app.logger.warning("INQUIRY_DATABASE_URL is set without INQUIRY_REDIS_URL: rate limits are counted "
                           "per host; set INQUIRY_REDIS_URL for hosts that share the database.")
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    if app.config.get("MAIL_SERVER") and not app.config.get("PUBLIC_URL"):
        # The mail's link would be built from the host a reviewer happened to use (an
        # intranet name, or whatever a proxy passed on), which citizens may not reach.
        app.logger.warning("MAIL_SERVER is set without PUBLIC_URL: e-mails link to the host of the "
                           "reviewer's request; set PUBLIC_URL to the address citizens use.")
    if not app.config.get("SECRET_KEY"):
        from .keys import load as load_keys

        # The current key signs and hashes; retired keys (after `rotate-secret`) still verify.
        app.config["SECRET_KEY"], app.config["SECRET_KEY_FALLBACKS"] = load_keys(Path(app.instance_path))

    from flask_wtf.csrf import CSRFProtect

    from . import cli, db, errors, security
    from .views import (citizen_chat as chat, public_faq, public_reports, staff_admin as admin,
                        staff_analytics, staff_annual, staff_auth as auth, staff_curate as curate,
                        staff_inbox, staff_review as review)

    from .views.ask_lane import AskLane

    # POST /api/ask ahead of Flask's request machinery (inside ProxyFix, which security adds).
    app.wsgi_app = AskLane(app, app.wsgi_app)  # type: ignore[method-assign]
    security.init_app(app)  # first, so rate limits apply before anything else is checked
    csrf = CSRFProtect(app)
    # Under the Flask CLI the database is prepared by the command, which may name another
    # one (--db): preparing the default here would silently create a second database.
    db.init_app(app, lazily=test_config is None and os.environ.get("FLASK_RUN_FROM_CLI") == "true")
    errors.init_app(app)
    from .tickets import display_code
    app.add_template_filter(display_code, "ticket_code")  # GK7Q-3M9X-A2RT on every page
    cli.init_app(app)
    auth.init_app(app)
    app.register_blueprint(chat.bp)
    csrf.exempt(chat.bp)  # the public JSON API uses no cookies, so it cannot be forged cross-site
    csrf.exempt(auth.login)  # checks its token itself, after the rate limit
    app.register_blueprint(auth.bp)
    app.register_blueprint(curate.bp)
    app.register_blueprint(review.bp)
    app.register_blueprint(review.apps_bp)  # disclosure applications, also for reviewers
    app.register_blueprint(public_reports.bp)
    app.register_blueprint(public_faq.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(staff_analytics.bp)
    app.register_blueprint(staff_inbox.bp)
    app.register_blueprint(staff_annual.bp)
    from .views import staff_remedies  # review and litigation cases, table 四 (issue 12)
    app.register_blueprint(staff_remedies.bp)
    from .views import staff_report  # the drafted annual report (issue 12)
    app.register_blueprint(staff_report.bp)
    atexit.register(_flush_log_at_exit, app.config["DATABASE"])

    @app.get("/healthz")
    def healthz():  # type: ignore[no-untyped-def]
        """Liveness for load balancers and monitoring: no database, no matching."""
        return "ok", 200, {"Content-Type": "text/plain; charset=utf-8"}

    if app.config.get("SHOW_WORKER_PID") or os.environ.get("INQUIRY_SHOW_WORKER_PID"):
        # Diagnostics for multi-process deployments: which worker answered.
        @app.after_request
        def tag_worker(response):  # type: ignore[no-untyped-def]
            response.headers["X-Worker-Pid"] = str(os.getpid())
            return response
    return app


def _flush_log_at_exit(path: str) -> None:
    """A worker that stops writes the analytics rows it still holds."""
    from .storage import Error, connect, exists
    from .tickets import ASK_LOG

    if ASK_LOG.pending and exists(path):
        try:
            db = connect(path)
        except Error:
            return  # the server went away first
        try:
            ASK_LOG.flush(db)
        except Error:
            pass  # the database went away first (a removed temporary copy): nothing to keep
        finally:
            db.close()
