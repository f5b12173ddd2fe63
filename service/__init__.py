"""政务公开智能问答: the inquiry desk for government information disclosure."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from flask import Flask

ROOT = Path(__file__).resolve().parent.parent


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the Flask app: config, database (migrated and seeded), blueprints."""
    app = Flask(__name__, instance_relative_config=True, static_folder=str(ROOT / "static"))
    app.config.from_mapping(
        DATABASE=os.path.join(app.instance_path, "inquiry.db"),
        KNOWLEDGE_DIR=str(ROOT / "knowledge"),
        HOME_AGENCY="国家统计局",
        PRODUCT_NAME="政务公开智能问答",
        ANSWER_THRESHOLD=0.55,
        CLARIFY_THRESHOLD=0.45,
        CLARIFY_MARGIN=0.03,
        MAX_QUESTION_CHARS=500,
        MAX_CONTENT_LENGTH=16 * 1024,
    )
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
    else:
        app.config.update(test_config)
    # The environment wins over the config file, for the server and the CLI alike.
    if os.environ.get("INQUIRY_DB") and (test_config is None or "DATABASE" not in test_config):
        app.config["DATABASE"] = os.environ["INQUIRY_DB"]
    app.json.ensure_ascii = False  # type: ignore[attr-defined]

    from . import chat, cli, db, errors

    db.init_app(app)
    errors.init_app(app)
    cli.init_app(app)
    app.register_blueprint(chat.bp)
    return app
