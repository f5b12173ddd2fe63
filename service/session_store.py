"""Where a citizen's conversation context waits between questions (no Flask).

The context is the last figures or entry a session asked about, for follow-ups (那2020年呢).
By default it is a row of ``session_context`` in the service's database, which every host
shares when the database is PostgreSQL. With Redis configured (``SESSION_STORE_URI`` or
``INQUIRY_REDIS_URL``) it is a Redis key that expires with the follow-up window: shared
by every host, and no database write per answered question.
"""
from __future__ import annotations

from datetime import timedelta


class RedisSessions:
    """Conversation contexts in Redis, each expiring ``window`` after its last answer."""

    PREFIX = "inquiry:session:"

    def __init__(self, url: str, window: timedelta) -> None:
        import redis  # the "redis" extra: only hosts that configure it need it

        self.url = url
        self.window = int(window.total_seconds())
        self.client = redis.Redis.from_url(url, socket_timeout=2)

    def remember(self, session: str, ref: str) -> None:
        """Keep the context of a session's last answer."""
        self.client.set(self.PREFIX + session, ref.encode("utf-8"), ex=self.window)

    def recall(self, session: str) -> str | None:
        """The context a session's last answer left within the window, if any."""
        value = self.client.get(self.PREFIX + session)
        return value.decode("utf-8") if isinstance(value, bytes) else None
