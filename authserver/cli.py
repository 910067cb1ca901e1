"""The ``authserver`` command. Every create/add command prints one JSON object on stdout;
errors are one line on stderr and a non-zero exit."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from authserver.models.users import Role

__all__ = ["main", "cli"]


class CliError(click.ClickException):
    def show(self, file: Any = None) -> None:  # one line, no "Error:" decoration noise
        click.echo(f"error: {self.format_message()}", err=True)


def _app():
    from authserver.app import create_app
    from authserver.config import ConfigError

    try:
        return create_app()
    except ConfigError as exc:
        raise CliError(str(exc)) from None


def _emit(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=None, sort_keys=False))


def _with_app(fn):
    """Run ``fn`` inside an app context with the schema up to date."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        app = _app()
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


@click.group()
@click.version_option(package_name="smart-authserver")
def cli() -> None:
    """SMART-on-FHIR authorization server."""


@cli.command()
def init() -> None:
    """Create or upgrade the schema and create signing keys if none (idempotent)."""
    app = _app()
    with app.app_context():
        from authserver.services import admin_console

        try:
            _emit(admin_console.init_instance())
        except admin_console.AdminError as exc:
            raise CliError(str(exc)) from None


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int)
def serve(host: str, port: int, workers: int) -> None:
    """Run the production server (gunicorn)."""
    app = _app()  # fail fast on configuration errors, before forking workers
    with app.app_context():
        from authserver.services import admin_console

        try:
            admin_console.init_instance()
        except admin_console.AdminError as exc:
            raise CliError(str(exc)) from None
    from authserver.serving import run_gunicorn

    run_gunicorn("authserver.wsgi:app", host, port, workers)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def demo(host: str, port: int) -> None:
    """init + seed demo users, apps and patients + serve (with the demo FHIR server)."""
    from authserver.demo.runner import run_demo

    app = _app()
    run_demo(app, host, port)


@cli.command("fhir-demo")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8001, show_default=True, type=int)
@click.option("--issuer", envvar="AUTHSERVER_ISSUER", default="http://127.0.0.1:8000",
              show_default=True, help="The authorization server whose tokens are accepted.")
@click.option("--fhir-base", default=None,
              help="This server's public FHIR base URL (the tokens' aud) "
                   "[default: http://HOST:PORT/fhir]")
@click.option("--introspect-client-id", envvar="AUTHSERVER_FHIR_DEMO_CLIENT_ID", default=None,
              help="Resource-server credentials: check every token at /introspect.")
@click.option("--introspect-client-secret", envvar="AUTHSERVER_FHIR_DEMO_CLIENT_SECRET",
              default=None, help="(prefer the AUTHSERVER_FHIR_DEMO_CLIENT_SECRET variable)")
def fhir_demo(host: str, port: int, issuer: str, fhir_base: str | None,
              introspect_client_id: str | None, introspect_client_secret: str | None) -> None:
    """Serve the demo FHIR server (synthetic patients p1, p2, p3) on its own."""
    import logging

    from authserver.demo.fhir import serve

    if bool(introspect_client_id) != bool(introspect_client_secret):
        raise CliError("introspection needs both a client id and a client secret")
    introspection = None
    if introspect_client_id:
        introspection = {"client_id": introspect_client_id,
                         "client_secret": introspect_client_secret}
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    serve(host, port, issuer, fhir_base or f"http://{host}:{port}/fhir", introspection)


# ---- users -------------------------------------------------------------------------

@cli.group()
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
@_with_app
def user_create(username: str, role: str, password: str | None, password_stdin: bool,
                fhir_user: str | None, name: str | None, email: str | None) -> None:
    """Create a user."""
    from authserver.services import accounts

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    _emit(accounts.create_user(username, role, password=password, fhir_user=fhir_user,
                            name=name, email=email))


@user.command("totp")
@click.argument("username")
@_with_app
def user_totp(username: str) -> None:
    """Enrol TOTP for a user (prints the secret and otpauth URI once)."""
    from authserver.services import accounts

    _emit(accounts.enrol_totp(username))


# ---- clients -----------------------------------------------------------------------

@cli.group()
def client() -> None:
    """Manage client applications."""


@client.command("create")
@click.option("--name", required=True)
@click.option("--redirect-uri", "redirect_uris", multiple=True)
@click.option("--scope", default="")
@click.option("--auth-method", default=None,
              type=click.Choice(["none", "client_secret_basic", "client_secret_post",
                                 "private_key_jwt"]))
@click.option("--jwks-file", type=click.Path(dir_okay=False), default=None)
@click.option("--jwks-uri", default=None)
@click.option("--grant-type", "grant_types", multiple=True,
              type=click.Choice(["authorization_code", "refresh_token", "client_credentials"]))
@click.option("--launch-uri", "launch_uris", multiple=True)
@click.option("--can-launch", is_flag=True, help="May create EHR launch contexts (POST /launch).")
@click.option("--can-introspect", is_flag=True,
              help="May introspect other clients' tokens (POST /introspect).")
@_with_app
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
    _emit(admin_console.create_client(name=name, redirect_uris=list(redirect_uris), scope=scope,
                              auth_method=auth_method, jwks=jwks, jwks_uri=jwks_uri,
                              grant_types=list(grant_types), launch_uris=list(launch_uris),
                              can_launch=can_launch, can_introspect=can_introspect))


@client.command("permissions")
@click.argument("client_id")
@click.option("--introspect/--no-introspect", "introspect", default=None,
              help="Give or take the permission to introspect other clients' tokens.")
@click.option("--pre-approved/--no-pre-approved", "pre_approved", default=None,
              help="Clinicians' EHR launches of the app skip the consent page (or not).")
@_with_app
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
    _emit(out)


