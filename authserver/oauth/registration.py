"""Client registration, shared by the CLI, RFC 7591 dynamic registration and the portal.

RFC 7591 §2 (client metadata), §3 (the initial access token), §3.2.2 (errors)
https://www.rfc-editor.org/rfc/rfc7591; RFC 6750 §3 (its bearer challenge)
https://www.rfc-editor.org/rfc/rfc6750#section-3; SMART App Launch 2.2
client-confidential-asymmetric ("registration accepts client JWKS URL and inline JWKS").

Self-service registration (``POST /register``, the developer page) is bounded: an initial
access token an administrator issued (unless ``OPEN_REGISTRATION``), at most
:data:`MAX_BODY_BYTES` of JSON nested at most :data:`MAX_JSON_DEPTH` deep, at most
:data:`MAX_REDIRECT_URIS` redirect URIs, and never an administrator's permission
(:data:`ADMIN_ONLY_SCOPES`, backend services).
"""

from __future__ import annotations

import json
import secrets
from typing import Any
from urllib.parse import urlsplit

from flask import current_app

from authserver import clock, digests, store
from authserver.models import Client
from authserver.smart.scopes import ScopeError, parse_scopes
from authserver.urls import is_loopback_host, origin_of

__all__ = [
    "AUTH_METHODS", "GRANT_TYPES", "RegistrationError", "register_client", "validate_jwks",
    "client_response", "register_dynamic",
    "self_service_problem", "INTROSPECT_SCOPE", "ADMIN_ONLY_SCOPES", "MAX_BODY_BYTES",
    "MAX_JSON_DEPTH", "MAX_REDIRECT_URIS", "client_origins", "normalize_metadata",
    "check_initial_access_token",
]

AUTH_METHODS = ("none", "client_secret_basic", "client_secret_post", "private_key_jwt")
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
SECRET_METHODS = ("client_secret_basic", "client_secret_post")
#: Private members of a JWK: a client must register public keys only.
_PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
_MAX_JWKS_KEYS = 20
#: Most redirect URIs (and launch URIs) one client may register.
MAX_REDIRECT_URIS = 20
#: Largest ``POST /register`` body read, bytes (checked before any parsing).
MAX_BODY_BYTES = 16 * 1024
#: Deepest nesting of objects and arrays in a ``POST /register`` body (metadata needs
#: about 5: ``{"jwks": {"keys": [{"x5c": [...]}]}}``).
MAX_JSON_DEPTH = 10
#: The permission scope that lets an access token call /introspect for any client's token
#: (:mod:`authserver.oauth.endpoints`); the client must also carry ``Client.can_introspect``.
INTROSPECT_SCOPE = "introspect"
#: Scopes only an administrator grants: self-service registration refuses them.
ADMIN_ONLY_SCOPES = frozenset({INTROSPECT_SCOPE})


