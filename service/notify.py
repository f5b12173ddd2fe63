"""E-mail to citizens whose question has been answered (no Flask).

When a ticket is answered or an application closed, a citizen who left an e-mail address
gets a short message: the ticket code, that a reply is ready, and where to read it. The
message carries nothing else: no password (the citizen has it; the desk keeps only a
hash), no name, no phone number, not the question or the reply.

Each message is written to ``mail_outbox`` in the reviewer's transaction and sent after
it; a mail server that is down or refuses never fails the reviewer's action: the row
keeps the error, and :func:`send_pending` tries it again after the next message that
goes through (at most :data:`MAX_ATTEMPTS` times).
"""
from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Iterable, Mapping

import sqlite_utils

from .knowledge import now
from .storage import immediate
from .tickets import display_code, group_emails

MAX_ATTEMPTS = 5  # after this many refusals a message is left for an operator to look at
SUBJECT = "您在{product}的提问已有答复（工单编号 {code}）"
BODY = """您好：

您在{product}提交的问题（工单编号 {code}）已有答复。

请打开 {url}，输入工单编号和您提问时获得的查询密码查看答复。为保护您的信息，本邮件不包含答复内容和查询密码。

如果您没有在{product}提问，请忽略本邮件。本邮件由系统自动发送，请勿直接回复。

{agency}
"""


@dataclass(frozen=True)
class MailSettings:
    """Where and how to send: from the app's config (see :func:`settings_from`)."""

    server: str
    port: int = 25
    sender: str = "noreply@localhost"
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout: float = 10.0


def settings_from(config: Mapping[str, Any]) -> MailSettings | None:
    """The SMTP settings of a config mapping, or None when ``MAIL_SERVER`` is unset (no mail)."""
    server = config.get("MAIL_SERVER")
    if not server:
        return None
    try:
        port = int(config.get("MAIL_PORT") or 25)
        timeout = float(config.get("MAIL_TIMEOUT") or 10)
    except (TypeError, ValueError):
        port, timeout = 25, 10.0
    return MailSettings(server=str(server), port=port, sender=str(config.get("MAIL_FROM") or "noreply@localhost"),
                        username=config.get("MAIL_USERNAME") or None, password=config.get("MAIL_PASSWORD") or None,
                        starttls=bool(config.get("MAIL_USE_TLS")), timeout=timeout)


def compose(code: str, url: str, product: str = "政务公开智能问答", agency: str = "") -> tuple[str, str]:
    """The subject and body telling the owner of ticket ``code`` that a reply is ready at ``url``."""
    shown = display_code(code)
    fields = {"code": shown, "url": url, "product": product, "agency": agency}
    return SUBJECT.format(**fields), BODY.format(**fields).rstrip() + "\n"


def queue_answered(db: sqlite_utils.Database, ticket_ids: Iterable[int], url: str, *, product: str = "政务公开智能问答",
                   agency: str = "") -> list[int]:
    """Write a message for each of these tickets whose citizen left an e-mail address;
    return the outbox ids. Call inside the transaction that answered them."""
    ids = []
    for ticket_id, code, email in group_emails(db, ticket_ids):
        subject, body = compose(code, url, product, agency)
        ids.append(int(db["mail_outbox"].insert({
            "ticket_id": ticket_id, "recipient": email, "subject": subject, "body": body, "created": now(),
            "attempts": 0}).last_pk))
    return ids


def message(row: Mapping[str, Any], sender: str) -> EmailMessage:
    """The e-mail of one outbox row."""
    msg = EmailMessage()
    msg["Subject"] = row["subject"]
    msg["From"] = Address(addr_spec=sender) if "@" in sender else sender
    msg["To"] = row["recipient"]
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    msg.set_content(row["body"], charset="utf-8")
    return msg


def _deliver(settings: MailSettings, messages: list[EmailMessage]) -> None:
    with smtplib.SMTP(settings.server, settings.port, timeout=settings.timeout) as smtp:
        if settings.starttls:
            smtp.starttls(context=ssl.create_default_context())
        if settings.username and settings.password:
            smtp.login(settings.username, settings.password)
        for msg in messages:
            smtp.send_message(msg)


def send_pending(db: sqlite_utils.Database, settings: MailSettings | None, ids: Iterable[int] | None = None) -> dict[str, int]:
    """Send the unsent messages (only ``ids`` when given); return ``{"sent", "failed"}``.

    A failure (server down, refused, bad address) is recorded on the row, never raised.
    """
    if settings is None:
        return {"sent": 0, "failed": 0}
    where, params = "sent_at is null and attempts < ?", [MAX_ATTEMPTS]
    wanted = list(ids) if ids is not None else None
    if wanted is not None:
        if not wanted:
            return {"sent": 0, "failed": 0}
        where += f" and id in ({', '.join('?' * len(wanted))})"
        params += wanted
    rows = [dict(r) for r in db.query(f"select * from mail_outbox where {where} order by id", params)]
    sent = failed = 0
    for row in rows:  # one connection per message: one bad address does not stop the others
        try:
            _deliver(settings, [message(row, settings.sender)])
        except (OSError, smtplib.SMTPException, ValueError) as exc:
            failed += 1
            with immediate(db):
                db.execute("update mail_outbox set attempts = attempts + 1, error = ? where id = ?",
                           [f"{type(exc).__name__}: {exc}"[:500], row["id"]])
        else:
            sent += 1
            with immediate(db):
                db.execute("update mail_outbox set attempts = attempts + 1, sent_at = ?, error = null where id = ?",
                           [now(), row["id"]])
    return {"sent": sent, "failed": failed}
