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
    """Manage client applications.

    \b
    Examples:
      authserver client create --name "My app" --redirect-uri https://app.example/cb \\
          --scope "openid fhirUser launch/patient patient/*.rs"
      authserver client list --kind app --limit 20
      authserver client rotate-secret CLIENT_ID --grace 3600   # the old one lasts an hour
      authserver client disable CLIENT_ID
    """


@client.command("create")
@click.option("--name", required=True, help="The app's name, as the consent page shows it.")
@click.option("--redirect-uri", "redirect_uris", multiple=True,
              help="A redirect URI (https, or http on loopback); repeat for more.")
@click.option("--scope", default="", show_default=True,
              help="The scopes the app may ask for, space-separated (empty: none at all, "
                   "so every request it makes is refused).")
@click.option("--auth-method", default=None,
              type=click.Choice([m.value for m in AuthMethod]),
              help="How the app authenticates at /token  [default: private_key_jwt with "
                   "keys, client_secret_basic for client_credentials, else none]")
@click.option("--jwks-file", type=click.Path(dir_okay=False), default=None,
              help="A JSON JWK Set file of the app's public keys (private_key_jwt).")
@click.option("--jwks-uri", default=None,
              help="An https URL of the app's JWK Set (private_key_jwt).")
@click.option("--grant-type", "grant_types", multiple=True,
              type=click.Choice([g.value for g in GrantType]),
              help="A grant the app uses; repeat for more  [default: authorization_code "
                   "and refresh_token]")
@click.option("--launch-uri", "launch_uris", multiple=True,
              help="The app's EHR launch URL; repeat for more.")
@click.option("--can-launch", is_flag=True, help="May create EHR launch contexts (POST /launch).")
@click.option("--can-introspect", is_flag=True,
              help="May introspect other clients' tokens (POST /introspect).")
@with_app
def client_create(name: str, redirect_uris: tuple[str, ...], scope: str, auth_method: str | None,
                  jwks_file: str | None, jwks_uri: str | None, grant_types: tuple[str, ...],
                  launch_uris: tuple[str, ...], can_launch: bool, can_introspect: bool) -> None:
    """Register a client (prints its secret once, where it has one)."""
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


@client.command("list")
@click.option("--kind", default=None, type=click.Choice(["app", "resource_server"]),
              help="Only apps, or only resource servers  [default: both]")
@click.option("--limit", default=50, show_default=True, type=int,
              help="Clients per page (at most 500).")
@click.option("--after", default=None, type=int,
              help='The "next" id a previous page printed: list the clients after it.')
@with_app
def client_list(kind: str | None, limit: int, after: int | None) -> None:
    """List clients by id: {"clients": [...], "next": id or null}."""
    from authserver.services import client_admin

    emit(client_admin.list_clients(kind=kind, limit=limit, after=after))


@client.command("show")
@click.argument("client_id")
@with_app
def client_show(client_id: str) -> None:
    """One client's registration, permissions and state (never its secret)."""
    from authserver.services import client_admin

    emit(client_admin.show_client(client_id))


@client.command("disable")
@click.argument("client_id")
@with_app
def client_disable(client_id: str) -> None:
    """Disable a client: every grant it holds is revoked, its tokens stop at once."""
    from authserver.services import client_admin

    emit(client_admin.set_enabled(client_id, False))


@client.command("enable")
@click.argument("client_id")
@with_app
def client_enable(client_id: str) -> None:
    """Enable (and so approve) a client."""
    from authserver.services import client_admin

    emit(client_admin.set_enabled(client_id, True))


@client.command("rotate-secret")
@click.argument("client_id")
@click.option("--grace", default=0, show_default=True, type=int,
              help="Seconds the old secret keeps working (0: it stops at once; at most "
                   "30 days).")
@with_app
def client_rotate_secret(client_id: str, grace: int) -> None:
    """Give a client a new secret (printed once)."""
    from authserver.services import client_admin

    emit(client_admin.rotate_secret(client_id, grace))


@client.command("delete")
@click.argument("client_id")
@with_app
def client_delete(client_id: str) -> None:
    """Delete a client: every grant, token and consent of it is revoked first."""
    from authserver.services import client_admin

    emit(client_admin.delete_client(client_id))


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
    """Manage resource servers (callers of /introspect).

    \b
    Example:
      authserver resource-server create --name "FHIR server"
    """


@resource_server.command("create")
@click.option("--name", required=True, help="The resource server's name.")
@with_app
def resource_server_create(name: str) -> None:
    """Create credentials for a resource server."""
    from authserver.services import admin_console

    emit(admin_console.create_resource_server(name))


@click.group("registration-token")
def registration_token() -> None:
    """Initial access tokens for POST /register (RFC 7591 §3).

    \b
    Example:
      authserver registration-token create --uses 5 --lifetime 86400 --note "partner X"
    """


@registration_token.command("create")
@click.option("--uses", default=1, show_default=True, type=int,
              help="How many registrations the token allows.")
@click.option("--lifetime", default=86400, show_default=True, type=int,
              help="Seconds until it expires (60 to 90 days).")
@click.option("--note", default=None, help="What it is for (kept with it, never the token).")
@with_app
def registration_token_create(uses: int, lifetime: int, note: str | None) -> None:
    """Issue an initial access token (printed once; stored as its SHA-256)."""
    from authserver.services import admin_console

    emit(admin_console.create_registration_token(
        uses=uses, note=note, lifetime=lifetime))


@registration_token.command("revoke")
@click.argument("token_id", type=int)
@with_app
def registration_token_revoke(token_id: int) -> None:
    """Revoke an initial access token by the id `create` printed."""
    from authserver.services import admin_console

    emit(admin_console.revoke_registration_token(token_id))
