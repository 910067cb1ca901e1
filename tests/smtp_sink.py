"""A real SMTP server for tests (aiosmtpd on 127.0.0.1, an ephemeral port) that keeps every
message, and what the password tests share about mail: the messages the server sent.

The server under test sends password mail from a thread of its own
(:mod:`authserver.services.mail`); :func:`delivered` waits for those threads, so a test
asserts what arrived, and what did not, without sleeping.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import Iterator
from contextlib import contextmanager

from aiosmtpd.controller import Controller


class Inbox:
    """An aiosmtpd handler that keeps every message; ``delay`` seconds before accepting one
    makes a slow mail server."""

    def __init__(self, delay: float = 0.0) -> None:
        self.envelopes: list = []
        self.delay = delay
        self.port = 0

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def messages(self) -> list[email.message.EmailMessage]:
        return [email.message_from_bytes(e.content, policy=email.policy.default)
                for e in self.envelopes]


class _Controller(Controller):
    """aiosmtpd on port 0: its readiness probe connects to ``self.port``, so learn the port
    the OS chose first."""

    def _trigger_server(self) -> None:
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@contextmanager
def smtp_server(delay: float = 0.0) -> Iterator[Inbox]:
    box = Inbox(delay)
    ctl = _Controller(box, hostname="127.0.0.1", port=0)
    ctl.start()
    box.port = ctl.port
    try:
        yield box
    finally:
        ctl.stop()


def smtp_config(inbox: Inbox) -> dict:
    """The app's settings to mail through ``inbox``."""
    return {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": inbox.port,
            "SMTP_FROM": "noreply@authserver.test"}


def delivered(inbox: Inbox) -> list[email.message.EmailMessage]:
    """Every message in ``inbox`` once the server's pending mail is delivered."""
    from authserver.services import mail

    assert mail.drain(), "mail still under way"
    return inbox.messages()
