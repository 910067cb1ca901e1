"""Client registration, shared by the CLI, RFC 7591 dynamic registration and the portal.

RFC 7591 §2 (client metadata) and §3.2.2 (errors); SMART App Launch 2.2
client-confidential-asymmetric ("registration accepts client JWKS URL and inline JWKS").
"""

from __future__ import annotations

import ipaddress
import json
import secrets
from typing import Any
from urllib.parse import urlsplit

from authserver.extensions import db
from authserver.models import Client
from authserver.oauth import storage
from authserver.smart.scopes import ScopeError, parse_scopes

__all__ = [
    "AUTH_METHODS", "GRANT_TYPES", "RegistrationError", "register_client", "validate_jwks",
    "client_response", "is_loopback_host",
]

AUTH_METHODS = ("none", "client_secret_basic", "client_secret_post", "private_key_jwt")
GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
SECRET_METHODS = ("client_secret_basic", "client_secret_post")
#: Private members of a JWK: a client must register public keys only.
_PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
_MAX_JWKS_KEYS = 20


class RegistrationError(ValueError):
    """An RFC 7591 §3.2.2 error: ``error`` is the wire code, ``description`` names the field."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_redirect_uri(uri: Any) -> str:
    if not isinstance(uri, str) or not uri or len(uri) > 2000:
        raise RegistrationError("invalid_redirect_uri", "Each redirect URI must be a string")
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
    elif parts.scheme in ("javascript", "data", "file", "vbscript"):
        raise RegistrationError("invalid_redirect_uri", f"'{uri}' uses a forbidden scheme")
    elif "." not in parts.scheme:
        # RFC 8252 §7.1: private-use schemes are reverse domain names.
        raise RegistrationError("invalid_redirect_uri",
                                f"'{uri}': a private-use scheme must be a reverse domain name")
    return uri


def _check_https_url(field: str, url: Any) -> str:
    if not isinstance(url, str) or len(url) > 2000:
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
    if not isinstance(name, str) or len(name) > 200:
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
    redirect_uris = [_check_redirect_uri(u) for u in _string_list(meta, "redirect_uris")]
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
    launch_uris = [_check_https_url("launch_uri", u) for u in
                   _string_list(meta, "launch_uris") + ([meta["launch_uri"]]
                                                        if meta.get("launch_uri") else [])]
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
    return out


def register_client(
    meta: dict[str, Any], *, kind: str = "app", owner_id: int | None = None,
    can_launch: bool = False,
) -> tuple[Client, str | None]:
    """Validate and store a client; returns (client, secret) — the secret is shown once.

    Secrets are 256 random bits stored as SHA-256: a password KDF would cripple the token
    endpoint and buys nothing for a random value.
    """
    meta = normalize_metadata(meta, kind)
    method = meta["token_endpoint_auth_method"]
    secret = storage.new_secret(32) if method in SECRET_METHODS else None
    client = Client(
        client_id=secrets.token_urlsafe(18),
        client_secret_hash=storage.sha256_hex(secret) if secret else None,
        client_name=meta["client_name"],
        token_endpoint_auth_method=method,
        client_metadata=meta,
        kind=kind,
        can_launch=can_launch,
        owner_id=owner_id,
        created_at=storage.now(),
    )
    db.session.add(client)
    db.session.commit()
    return client, secret


def client_response(client: Client, secret: str | None = None) -> dict[str, Any]:
    """RFC 7591 §3.2.1 registration response (also what the CLI prints)."""
    body: dict[str, Any] = {"client_id": client.client_id}
    if secret:
        body["client_secret"] = secret
        body["client_secret_expires_at"] = 0  # REQUIRED when a secret is issued; 0 = never
    body["client_id_issued_at"] = client.created_at
    body.update(client.client_metadata)
    return body


def register_dynamic(body: Any) -> tuple[int, dict[str, Any]]:
    """RFC 7591 §3: open registration of apps that act for a user.

    Backend services (``client_credentials``, ``system/`` scopes) are refused here: without
    a user's consent in the loop, anyone could mint themselves bulk-data access. An
    administrator registers them (CLI, admin pages).
    """
    if not isinstance(body, dict):
        return 400, {"error": "invalid_client_metadata",
                     "error_description": "The body must be a JSON object"}
    grant_types = body.get("grant_types") or []
    if isinstance(grant_types, list) and "client_credentials" in grant_types:
        return 400, {"error": "invalid_client_metadata",
                     "error_description": "'client_credentials' clients are registered by an "
                                          "administrator"}
    scope = body.get("scope")
    if isinstance(scope, str) and any(s.startswith("system/") for s in scope.split()):
        return 400, {"error": "invalid_client_metadata",
                     "error_description": "'system/' scopes are registered by an administrator"}
    body = {**body}
    body.setdefault("grant_types", ["authorization_code", "refresh_token"])
    try:
        client, secret = register_client(body)
    except RegistrationError as exc:
        return 400, {"error": exc.error, "error_description": exc.description}
    from authserver import audit

    audit.record("client.registered", client_id=client.client_id, via="dcr")
    db.session.commit()
    return 201, client_response(client, secret)
