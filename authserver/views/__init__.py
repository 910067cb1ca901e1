"""Blueprints: parse -> call -> respond. No db.session, no crypto, no scope parsing here."""

from __future__ import annotations

from flask import Flask

__all__ = ["init_app"]


def init_app(app: Flask) -> None:
    from authserver.views import authorize, enrol, health, login, picker, token, wellknown

    for module in (wellknown, health, authorize, login, enrol, picker, token):
        app.register_blueprint(module.bp)
