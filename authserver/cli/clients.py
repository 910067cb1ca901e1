"""The callers of the server: ``authserver client`` (apps and their administrator-only
permissions), ``authserver resource-server`` (callers of /introspect) and
``authserver registration-token`` (initial access tokens for POST /register,
RFC 7591 §3: https://www.rfc-editor.org/rfc/rfc7591#section-3)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from authserver.cli._shared import CliError, emit, with_app
from authserver.smart.client_types import AuthMethod, GrantType

__all__ = ["client", "resource_server", "registration_token"]


@click.group()
def client() -> None:
    """Manage client applications."""


@client.command("create")
@click.option("--name", required=True)
@click.option("--redirect-uri", "redirect_uris", multiple=True)
@click.option("--scope", default="")
@click.option("--auth-method", default=None,
              type=click.Choice([m.value for m in AuthMethod]))
@click.option("--jwks-file", type=click.Path(dir_okay=False), default=None)
@click.option("--jwks-uri", default=None)
@click.option("--grant-type", "grant_types", multiple=True,
              type=click.Choice([g.value for g in GrantType]))
@click.option("--launch-uri", "launch_uris", multiple=True)
@click.option("--can-launch", is_flag=True, help="May create EHR launch contexts (POST /launch).")
@click.option("--can-introspect", is_flag=True,
              help="May introspect other clients' tokens (POST /introspect).")
@with_app
def client_create(name: str, redirect_uris: tuple[str, ...], scope: str, auth_method: str | None,
                  jwks_file: str | None, jwks_uri: str | None, grant_types: tuple[str, ...],
                  launch_uris: tuple[str, ...], can_launch: bool, can_introspect: bool) -> None:
    """Register a client."""
    from authserver.services import admin_console

    jwks = None
    if jwks_file:
        try:
            jwks = json.loads(Path(jwks_file).read_text())
        except (OSError, ValueError) as exc:
            raise CliError(
                f"--jwks-file: cannot read a JSON JWK Set ({exc.__class__.__name__})") from None
    emit(admin_console.create_client(name=name, redirect_uris=list(redirect_uris), scope=scope,
                             auth_method=auth_method, jwks=jwks, jwks_uri=jwks_uri,
                             grant_types=list(grant_types), launch_uris=list(launch_uris),
                             can_launch=can_launch, can_introspect=can_introspect))


@client.command("permissions")
@click.argument("client_id")
@click.option("--introspect/--no-introspect", "introspect", default=None,
              help="Give or take the permission to introspect other clients' tokens.")
@click.option("--pre-approved/--no-pre-approved", "pre_approved", default=None,
              help="Clinicians' EHR launches of the app skip the consent page (or not).")
@with_app
def client_permissions(client_id: str, introspect: bool | None,
                       pre_approved: bool | None) -> None:
    """Change an app's administrator-only permissions."""
    from authserver.services import admin_console

    if introspect is None and pre_approved is None:
        raise CliError("name --introspect/--no-introspect or --pre-approved/--no-pre-approved")
    out: dict[str, Any] = {}
    if introspect is not None:
        out.update(admin_console.set_client_introspect(client_id, introspect))
    if pre_approved is not None:
        out.update(admin_console.set_client_pre_approved(client_id, pre_approved))
    emit(out)


@click.group("resource-server")
def resource_server() -> None:
    """Manage resource servers (callers of /introspect)."""


@resource_server.command("create")
@click.option("--name", required=True)
@with_app
def resource_server_create(name: str) -> None:
    """Create credentials for a resource server."""
    from authserver.services import admin_console

    emit(admin_console.create_resource_server(name))


@click.group("registration-token")
def registration_token() -> None:
    """Initial access tokens for POST /register (RFC 7591 §3)."""


@registration_token.command("create")
@click.option("--uses", default=1, show_default=True, type=int,
              help="How many registrations the token allows.")
@click.option("--lifetime", default=None, type=int,
              help="Seconds until it expires [default: one day].")
@click.option("--note", default=None, help="What it is for (kept with it, never the token).")
@with_app
def registration_token_create(uses: int, lifetime: int | None, note: str | None) -> None:
    """Issue an initial access token (printed once; stored as its SHA-256)."""
    from authserver.services import admin_console

    emit(admin_console.create_registration_token(
        uses=uses, note=note,
        lifetime=admin_console.REGISTRATION_TOKEN_LIFETIME if lifetime is None else lifetime))


@registration_token.command("revoke")
@click.argument("token_id", type=int)
@with_app
def registration_token_revoke(token_id: int) -> None:
    """Revoke an initial access token by the id `create` printed."""
    from authserver.services import admin_console

    emit(admin_console.revoke_registration_token(token_id))
