"""The audit log: one row per security-relevant event, never a secret value."""

from __future__ import annotations

from typing import Any

from flask import Flask, has_request_context, request

from authserver import clock, store

__all__ = ["record", "init_app"]

#: Detail keys that must never reach the audit log.
_FORBIDDEN = {"password", "code", "token", "access_token", "refresh_token", "client_secret",
              "client_assertion", "totp", "secret"}


def record(
    event: str, *, user_id: int | None = None, client_id: str | None = None, **detail: Any
) -> None:
    """Add an audit row to the current unit of work (:func:`authserver.store.transaction`)."""
    clean = {k: v for k, v in detail.items() if k not in _FORBIDDEN}
    ip = request.remote_addr if has_request_context() else None
    store.audit.add_event(at=clock.now(), event=event, user_id=user_id,
                          client_id=client_id, ip=ip, detail=clean)


def init_app(app: Flask) -> None:  # symmetry with the other features
    return None
