"""Client registration, the use case: what ``POST /register``, the developer portal and the
CLI call to create a client, store it and audit it.

RFC 7591 §3 (the initial access token, the request) https://www.rfc-editor.org/rfc/rfc7591#section-3,
§3.2.1 (the response) https://www.rfc-editor.org/rfc/rfc7591#section-3.2.1; RFC 6750 §3 (its
bearer challenge) https://www.rfc-editor.org/rfc/rfc6750#section-3. The metadata rules are
:mod:`authserver.oauth.rfc7591`.

Self-service registration (``POST /register``, the developer page) is bounded: an initial
access token an administrator issued (unless ``OPEN_REGISTRATION``), at most
:data:`MAX_BODY_BYTES` of JSON nested at most :data:`MAX_JSON_DEPTH` deep, at most
:data:`~authserver.oauth.rfc7591.MAX_REDIRECT_URIS` redirect URIs, and never an
administrator's permission (:data:`ADMIN_ONLY_SCOPES`, backend services).

Each public function that writes is one unit of work: :func:`register_client` is a
``@store.transaction()``, :func:`register_dynamic` opens its own transaction so that the
token's use, the client, its origins and the audit row commit together.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from flask import current_app

from authserver import audit, clock, digests, store
from authserver.oauth.rfc7591 import RegistrationError, normalize_metadata
from authserver.smart.client_types import INTROSPECT_SCOPE, SECRET_METHODS, GrantType
from authserver.smart.words import N_, Words
from authserver.urls import origin_of

if TYPE_CHECKING:
    from authserver.models import Client

__all__ = [
    "ADMIN_ONLY_SCOPES", "MAX_BODY_BYTES", "MAX_JSON_DEPTH", "check_initial_access_token",
    "client_origins", "client_response", "register_client", "register_dynamic",
    "self_service_problem",
]

#: Largest ``POST /register`` body read, bytes (checked before any parsing).
MAX_BODY_BYTES = 16 * 1024
#: Deepest nesting of objects and arrays in a ``POST /register`` body (metadata needs
#: about 5: ``{"jwks": {"keys": [{"x5c": [...]}]}}``).
MAX_JSON_DEPTH = 10
#: Scopes only an administrator grants: self-service registration refuses them.
ADMIN_ONLY_SCOPES = frozenset({INTROSPECT_SCOPE})


@store.transaction()
def register_client(
    meta: dict[str, Any], *, kind: str = "app", owner_id: int | None = None,
    can_launch: bool = False, can_introspect: bool = False, verified: bool = False,
) -> tuple[Client, str | None]:
    """Validate and store a client (one unit of work); returns (client, secret) — the secret is
    shown once. ``verified``: an administrator made or approved it; ``can_launch`` and
    ``can_introspect`` are permissions only an administrator gives."""
    client, secret = _store_client(normalize_metadata(meta, kind), kind=kind,
                                   owner_id=owner_id, can_launch=can_launch,
                                   can_introspect=can_introspect, verified=verified)
    return client, secret


def _store_client(meta: dict[str, Any], *, kind: str, owner_id: int | None = None,
                  can_launch: bool = False, can_introspect: bool = False,
                  verified: bool = False) -> tuple[Client, str | None]:
    """Add a client with already normalized metadata, and the CORS origins of its redirect
    URIs, to the current transaction (not committed).

    Secrets are 256 random bits stored as SHA-256: a password KDF would cripple the token
    endpoint and buys nothing for a random value.
    """
    method = meta["token_endpoint_auth_method"]
    secret = digests.new_secret(32) if method in SECRET_METHODS else None
    client = store.clients.add_client(
        client_id=digests.new_identifier(18),
        client_secret_hash=digests.sha256_hex(secret) if secret else None,
        client_name=meta["client_name"],
        token_endpoint_auth_method=method,
        client_metadata=meta,
        kind=kind,
        can_launch=can_launch,
        can_introspect=can_introspect,
        verified=verified,
        owner_id=owner_id,
        created_at=clock.now(),
    )
    store.clients.set_client_origins(client.client_id, client_origins(meta))
    return client, secret


def client_origins(meta: dict[str, Any]) -> set[str]:
    """The web origins of a client's redirect URIs (what CORS allows for it)."""
    return {o for o in (origin_of(u) for u in meta.get("redirect_uris") or []) if o}


def client_response(client: Client, secret: str | None = None) -> dict[str, Any]:
    """RFC 7591 §3.2.1 registration response (also what the CLI prints)."""
    body: dict[str, Any] = {"client_id": client.client_id}
    if secret:
        body["client_secret"] = secret
        body["client_secret_expires_at"] = 0  # REQUIRED when a secret is issued; 0 = never
    body["client_id_issued_at"] = client.created_at
    # Keys beginning with "_" are the server's own (a rotated secret's digest), not metadata.
    body.update({k: v for k, v in client.client_metadata.items() if not k.startswith("_")})
    return body


# ---- RFC 7591 §3: dynamic registration, a row of small named checks ------------------

