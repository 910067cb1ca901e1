"""What every ``authserver`` command shares: the one-line error, the app it runs against,
the one JSON object it prints, and the decorator that runs a command inside the app.

The instance: ``AUTHSERVER_INSTANCE_PATH``, else ``./instance`` in the current folder. A
command run through :func:`with_app` (all but ``init``, ``serve`` and ``demo``, which make
an instance on purpose) refuses when that variable is unset and ``./instance`` does not
exist, unless ``AUTHSERVER_DATABASE_URL``, ``AUTHSERVER_SECRET_KEY`` and
``AUTHSERVER_KEY_ENCRYPTION_KEY`` are all set (then no instance folder is needed and none is
made): otherwise it would make a fresh, empty instance (a new database, new secrets) in
whatever folder it was started from."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["CliError", "load_app", "emit", "with_app", "check_instance"]


class CliError(click.ClickException):
    def show(self, file: Any = None) -> None:  # one line, no "Error:" decoration noise
        click.echo(f"error: {self.format_message()}", err=True)


def load_app() -> Flask:
    """The application, or a :class:`CliError` naming the configuration at fault."""
    from authserver.app import create_app
    from authserver.config import ConfigError

    try:
        return create_app()
    except ConfigError as exc:
        raise CliError(str(exc)) from None


#: Set in the environment, these leave nothing for an instance folder to hold.
_INSTANCE_FREE = ("AUTHSERVER_DATABASE_URL", "AUTHSERVER_SECRET_KEY",
                  "AUTHSERVER_KEY_ENCRYPTION_KEY")


def check_instance() -> None:
    """Refuse, naming the path, to make a fresh instance by accident (see the module)."""
    if os.environ.get("AUTHSERVER_INSTANCE_PATH") or all(
            os.environ.get(name) for name in _INSTANCE_FREE):
        return
    from authserver.config import DEFAULTS

    path = Path(DEFAULTS["INSTANCE_PATH"]).expanduser().resolve()
    if not path.is_dir():
        raise CliError(f"no instance at {path} (AUTHSERVER_INSTANCE_PATH is unset, so "
                       "./instance is used): run 'authserver init' here first, or set "
                       "AUTHSERVER_INSTANCE_PATH to your instance folder")


def emit(obj: Any) -> None:
    """Print ``obj`` as one JSON object on one line."""
    click.echo(json.dumps(obj, indent=None, sort_keys=False))


def with_app(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``fn`` inside an app context with the schema up to date."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        check_instance()
        app = load_app()
        with app.app_context():
            from authserver.services import admin_console

            try:
                admin_console.check_database()
                return fn(*args, **kwargs)
            except admin_console.AdminError as exc:
                raise CliError(str(exc)) from None

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper
