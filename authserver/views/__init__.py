"""Blueprints: parse -> call -> respond. No persistence, no crypto, no scope parsing here.

:data:`BLUEPRINTS` lists them by area; :func:`init_app` registers them in that order (no two
blueprints' routes overlap, so the order is only for reading)."""

from __future__ import annotations

from flask import Blueprint, Flask

from authserver.views import (
    account,
    account_two_step,
    authorize,
    enrol,
    health,
    introspect,
    invite,
    launch,
    login,
    password,
    picker,
    portal,
    register,
    revoke,
    site,
    style,
    token,
    userinfo,
    wellknown,
)

__all__ = ["BLUEPRINTS", "init_app"]

BLUEPRINTS: tuple[Blueprint, ...] = (
    # api: what apps and resource servers call
    token.bp, introspect.bp, revoke.bp, userinfo.bp, register.bp, launch.bp,
    # interaction: the browser's way through /authorize
    authorize.bp, picker.bp, login.bp, enrol.bp,
    # account: a signed-in person's connected apps, two-step sign-in; passwords (change,
    # forgotten)
    account.bp, account_two_step.bp, password.bp,
    # admin: the developer and admin consoles, invitations
    portal.bp, invite.bp,
    # discovery: what anyone may read (and the root, the favicon)
    wellknown.bp, style.bp, health.bp, site.bp,
)


def init_app(app: Flask) -> None:
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
