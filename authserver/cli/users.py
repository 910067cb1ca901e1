"""``authserver user`` (create, list, show, disable and enable users, change their role,
reset their password or two-step sign-in, enrol TOTP) and ``authserver invite`` (an
invitation by e-mail: the person chooses their own username and password)."""

from __future__ import annotations

import sys

import click

from authserver.cli._shared import CliError, emit, with_app
from authserver.smart.roles import Role

__all__ = ["user", "invite"]

_ROLES = click.Choice([r.value for r in Role])


@click.group()
def user() -> None:
    """Manage users.

    \b
    Examples:
      echo 'a long passphrase' | authserver user create alice --role patient \\
          --password-stdin --fhir-user Patient/p1 --email alice@example.org
      authserver user list --role clinician --limit 20
      authserver user list --limit 20 --after 42     # the next page ("next" was 42)
      authserver user disable alice
      authserver user reset-password alice           # mails a link (or --password-stdin)
    """


def _read_password(password: str | None, password_stdin: bool) -> str | None:
    if password is not None and password_stdin:
        raise CliError("use one of --password and --password-stdin, not both")
    if password_stdin:
        line = sys.stdin.readline()
        if not line.strip():
            raise CliError("--password-stdin: standard input held no password")
        return line.rstrip("\r\n")
    return password


@user.command("create")
@click.argument("username")
@click.option("--role", required=True, type=_ROLES, help="What the person is to this server.")
@click.option("--password", default=None,
              help="The password (visible to other local users: prefer --password-stdin).")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from the first line of standard input.")
@click.option("--fhir-user", default=None,
              help="Patient/ID or Practitioner/ID (a patient's must be Patient/ID and, when "
                   "the registry has patients, one of them).")
@click.option("--name", default=None, help="The person's full name.")
@click.option("--email", default=None,
              help="Their e-mail address (forgotten-password links go there).")
@with_app
def user_create(username: str, role: str, password: str | None, password_stdin: bool,
                fhir_user: str | None, name: str | None, email: str | None) -> None:
    """Create a user who signs in with a password."""
    from authserver.services import accounts, user_admin

    password = _read_password(password, password_stdin)
    email = user_admin.check_new_user(password=password, email=email, fhir_user=fhir_user)
    emit(accounts.create_user(username, role, password=password, fhir_user=fhir_user,
                              name=name, email=email))


@user.command("totp")
@click.argument("username")
@click.option("--replace", is_flag=True,
              help="Replace an authenticator already enrolled (the old one stops working).")
@with_app
def user_totp(username: str, replace: bool) -> None:
    """Enrol TOTP for a user (prints the secret and otpauth URI once)."""
    from authserver.services import accounts, user_admin

    if user_admin.has_authenticator(username) and not replace:
        raise CliError(f"user {username!r} already has an authenticator; --replace makes a "
                       "new one and the old one stops working")
    emit(accounts.enrol_totp(username))


@user.command("list")
@click.option("--role", default=None, type=_ROLES, help="Only users of this role.")
@click.option("--disabled/--enabled", "disabled", default=None,
              help="Only disabled, or only enabled, users  [default: both]")
@click.option("--limit", default=50, show_default=True, type=int,
              help="Users per page (at most 500).")
@click.option("--after", default=None, type=int,
              help='The "next" id a previous page printed: list the users after it.')
@with_app
def user_list(role: str | None, disabled: bool | None, limit: int, after: int | None) -> None:
    """List users by id: {"users": [...], "next": id or null}."""
    from authserver.services import user_admin

    emit(user_admin.list_users(role=role, disabled=disabled, limit=limit, after=after))


@user.command("show")
@click.argument("username")
@with_app
def user_show(username: str) -> None:
    """One user: role, fhirUser, two-step sign-in, recovery codes left, sessions, apps."""
    from authserver.services import user_admin

    emit(user_admin.show_user(username))


@user.command("disable")
@click.argument("username")
@with_app
def user_disable(username: str) -> None:
    """Disable a user: their sign-ins end and every grant (token) they gave is revoked."""
    from authserver.services import user_admin

    emit(user_admin.set_enabled(username, False))


@user.command("enable")
@click.argument("username")
@with_app
def user_enable(username: str) -> None:
    """Enable a disabled user again (their old tokens stay revoked)."""
    from authserver.services import user_admin

    emit(user_admin.set_enabled(username, True))


@user.command("set-role")
@click.argument("username")
@click.argument("role", type=_ROLES)
@click.option("--fhir-user", default=None,
              help="A new Patient/ID or Practitioner/ID  [default: the user's own]")
@with_app
def user_set_role(username: str, role: str, fhir_user: str | None) -> None:
    """Give a user another role; a change ends their sign-ins and revokes their grants."""
    from authserver.services import user_admin

    emit(user_admin.set_role(username, role, fhir_user))


@user.command("reset-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True,
              help="Set the password read from standard input instead of mailing a link.")
@with_app
def user_reset_password(username: str, password_stdin: bool) -> None:
    """Mail a forgotten-password link (the user has an e-mail address and mail is
    configured), or set the password given on standard input. Every sign-in ends."""
    from authserver.services import user_admin

    emit(user_admin.reset_password(username, _read_password(None, password_stdin)))


@user.command("reset-totp")
@click.argument("username")
@with_app
def user_reset_totp(username: str) -> None:
    """Remove a user's authenticator and recovery codes and end their sign-ins;
    clinicians and admins enrol again at their next sign-in."""
    from authserver.services import user_admin

    emit(user_admin.reset_totp(username))


@click.command()
@click.option("--email", required=True, help="Where the invitation link is sent.")
@click.option("--role", required=True, type=_ROLES, help="The role the new account gets.")
@click.option("--fhir-user", default=None, help="Patient/ID or Practitioner/ID.")
@click.option("--name", default=None, help="The person's full name (the mail greets them).")
@with_app
def invite(email: str, role: str, fhir_user: str | None, name: str | None) -> None:
    """Invite a person by e-mail: a link (one use) lets them choose a username and password.

    Prints the invitation's id and expiry, never its link. Needs AUTHSERVER_SMTP_HOST.

    \b
    Example:
      authserver invite --email dr.jones@example.org --role clinician \\
          --fhir-user Practitioner/pr7 --name "Dana Jones"
    """
    from authserver.services import accounts, user_admin

    user_admin.check_fhir_user(fhir_user)
    try:
        row = accounts.invite(email, role, fhir_user=fhir_user, name=name, invited_by=None)
    except accounts.InvitationError as exc:
        raise CliError(str(exc)) from None
    emit({"id": row["id"], "email": row["email"], "role": row["role"],
          "fhirUser": row["fhirUser"], "expires_at": row["expires_at"]})
