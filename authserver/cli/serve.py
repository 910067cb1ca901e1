"""Running an instance: ``init`` (schema and signing keys), ``serve`` (gunicorn) and
``export-well-known`` (the discovery documents for static serving behind a proxy)."""

from __future__ import annotations

from pathlib import Path

import click

from authserver.cli._shared import CliError, emit, load_app, with_app

__all__ = ["init", "serve", "export_well_known"]


@click.command()
def init() -> None:
    """Create or upgrade the schema and create signing keys if none (idempotent)."""
    app = load_app()
    with app.app_context():
        from authserver.services import admin_console

        try:
            emit(admin_console.init_instance())
        except admin_console.AdminError as exc:
            raise CliError(str(exc)) from None


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="The address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int,
              help="The port to listen on.")
@click.option("--workers", default=2, show_default=True, type=int,
              help="gunicorn worker processes.")
def serve(host: str, port: int, workers: int) -> None:
    """Run the production server (gunicorn)."""
    app = load_app()  # fail fast on configuration errors, before forking workers
    with app.app_context():
        from authserver.services import admin_console

        try:
            admin_console.init_instance()
        except admin_console.AdminError as exc:
            raise CliError(str(exc)) from None
    from authserver.serving import run_gunicorn

    run_gunicorn("authserver.wsgi:app", host, port, workers)


@click.command("export-well-known")
@click.argument("directory", type=click.Path(file_okay=False), default=".well-known")
@with_app
def export_well_known(directory: str) -> None:
    """Write the discovery documents for static serving behind a proxy."""
    from authserver.services import admin_console

    emit(admin_console.export_well_known(Path(directory)))
