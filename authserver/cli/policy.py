"""``authserver policy``: scope ceilings, the most a role's or a user's grants may hold."""

from __future__ import annotations

from typing import Any

import click

from authserver.cli._shared import CliError, emit, with_app

__all__ = ["policy"]


@click.group()
def policy() -> None:
    """Scope ceilings: the most a role's or a user's grants may hold.

    \b
    Examples:
      authserver policy set --role clinician "openid fhirUser user/Patient.rs"
      authserver policy show
    """


def _policy_call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    from authserver.services.policies import PolicyError

    try:
        return fn(*args, **kwargs)
    except PolicyError as exc:
        raise CliError(str(exc)) from None


@policy.command("set")
@click.option("--role", default=None, help="The role's ceiling: patient, clinician, admin or "
                                           "developer.")
@click.option("--user", "username", default=None, help="This user's ceiling (a username).")
@click.argument("scopes")
@with_app
def policy_set(role: str | None, username: str | None, scopes: str) -> None:
    """Set the ceiling (SMART scopes, e.g. "user/Patient.rs user/Appointment.rs")."""
    from authserver.services import policies

    emit(_policy_call(policies.set_policy, scopes, role=role, username=username))


@policy.command("unset")
@click.option("--role", default=None, help="The role whose policy goes.")
@click.option("--user", "username", default=None, help="The user whose policy goes.")
@with_app
def policy_unset(role: str | None, username: str | None) -> None:
    """Remove a ceiling: the role's default applies again."""
    from authserver.services import policies

    emit(_policy_call(policies.unset_policy, role=role, username=username))


@policy.command("show")
@with_app
def policy_show() -> None:
    """Every role's default and policy, and every user's policy."""
    from authserver.services import policies

    emit(policies.show_policy())
