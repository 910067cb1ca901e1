"""Database tables, one module per family. No OAuth or SMART logic lives here."""

from authserver.models.audit import AuditEvent
from authserver.models.clients import Client, ClientOrigin, RegistrationToken
from authserver.models.invitations import Invitation
from authserver.models.keys import SigningKey
from authserver.models.launch import LaunchContext, PendingAuthorization
from authserver.models.patients import Patient
from authserver.models.policy import RateLimitCounter, ScopePolicy
from authserver.models.tokens import (
    AuthorizationCode,
    ClientAssertionJti,
    Consent,
    Grant,
    RefreshToken,
    RevokedToken,
)
from authserver.models.users import PasswordReset, RecoveryCode, User, UserSession

__all__ = [
    "AuditEvent",
    "AuthorizationCode",
    "Client",
    "ClientOrigin",
    "ClientAssertionJti",
    "Consent",
    "Grant",
    "Invitation",
    "LaunchContext",
    "PasswordReset",
    "Patient",
    "PendingAuthorization",
    "RateLimitCounter",
    "RecoveryCode",
    "RefreshToken",
    "RegistrationToken",
    "RevokedToken",
    "ScopePolicy",
    "SigningKey",
    "User",
    "UserSession",
]
