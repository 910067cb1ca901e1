"""What every ``authserver`` command shares: the one-line error, the app it runs against,
the one JSON object it prints, and the decorator that runs a command inside the app."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["CliError", "load_app", "emit", "with_app"]


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


def emit(obj: Any) -> None:
    """Print ``obj`` as one JSON object on one line."""
    click.echo(json.dumps(obj, indent=None, sort_keys=False))


def with_app(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``fn`` inside an app context with the schema up to date."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
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
