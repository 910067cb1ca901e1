"""Mail that must not hold up, nor reveal anything through, the request that causes it: the
forgotten-password link and the "your password was changed" notices.

A message is built in the request (:func:`message`) and handed to a short-lived thread
(:func:`send_later`), so the answer takes the same time whether or not a message goes out
(the forgotten-password page answers alike for every username) and a mail server that is
slow or down never fails a change that is already saved. A message that cannot be delivered
is logged by the exception's class name only: a server's reply may quote the message, which
can hold a link. Plain text (RFC 5322) over SMTP (RFC 5321), STARTTLS (RFC 3207) when
AUTHSERVER_SMTP_STARTTLS=1; ``Auto-Submitted: auto-generated`` (RFC 3834 §5).

Subject and body are in the language of the request that causes the message (the page's,
:mod:`authserver.i18n`). Invitations (:mod:`authserver.services.accounts`) send in the
request instead: the admin who sends one is told at once whether the mail server took it.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from flask import current_app

__all__ = ["configured", "message", "send_later", "send_now", "NotSent", "drain",
           "MAIL_TIMEOUT"]

log = logging.getLogger(__name__)

#: Seconds to wait for the mail server on connect and on every reply.
MAIL_TIMEOUT = 10

_pending: set[threading.Thread] = set()
_lock = threading.Lock()


def configured() -> bool:
    """Whether mail can be sent at all (AUTHSERVER_SMTP_HOST is set)."""
    return bool(current_app.config["SMTP_HOST"])


def message(to: str, subject: str, lines: list[str], at: int) -> EmailMessage | None:
    """A plain-text message from AUTHSERVER_SMTP_FROM, or None (logged) when a header
    cannot be made (a sender or recipient with a line break)."""
    sender = str(current_app.config["SMTP_FROM"])
    msg = EmailMessage()
    try:
        msg["Subject"] = subject
        msg["From"] = sender
        msg["To"] = to
        msg["Date"] = format_datetime(datetime.fromtimestamp(at, UTC))
        # make_msgid's default domain is socket.getfqdn(), which may wait on DNS.
        msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "localhost")
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834 §5
    except ValueError:
        # Not the subject: it is in the reader's language, and a log line is not.
        log.warning("an e-mail was not built: AUTHSERVER_SMTP_FROM or the address is not "
                    "usable")
        return None
    msg.set_content("\n".join(lines) + "\n")
    return msg


def send_later(msg: EmailMessage | None, what: str) -> None:
    """Deliver ``msg`` from a thread of its own (``what`` names it in a log line); returns
    at once. Nothing is raised: a failure is logged without the message's content."""
    if msg is None or not configured():
        return
    settings = _settings()
    thread = threading.Thread(target=_deliver, args=(settings, msg, what), daemon=True,
                              name=f"authserver-mail-{what}")
    with _lock:
        _pending.add(thread)
    thread.start()


class NotSent(Exception):
    """The mail server did not take the message; ``str()`` names the exception's class
    only (a server's reply may quote the message, which can hold a link)."""


def send_now(msg: EmailMessage | None) -> None:
    """Deliver ``msg`` before returning (the command line, which must say whether it went
    out); raises :class:`NotSent` when mail is off, the message could not be built or the
    server refused it (not logged: the caller says it)."""
    if msg is None or not configured():
        raise NotSent("mail is not configured" if msg is not None else "not built")
    try:
        _smtp(_settings(), msg)
    except (smtplib.SMTPException, OSError) as exc:
        raise NotSent(exc.__class__.__name__) from None


def _settings() -> dict[str, Any]:
    conf = current_app.config
    return {"host": str(conf["SMTP_HOST"]), "port": int(conf["SMTP_PORT"]),
            "starttls": bool(conf["SMTP_STARTTLS"]),
            "username": str(conf["SMTP_USERNAME"] or ""),
            "password": str(conf["SMTP_PASSWORD"] or "")}


def _smtp(settings: dict[str, Any], msg: EmailMessage) -> None:
    with smtplib.SMTP(settings["host"], settings["port"], timeout=MAIL_TIMEOUT) as smtp:
        if settings["starttls"]:
            smtp.starttls(context=ssl.create_default_context())
        if settings["username"]:
            smtp.login(settings["username"], settings["password"])
        smtp.send_message(msg)


def _deliver(settings: dict[str, Any], msg: EmailMessage, what: str) -> None:
    try:
        _smtp(settings, msg)
    except Exception as exc:  # a thread of its own: nothing above it to handle this
        log.warning("%s e-mail not sent via %s:%s: %s", what, settings["host"],
                    settings["port"], exc.__class__.__name__)
    finally:
        with _lock:
            _pending.discard(threading.current_thread())


def drain(timeout: float = MAIL_TIMEOUT + 5) -> bool:
    """Wait until every message handed to :func:`send_later` so far is delivered or given
    up; False when some are still under way after ``timeout`` seconds (tests, shutdown)."""
    with _lock:
        threads = list(_pending)
    end = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, end - time.monotonic()))
    with _lock:
        return not (_pending & set(threads))