@cli.group("resource-server")
def resource_server() -> None:
    """Manage resource servers (callers of /introspect)."""


@resource_server.command("create")
@click.option("--name", required=True)
@_with_app
def resource_server_create(name: str) -> None:
    """Create credentials for a resource server."""
    from authserver.services import admin_console

    _emit(admin_console.create_resource_server(name))


@cli.group("registration-token")
def registration_token() -> None:
    """Initial access tokens for POST /register (RFC 7591 §3)."""


@registration_token.command("create")
@click.option("--uses", default=1, show_default=True, type=int,
              help="How many registrations the token allows.")
@click.option("--lifetime", default=None, type=int,
              help="Seconds until it expires [default: one day].")
@click.option("--note", default=None, help="What it is for (kept with it, never the token).")
@_with_app
def registration_token_create(uses: int, lifetime: int | None, note: str | None) -> None:
    """Issue an initial access token (printed once; stored as its SHA-256)."""
    from authserver.services import admin_console

    _emit(admin_console.create_registration_token(
        uses=uses, note=note,
        lifetime=admin_console.REGISTRATION_TOKEN_LIFETIME if lifetime is None else lifetime))


@registration_token.command("revoke")
@click.argument("token_id", type=int)
@_with_app
def registration_token_revoke(token_id: int) -> None:
    """Revoke an initial access token by the id `create` printed."""
    from authserver.services import admin_console

    _emit(admin_console.revoke_registration_token(token_id))


# ---- launch contexts and patients -------------------------------------------------

@cli.group()
def launch() -> None:
    """EHR launch contexts."""


@launch.command("create")
@click.option("--patient", required=True)
@click.option("--encounter", default=None)
@click.option("--fhir-context", default=None, help="JSON array of SMART 2.2 fhirContext objects")
@click.option("--need-patient-banner", is_flag=True)
@click.option("--intent", default=None)
@click.option("--smart-style-url", default=None)
@click.option("--tenant", default=None)
@click.option("--user", "username", default=None, help="Only this user may use the launch.")
@click.option("--aud", default=None, help="FHIR base (default: the first configured)")
@click.option("--client", "client_id", default=None, help="Only this app may use the launch.")
@_with_app
def launch_create(patient: str, encounter: str | None, fhir_context: str | None,
                  need_patient_banner: bool, intent: str | None, smart_style_url: str | None,
                  tenant: str | None, username: str | None, aud: str | None,
                  client_id: str | None) -> None:
    """Create an EHR launch context."""
    from authserver.services import launches

    ctx = None
    if fhir_context:
        try:
            ctx = json.loads(fhir_context)
        except ValueError:
            raise CliError("--fhir-context: not JSON") from None
    _emit(launches.create_launch(patient=patient, encounter=encounter, fhir_context=ctx,
                              need_patient_banner=need_patient_banner, intent=intent,
                              smart_style_url=smart_style_url, tenant=tenant,
                              username=username, aud=aud, client_id=client_id))


@cli.group()
def patient() -> None:
    """The patient registry the picker offers."""


@patient.command("add")
@click.argument("patient_id")
@click.option("--name", required=True, help='"Family, Given"')
@click.option("--birth-date", default=None)
@_with_app
def patient_add(patient_id: str, name: str, birth_date: str | None) -> None:
    """Add (or update) a patient in the registry."""
    from authserver.services import admin_console

    _emit(admin_console.add_patient(patient_id, name, birth_date))


# ---- keys --------------------------------------------------------------------------

@cli.group()
def keys() -> None:
    """Signing keys."""


@keys.command("list")
@_with_app
def keys_list() -> None:
    """List signing keys (never the private parts)."""
    from authserver.oauth import keystore

    _emit({"keys": keystore.list_keys()})


@keys.command("rotate")
@_with_app
def keys_rotate() -> None:
    """Make new active keys; earlier public keys stay published until their tokens expire."""
    from authserver.oauth import keystore

    _emit({"active": keystore.rotate(), "keys": keystore.list_keys()})


# ---- policy: scope ceilings ------------------------------------------------------------

@cli.group()
def policy() -> None:
    """Scope ceilings: the most a role's or a user's grants may hold."""


def _policy_call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    from authserver.services.policies import PolicyError

    try:
        return fn(*args, **kwargs)
    except PolicyError as exc:
        raise CliError(str(exc)) from None


@policy.command("set")
@click.option("--role", default=None, help="patient, clinician, admin or developer")
@click.option("--user", "username", default=None, help="a username")
@click.argument("scopes")
@_with_app
def policy_set(role: str | None, username: str | None, scopes: str) -> None:
    """Set the ceiling (SMART scopes, e.g. "user/Patient.rs user/Appointment.rs")."""
    from authserver.services import policies

    _emit(_policy_call(policies.set_policy, scopes, role=role, username=username))


@policy.command("unset")
@click.option("--role", default=None)
@click.option("--user", "username", default=None)
@_with_app
def policy_unset(role: str | None, username: str | None) -> None:
    """Remove a ceiling: the role's default applies again."""
    from authserver.services import policies

    _emit(_policy_call(policies.unset_policy, role=role, username=username))


@policy.command("show")
@_with_app
def policy_show() -> None:
    """Every role's default and policy, and every user's policy."""
    from authserver.services import policies

    _emit(policies.show_policy())


@cli.command("export-well-known")
@click.argument("directory", type=click.Path(file_okay=False), default=".well-known")
@_with_app
def export_well_known(directory: str) -> None:
    """Write the discovery documents for static serving behind a proxy."""
    from authserver.services import admin_console

    _emit(admin_console.export_well_known(Path(directory)))


def main() -> None:
    os.environ.setdefault("AUTHSERVER_CLI", "1")
    cli(prog_name="authserver")


if __name__ == "__main__":  # pragma: no cover
    main()
