"""RFC 7591 client metadata: the rules a registration's metadata must meet, and its errors.

RFC 7591 §2 (client metadata) https://www.rfc-editor.org/rfc/rfc7591#section-2 and §3.2.2
(the error answer) https://www.rfc-editor.org/rfc/rfc7591#section-3.2.2, with SMART App
Launch 2.2's constraints: client-confidential-asymmetric ("registration accepts client JWKS
URL and inline JWKS") https://hl7.org/fhir/smart-app-launch/client-confidential-asymmetric.html,
https redirect and launch URIs (http only for loopback), at most :data:`MAX_REDIRECT_URIS`
of each.

:func:`normalize_metadata` is a row of small named checks, one per field or field group, in
a fixed order: a request with two faults gets the error of the first. Each raises
:class:`RegistrationError` (``invalid_client_metadata`` or ``invalid_redirect_uri``) whose
description names the field. The registration use case (the initial access token, the body's
bounds, what a developer may register alone, storing the client) is
:mod:`authserver.services.registration`.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from authserver import store
from authserver.smart.client_types import AuthMethod, GrantType
from authserver.smart.grammar import ScopeError, parse_scopes
from authserver.urls import is_loopback_host, origin_of

__all__ = [
    "AUTH_METHODS", "GRANT_TYPES", "MAX_REDIRECT_URIS",
    "RegistrationError", "normalize_metadata", "validate_jwks",
]

#: The ``token_endpoint_auth_method`` values registration accepts (the error message lists them).
AUTH_METHODS = tuple(m.value for m in AuthMethod)
#: The ``grant_types`` values registration accepts.
GRANT_TYPES = tuple(g.value for g in GrantType)
#: Private members of a JWK: a client must register public keys only.
_PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
_MAX_JWKS_KEYS = 20
#: Most redirect URIs (and launch URIs) one client may register.
MAX_REDIRECT_URIS = 20
_INFO_URI_FIELDS = ("logo_uri", "client_uri", "policy_uri", "tos_uri")
_MAX_CONTACTS = 10
_MAX_SOFTWARE_FIELD = 200


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


def _bad(description: str) -> RegistrationError:
    return RegistrationError("invalid_client_metadata", description)


def _bad_redirect(description: str) -> RegistrationError:
    return RegistrationError("invalid_redirect_uri", description)


def normalize_metadata(meta: dict[str, Any], kind: str = "app") -> dict[str, Any]:
    """Validate RFC 7591 metadata and fill its defaults; raises RegistrationError.

    A resource server (kind 'resource_server') only authenticates to /introspect: it has
    no grant types, response types or redirect URIs."""
    if not isinstance(meta, dict):
        raise _bad("metadata must be a JSON object")
    out: dict[str, Any] = {"client_name": _check_client_name(meta)}
    out["token_endpoint_auth_method"] = method = _check_auth_method(meta)
    out["grant_types"] = grant_types = _check_grant_types(meta, method, kind)
    out["response_types"] = _check_response_types(meta, grant_types)
    out["redirect_uris"] = _check_redirect_uris(meta, grant_types)
    out["scope"] = _check_scope(meta)
    out.update(_check_keys(meta, method))
    out.update(_check_launch_uris(meta))
    out.update(_check_info_uris(meta))
    out.update(_check_contacts(meta))
    out.update(_check_software(meta))
    _check_no_nul(meta)  # last: the checks above name the field when they can
    return out


# ---- the checks, in the order normalize_metadata runs them ---------------------------

def _check_client_name(meta: dict[str, Any]) -> str:
    name = meta.get("client_name") or "Unnamed app"
    if not isinstance(name, str) or len(name) > 200 or _has_control(name):
        raise _bad("'client_name' must be a short string")
    return name.strip() or "Unnamed app"


def _check_auth_method(meta: dict[str, Any]) -> str:
    method = meta.get("token_endpoint_auth_method", AuthMethod.CLIENT_SECRET_BASIC.value)
    if method not in AUTH_METHODS:  # a tuple: the value may be any JSON, a list included
        raise _bad(f"'token_endpoint_auth_method' must be one of {AUTH_METHODS}")
    return method


def _check_grant_types(meta: dict[str, Any], method: str, kind: str) -> list[str]:
    grant_types = _string_list(meta, "grant_types") or (
        [] if kind == "resource_server" else [GrantType.AUTHORIZATION_CODE.value])
    for g in grant_types:
        if g not in GRANT_TYPES:
            raise _bad(f"grant type '{g}' is unsupported")
    grant_types = list(dict.fromkeys(grant_types))
    if GrantType.CLIENT_CREDENTIALS in grant_types and method == AuthMethod.NONE:
        raise _bad("client_credentials needs an authenticated client")
    return grant_types


def _check_response_types(meta: dict[str, Any], grant_types: list[str]) -> list[str]:
    response_types = _string_list(meta, "response_types") or (
        ["code"] if GrantType.AUTHORIZATION_CODE in grant_types else [])
    if any(r != "code" for r in response_types):
        raise _bad("only the 'code' response type")
    return response_types


def _check_redirect_uris(meta: dict[str, Any], grant_types: list[str]) -> list[str]:
    listed = _string_list(meta, "redirect_uris")
    if len(listed) > MAX_REDIRECT_URIS:
        raise _bad(f"'redirect_uris' has more than {MAX_REDIRECT_URIS} entries")
    redirect_uris = [_check_redirect_uri(u) for u in listed]
    if GrantType.AUTHORIZATION_CODE in grant_types and not redirect_uris:
        raise _bad_redirect("at least one redirect URI is required")
    return list(dict.fromkeys(redirect_uris))


def _check_scope(meta: dict[str, Any]) -> str:
    scope = meta.get("scope") or ""
    if not isinstance(scope, str):
        raise _bad("'scope' must be a string")
    try:
        return " ".join(s.raw for s in parse_scopes(scope))
    except ScopeError as exc:
        raise _bad(str(exc)) from None


def _check_keys(meta: dict[str, Any], method: str) -> dict[str, Any]:
    """``jwks`` or ``jwks_uri`` (never both); ``private_key_jwt`` needs one of them."""
    if meta.get("jwks") and meta.get("jwks_uri"):
        raise _bad("'jwks' and 'jwks_uri' are exclusive")
    out: dict[str, Any] = {}
    if meta.get("jwks"):
        out["jwks"] = validate_jwks(meta["jwks"])
    if meta.get("jwks_uri"):
        out["jwks_uri"] = _check_https_url("jwks_uri", meta["jwks_uri"])
    if method == AuthMethod.PRIVATE_KEY_JWT and not out:
        raise _bad("private_key_jwt needs 'jwks' or 'jwks_uri'")
    return out


def _check_launch_uris(meta: dict[str, Any]) -> dict[str, Any]:
    """SMART EHR launch URIs: ``launch_uris`` and the single ``launch_uri``, https."""
    listed = _string_list(meta, "launch_uris") + (
        [meta["launch_uri"]] if meta.get("launch_uri") else [])
    if len(listed) > MAX_REDIRECT_URIS:
        raise _bad(f"'launch_uris' has more than {MAX_REDIRECT_URIS} entries")
    launch_uris = [_check_https_url("launch_uri", u) for u in listed]
    return {"launch_uris": list(dict.fromkeys(launch_uris))} if launch_uris else {}


def _check_info_uris(meta: dict[str, Any]) -> dict[str, Any]:
    """The pages shown to people: logo, home page, privacy policy, terms of service."""
    return {field: _check_https_url(field, meta[field])
            for field in _INFO_URI_FIELDS if meta.get(field)}


def _check_contacts(meta: dict[str, Any]) -> dict[str, Any]:
    contacts = _string_list(meta, "contacts")
    return {"contacts": contacts[:_MAX_CONTACTS]} if contacts else {}


def _check_software(meta: dict[str, Any]) -> dict[str, Any]:
    """``software_id`` and ``software_version``: kept when strings, cut to a bound."""
    return {field: meta[field][:_MAX_SOFTWARE_FIELD]
            for field in ("software_id", "software_version") if isinstance(meta.get(field), str)}


def _check_no_nul(meta: dict[str, Any]) -> None:
    """No NUL in any string of the metadata, keys included (PostgreSQL refuses it in text:
    bad input, not a 500). Iterative: no recursion on hostile input."""
    stack: list[Any] = [meta]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise _bad("metadata must not contain NUL characters")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


# ---- the value checks the field checks share -----------------------------------------

def _has_control(text: str) -> bool:
    """Control characters (C0, DEL): never in a URI (RFC 3986 §2) or a display name."""
    return any(ord(c) < 0x20 or ord(c) == 0x7F for c in text)


def _string_list(meta: dict[str, Any], field: str) -> list[str]:
    value = meta.get(field) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(f"'{field}' must be a list of strings")
    return value


def _check_redirect_uri(uri: Any) -> str:
    if not isinstance(uri, str) or not uri or len(uri) > 2000:
        raise _bad_redirect("Each redirect URI must be a string")
    if _has_control(uri) or " " in uri:
        raise _bad_redirect("a redirect URI must not contain spaces or control characters")
    try:
        parts = urlsplit(uri)
    except ValueError:
        raise _bad_redirect(f"'{uri}' is not a URI") from None
    if parts.fragment or "#" in uri:
        # RFC 6749 §3.1.2: "The endpoint URI MUST NOT include a fragment component."
        raise _bad_redirect(f"'{uri}' must not have a fragment")
    if not parts.scheme:
        raise _bad_redirect(f"'{uri}' is not an absolute URI")
    if parts.scheme in ("http", "https"):
        _check_web_redirect(uri, parts.scheme, parts.hostname)
    elif parts.scheme in ("javascript", "data", "file", "vbscript"):
        raise _bad_redirect(f"'{uri}' uses a forbidden scheme")
    elif "." not in parts.scheme:
        # RFC 8252 §7.1: private-use schemes are reverse domain names.
        raise _bad_redirect(f"'{uri}': a private-use scheme must be a reverse domain name")
    return uri


def _check_web_redirect(uri: str, scheme: str, host: str | None) -> None:
    if not host:
        raise _bad_redirect(f"'{uri}' has no host")
    if scheme == "http" and not is_loopback_host(host):
        # RFC 9700 §2.1 / RFC 8252 §8.3: plain http only for loopback redirects.
        raise _bad_redirect(f"'{uri}' must use https (http only for loopback)")
    origin = origin_of(uri)
    if origin is None or len(origin) > store.clients.ORIGIN_MAX_LENGTH:
        raise _bad_redirect(f"'{uri}' has an unusable host")


def _check_https_url(field: str, url: Any) -> str:
    if not isinstance(url, str) or len(url) > 2000 or _has_control(url) or " " in url:
        raise _bad(f"'{field}' must be a URL")
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and is_loopback_host(parts.hostname):
        return url
    raise _bad(f"'{field}' must be an https URL (http only for loopback)")


def validate_jwks(jwks: Any) -> dict[str, Any]:
    """A JWK Set of public keys, each with ``kty`` and ``kid``; raises RegistrationError."""
    if isinstance(jwks, str):
        try:
            jwks = json.loads(jwks)
        except ValueError:
            raise _bad("'jwks' is not JSON") from None
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        raise _bad("'jwks' must be {\"keys\": [...]}")
    if len(jwks["keys"]) > _MAX_JWKS_KEYS:
        raise _bad("'jwks' has too many keys")
    kids: set[str] = set()
    for key in jwks["keys"]:
        kid = _check_public_jwk(key)
        if kid in kids:
            raise _bad(f"duplicate kid '{kid}'")
        kids.add(kid)
    return {"keys": jwks["keys"]}


def _check_public_jwk(key: Any) -> str:
    """One key of a registered JWK Set: a public RSA or EC key with a ``kid``; returns it."""
    if not isinstance(key, dict):
        raise _bad("'jwks' keys must be objects")
    if _PRIVATE_MEMBERS & key.keys():
        raise _bad("'jwks' must contain public keys only")
    kty, kid = key.get("kty"), key.get("kid")
    if kty not in ("RSA", "EC") or not isinstance(kid, str) or not kid:
        raise _bad("each key in 'jwks' needs 'kty' (RSA or EC) and 'kid'")
    needed = ("n", "e") if kty == "RSA" else ("crv", "x", "y")
    if not all(isinstance(key.get(m), str) for m in needed):
        raise _bad(f"key '{kid}' lacks {', '.join(needed)}")
    try:
        from joserfc.jwk import KeySet

        if KeySet.import_key_set({"keys": [key]}).keys[0].is_private:
            raise ValueError("private key")
    except Exception:  # any parse failure is the client's bad input
        raise _bad(f"key '{kid}' is not a valid public key") from None
    return kid
