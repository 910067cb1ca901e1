"""Blueprints: parse -> call -> respond. No persistence, no crypto, no scope parsing here."""

from __future__ import annotations

from flask import Flask

__all__ = ["init_app"]


def init_app(app: Flask) -> None:
    from authserver.views import authorize, enrol, health, login, picker, token, wellknown

    for module in (wellknown, health, authorize, login, enrol, picker, token):
        app.register_blueprint(module.bp)

    from authserver.views import portal, register

    app.register_blueprint(register.bp)
    app.register_blueprint(portal.bp)  # /developer, /admin
    from authserver.views import launch, style

    for module in (launch, style):  # issue 4: POST /launch, GET /smart-style.json
        app.register_blueprint(module.bp)
    from authserver.views import account, introspect, revoke, userinfo

    for module in (introspect, revoke, userinfo, account):  # issue 6: token lifecycle
        app.register_blueprint(module.bp)
    from authserver.views import invite

    app.register_blueprint(invite.bp)  # /invite/<token>, POST /admin/invite
