"""``authserver user``: create users and enrol their TOTP."""

from __future__ import annotations

import sys

import click

from authserver.cli._shared import emit, with_app
from authserver.smart.roles import Role

__all__ = ["user"]


@click.group()
def user() -> None:
    """Manage users."""


@user.command("create")
@click.argument("username")
@click.option("--role", required=True,
              type=click.Choice([r.value for r in Role]))
@click.option("--password", default=None)
@click.option("--password-stdin", is_flag=True)
@click.option("--fhir-user", default=None)
@click.option("--name", default=None)
@click.option("--email", default=None)
@with_app
def user_create(username: str, role: str, password: str | None, password_stdin: bool,
                fhir_user: str | None, name: str | None, email: str | None) -> None:
    """Create a user."""
    from authserver.services import accounts

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    emit(accounts.create_user(username, role, password=password, fhir_user=fhir_user,
                           name=name, email=email))


@user.command("totp")
@click.argument("username")
@with_app
def user_totp(username: str) -> None:
    """Enrol TOTP for a user (prints the secret and otpauth URI once)."""
    from authserver.services import accounts

    emit(accounts.enrol_totp(username))