class RegistrationError(ValueError):
    """An RFC 7591 §3.2.2 error: ``error`` is the wire code, ``description`` names the field;
    ``status`` and ``headers`` are those of the HTTP answer."""

    def __init__(self, error: str, description: str, *, status: int = 400,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.headers = headers or {}


def _has_control(text: str) -> bool:
    """Control characters (C0, DEL): never in a URI (RFC 3986 §2) or a display name."""
    return any(ord(c) < 0x20 or ord(c) == 0x7F for c in text)


def _check_no_nul(meta: dict[str, Any]) -> None:
    """No NUL in any string of the metadata, keys included (PostgreSQL refuses it in text:
    bad input, not a 500). Iterative: no recursion on hostile input."""
    stack: list[Any] = [meta]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise RegistrationError("invalid_client_metadata",
                                        "metadata must not contain NUL characters")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _check_redirect_uri(uri: Any) -> str:
    if not isinstance(uri, str) or not uri or len(uri) > 2000:
        raise RegistrationError("invalid_redirect_uri", "Each redirect URI must be a string")
    if _has_control(uri) or " " in uri:
        raise RegistrationError("invalid_redirect_uri",
                                "a redirect URI must not contain spaces or control characters")
    try:
        parts = urlsplit(uri)
    except ValueError:
        raise RegistrationError("invalid_redirect_uri", f"'{uri}' is not a URI") from None
    if parts.fragment or "#" in uri:
        # RFC 6749 §3.1.2: "The endpoint URI MUST NOT include a fragment component."
        raise RegistrationError("invalid_redirect_uri", f"'{uri}' must not have a fragment")
    if not parts.scheme:
        raise RegistrationError("invalid_redirect_uri", f"'{uri}' is not an absolute URI")
    if parts.scheme in ("http", "https"):
        if not parts.hostname:
            raise RegistrationError("invalid_redirect_uri", f"'{uri}' has no host")
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            # RFC 9700 §2.1 / RFC 8252 §8.3: plain http only for loopback redirects.
            raise RegistrationError("invalid_redirect_uri",
                                    f"'{uri}' must use https (http only for loopback)")
        origin = origin_of(uri)
        if origin is None or len(origin) > store.clients.ORIGIN_MAX_LENGTH:
            raise RegistrationError("invalid_redirect_uri", f"'{uri}' has an unusable host")
    elif parts.scheme in ("javascript", "data", "file", "vbscript"):
        raise RegistrationError("invalid_redirect_uri", f"'{uri}' uses a forbidden scheme")
    elif "." not in parts.scheme:
        # RFC 8252 §7.1: private-use schemes are reverse domain names.
        raise RegistrationError("invalid_redirect_uri",
                                f"'{uri}': a private-use scheme must be a reverse domain name")
    return uri


def _check_https_url(field: str, url: Any) -> str:
    if not isinstance(url, str) or len(url) > 2000 or _has_control(url) or " " in url:
        raise RegistrationError("invalid_client_metadata", f"'{field}' must be a URL")
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and is_loopback_host(parts.hostname):
        return url
    raise RegistrationError("invalid_client_metadata",
                            f"'{field}' must be an https URL (http only for loopback)")


def validate_jwks(jwks: Any) -> dict[str, Any]:
    """A JWK Set of public keys, each with ``kty`` and ``kid``; raises RegistrationError."""
    if isinstance(jwks, str):
        try:
            jwks = json.loads(jwks)
        except ValueError:
            raise RegistrationError("invalid_client_metadata", "'jwks' is not JSON") from None
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        raise RegistrationError("invalid_client_metadata", "'jwks' must be {\"keys\": [...]}")
    if len(jwks["keys"]) > _MAX_JWKS_KEYS:
        raise RegistrationError("invalid_client_metadata", "'jwks' has too many keys")
    kids = set()
    for key in jwks["keys"]:
        if not isinstance(key, dict):
            raise RegistrationError("invalid_client_metadata", "'jwks' keys must be objects")
        if _PRIVATE_MEMBERS & key.keys():
            raise RegistrationError("invalid_client_metadata",
                                    "'jwks' must contain public keys only")
        kty, kid = key.get("kty"), key.get("kid")
        if kty not in ("RSA", "EC") or not isinstance(kid, str) or not kid:
            raise RegistrationError("invalid_client_metadata",
                                    "each key in 'jwks' needs 'kty' (RSA or EC) and 'kid'")
        needed = ("n", "e") if kty == "RSA" else ("crv", "x", "y")
        if not all(isinstance(key.get(m), str) for m in needed):
            raise RegistrationError("invalid_client_metadata",
                                    f"key '{kid}' lacks {', '.join(needed)}")
        try:
            from joserfc.jwk import KeySet

            if KeySet.import_key_set({"keys": [key]}).keys[0].is_private:
                raise ValueError("private key")
        except Exception:  # noqa: BLE001 - any parse failure is the client's bad input
            raise RegistrationError("invalid_client_metadata",
                                    f"key '{kid}' is not a valid public key") from None
        if kid in kids:
            raise RegistrationError("invalid_client_metadata", f"duplicate kid '{kid}'")
        kids.add(kid)
    return {"keys": jwks["keys"]}


def _string_list(meta: dict[str, Any], field: str) -> list[str]:
    value = meta.get(field) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RegistrationError("invalid_client_metadata", f"'{field}' must be a list of strings")
    return value


def normalize_metadata(meta: dict[str, Any], kind: str = "app") -> dict[str, Any]:
    """Validate RFC 7591 metadata and fill its defaults; raises RegistrationError.

    A resource server (kind 'resource_server') only authenticates to /introspect: it has
    no grant types, response types or redirect URIs."""
    if not isinstance(meta, dict):
        raise RegistrationError("invalid_client_metadata", "metadata must be a JSON object")
    out: dict[str, Any] = {}
    name = meta.get("client_name") or "Unnamed app"
    if not isinstance(name, str) or len(name) > 200 or _has_control(name):
        raise RegistrationError("invalid_client_metadata", "'client_name' must be a short string")
    out["client_name"] = name.strip() or "Unnamed app"
    method = meta.get("token_endpoint_auth_method", "client_secret_basic")
    if method not in AUTH_METHODS:
        raise RegistrationError("invalid_client_metadata",
                                f"'token_endpoint_auth_method' must be one of {AUTH_METHODS}")
    out["token_endpoint_auth_method"] = method
    grant_types = _string_list(meta, "grant_types") or (
        [] if kind == "resource_server" else ["authorization_code"])
    for g in grant_types:
        if g not in GRANT_TYPES:
            raise RegistrationError("invalid_client_metadata", f"grant type '{g}' is unsupported")
    grant_types = list(dict.fromkeys(grant_types))
    if "client_credentials" in grant_types and method == "none":
        raise RegistrationError("invalid_client_metadata",
                                "client_credentials needs an authenticated client")
    out["grant_types"] = grant_types
    response_types = _string_list(meta, "response_types") or (
        ["code"] if "authorization_code" in grant_types else [])
    if any(r != "code" for r in response_types):
        raise RegistrationError("invalid_client_metadata", "only the 'code' response type")
    out["response_types"] = response_types
    listed = _string_list(meta, "redirect_uris")
    if len(listed) > MAX_REDIRECT_URIS:
        raise RegistrationError("invalid_client_metadata",
                                f"'redirect_uris' has more than {MAX_REDIRECT_URIS} entries")
    redirect_uris = [_check_redirect_uri(u) for u in listed]
    if "authorization_code" in grant_types and not redirect_uris:
        raise RegistrationError("invalid_redirect_uri", "at least one redirect URI is required")
    out["redirect_uris"] = list(dict.fromkeys(redirect_uris))
    scope = meta.get("scope") or ""
    if not isinstance(scope, str):
        raise RegistrationError("invalid_client_metadata", "'scope' must be a string")
    try:
        out["scope"] = " ".join(s.raw for s in parse_scopes(scope))
    except ScopeError as exc:
        raise RegistrationError("invalid_client_metadata", str(exc)) from None
    if meta.get("jwks") and meta.get("jwks_uri"):
        raise RegistrationError("invalid_client_metadata", "'jwks' and 'jwks_uri' are exclusive")
    if meta.get("jwks"):
        out["jwks"] = validate_jwks(meta["jwks"])
    if meta.get("jwks_uri"):
        out["jwks_uri"] = _check_https_url("jwks_uri", meta["jwks_uri"])
    if method == "private_key_jwt" and not (out.get("jwks") or out.get("jwks_uri")):
        raise RegistrationError("invalid_client_metadata",
                                "private_key_jwt needs 'jwks' or 'jwks_uri'")
    listed = _string_list(meta, "launch_uris") + (
        [meta["launch_uri"]] if meta.get("launch_uri") else [])
    if len(listed) > MAX_REDIRECT_URIS:
        raise RegistrationError("invalid_client_metadata",
                                f"'launch_uris' has more than {MAX_REDIRECT_URIS} entries")
    launch_uris = [_check_https_url("launch_uri", u) for u in listed]
    if launch_uris:
        out["launch_uris"] = list(dict.fromkeys(launch_uris))
    for field in ("logo_uri", "client_uri", "policy_uri", "tos_uri"):
        if meta.get(field):
            out[field] = _check_https_url(field, meta[field])
    contacts = _string_list(meta, "contacts")
    if contacts:
        out["contacts"] = contacts[:10]
    for field in ("software_id", "software_version"):
        if isinstance(meta.get(field), str):
            out[field] = meta[field][:200]
    _check_no_nul(meta)  # last: the checks above name the field when they can
    return out


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
    client = Client(
        client_id=secrets.token_urlsafe(18),
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
    store.clients.add_client(client)
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
    body.update(client.client_metadata)
    return body


# ---- RFC 7591 §3: dynamic registration, a row of small named checks ------------------

def self_service_problem(scope: Any) -> str | None:
    """Why a developer may not register this ``scope`` themselves (None when they may).
    Shared by ``POST /register`` and the developer page."""
    if not isinstance(scope, str):
        return None  # normalize_metadata refuses it with its own message
    asked = set(scope.split(" ")) & ADMIN_ONLY_SCOPES
    if asked:
        return f"'{sorted(asked)[0]}' is a permission only an administrator grants"
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
    if isinstance(grant_types, list) and "client_credentials" in grant_types:
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
    from authserver import audit

    try:
        with store.transaction():  # the token's use, the client, its origins, the audit row
            token = check_initial_access_token(authorization)
            meta = parse_metadata(check_body_size(body), is_json)
            check_self_service(meta)
            meta = normalize_metadata(
                {**meta, "grant_types": meta.get("grant_types") or [
                    "authorization_code", "refresh_token"]})
            if token is not None and not store.clients.spend_registration_token(token.id):
                raise _bearer_challenge("invalid_token", "The initial access token is used up")
            client, secret = _store_client(meta, kind="app")
            audit.record("client.registered", client_id=client.client_id, via="dcr",
                         registration_token_id=token.id if token is not None else None)
    except RegistrationError as exc:
        return exc.status, {"error": exc.error, "error_description": exc.description}, \
            exc.headers
    return 201, client_response(client, secret), {}
