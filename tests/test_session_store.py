"""Conversation contexts in Redis (INQUIRY_REDIS_URL), as several hosts share them."""
from __future__ import annotations

from conftest import make_app
from service import tickets
from service.storage import connect


def test_follow_ups_read_their_context_from_redis_and_write_none_to_the_database(tmp_path, redis_url) -> None:
    app = make_app(tmp_path, REDIS_URL=redis_url)
    try:
        client = app.test_client()

        def ask(question: str, session: str) -> str:
            return client.post("/api/ask", json={"question": question, "session": session}).get_json()["answer"]

        assert "152" in ask("2021年收到多少申请", "redis-follow")
        assert "103" in ask("那予以公开的呢", "redis-follow")
        assert "103" not in ask("那予以公开的呢", "someone-else")
        # Another app on the same Redis (another host) continues the conversation.
        assert "152" in ask("2021年收到多少申请", "across-hosts")
        other = make_app(tmp_path / "other", REDIS_URL=redis_url).test_client()
        reply = other.post("/api/ask", json={"question": "那予以公开的呢", "session": "across-hosts"}).get_json()
        assert "103" in reply["answer"], reply
        db = connect(app.config["DATABASE"])
        try:
            assert db.execute("select count(*) from session_context").fetchone()[0] == 0
        finally:
            db.close()
        assert app.config["RATELIMIT_STORAGE_URI"] == redis_url  # rate limits share it too
    finally:
        tickets.use_session_store(None)  # the next app in this process keeps them in its database
