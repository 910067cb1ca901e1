"""The roles a person has on this server (pure: every layer may import it, views and the CLI
included). Each role has a default scope ceiling (:mod:`authserver.smart.ceiling`)."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Role"]


class Role(StrEnum):
    """What a person is to this server. The values are what the ``users.role`` and
    ``invitations.role`` columns and the CLI's ``--role`` hold."""

    PATIENT = "patient"
    CLINICIAN = "clinician"
    ADMIN = "admin"
    DEVELOPER = "developer"

    @classmethod
    def parse(cls, value: object) -> Role | None:
        """The role ``value`` names, or None when it names none."""
        try:
            return cls(value)
        except ValueError:
            return None

    @property
    def requires_totp(self) -> bool:
        """Clinicians and administrators sign in with a second factor (they enrol TOTP at
        their first sign-in)."""
        return self in (Role.CLINICIAN, Role.ADMIN)