def self_service_problem(scope: Any) -> str | None:
    """Why a developer may not register this ``scope`` themselves (None when they may).
    Shared by ``POST /register`` and the developer page."""
    if not isinstance(scope, str):
        return None  # normalize_metadata refuses it with its own message
    asked = set(scope.split(" ")) & ADMIN_ONLY_SCOPES
    if asked:
        return Words(N_("'{scope}' is a permission only an administrator grants"),
                     scope=sorted(asked)[0])
    return None


def _bearer_challenge(error: str | None, description: str) -> RegistrationError:
    """RFC 6750 §3: 401 with ``WWW-Authenticate: Bearer``; §3.1: a request without a
    token "SHOULD NOT include an error code" in the challenge (the JSON body still says
    ``invalid_token``, as every error answer of ours carries an ``error``)."""
    challenge = f'Bearer realm="{current_app.config["ISSUER"]}"'
    if error:
        challenge += f', error="{error}", error_description="{description}"'
    return RegistrationError("invalid_token", description, status=401,
                             headers={"WWW-Authenticate": challenge})


def check_initial_access_token(authorization: str | None) -> Any:
    """RFC 7591 §3: the initial access token of ``Authorization: Bearer``; its row, or None
    when registration is open (``OPEN_REGISTRATION=1``). Spends nothing."""
    if current_app.config["OPEN_REGISTRATION"]:
        return None
    scheme, _, value = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise _bearer_challenge(None, "An initial access token is required "
                                      "(Authorization: Bearer)")
    row = store.clients.find_registration_token(value.strip())
    if row is None:
        raise _bearer_challenge("invalid_token", "The initial access token is not valid, "
                                                 "has expired or is used up")
    return row


def check_body_size(body: bytes | None) -> bytes:
    """``body`` is None when it was over :data:`MAX_BODY_BYTES` (not read)."""
    if body is None or len(body) > MAX_BODY_BYTES:
        raise RegistrationError("invalid_client_metadata",
                                f"The body is larger than {MAX_BODY_BYTES} bytes")
    return body


def _json_depth(value: Any, limit: int) -> int:
    """Nesting depth of objects and arrays (a scalar is 0); stops counting past ``limit``.
    Iterative: no recursion on hostile input."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
            stack.extend((child, depth + 1)
                         for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def parse_metadata(body: bytes, is_json: bool) -> dict[str, Any]:
    """The JSON object of the request (RFC 7591 §3.1: ``application/json``, UTF-8)."""
    if not is_json:
        raise RegistrationError("invalid_client_metadata",
                                "Send the metadata as application/json")
    try:
        meta = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise RegistrationError("invalid_client_metadata",
                                "The body is not UTF-8 JSON (or is nested too deeply)") from None
    if not isinstance(meta, dict):
        raise RegistrationError("invalid_client_metadata", "The body must be a JSON object")
    if _json_depth(meta, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise RegistrationError("invalid_client_metadata",
                                f"The body is nested more than {MAX_JSON_DEPTH} levels deep")
    return meta


def check_self_service(meta: dict[str, Any]) -> None:
    """What a developer may not register without an administrator.

    Backend services (``client_credentials``, ``system/`` scopes) are refused: without a
    user's consent in the loop, anyone could mint themselves bulk-data access. Nor may
    anyone give themselves the ``introspect`` permission (reading other apps' tokens).
    """
    grant_types = meta.get("grant_types") or []
    if isinstance(grant_types, list) and GrantType.CLIENT_CREDENTIALS in grant_types:
        raise RegistrationError("invalid_client_metadata",
                                "'client_credentials' clients are registered by an "
                                "administrator")
    scope = meta.get("scope")
    if isinstance(scope, str) and any(s.startswith("system/") for s in scope.split()):
        raise RegistrationError("invalid_client_metadata",
                                "'system/' scopes are registered by an administrator")
    problem = self_service_problem(scope)
    if problem:
        raise RegistrationError("invalid_client_metadata", problem)


def register_dynamic(body: bytes | None, *, is_json: bool, authorization: str | None
                     ) -> tuple[int, dict[str, Any], dict[str, str]]:
    """RFC 7591 §3: register an app that acts for a user; returns (status, JSON body,
    headers). ``body`` is the raw request body, None when it was over the size limit.

    The checks run in order: initial access token (401), size, JSON, self-service policy,
    metadata (400); only then is one use of the token spent, in the transaction that
    stores the client, so a refused registration costs no use and two racing ones cannot
    overspend it.
    """
    try:
        with store.transaction():  # the token's use, the client, its origins, the audit row
            token = check_initial_access_token(authorization)
            meta = parse_metadata(check_body_size(body), is_json)
            check_self_service(meta)
            meta = normalize_metadata(
                {**meta, "grant_types": meta.get("grant_types") or [
                    GrantType.AUTHORIZATION_CODE.value, GrantType.REFRESH_TOKEN.value]})
            if token is not None and not store.clients.spend_registration_token(token.id):
                raise _bearer_challenge("invalid_token", "The initial access token is used up")
            client, secret = _store_client(meta, kind="app")
            audit.record("client.registered", client_id=client.client_id, via="dcr",
                         registration_token_id=token.id if token is not None else None)
    except RegistrationError as exc:
        return exc.status, {"error": exc.error, "error_description": exc.description}, \
            exc.headers
    return 201, client_response(client, secret), {}
