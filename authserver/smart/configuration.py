"""Discovery documents, built from what the server actually implements.

SMART App Launch 2.2 §Conformance (https://hl7.org/fhir/smart-app-launch/conformance.html)
and OpenID Connect Discovery 1.0 §3. Pure: the caller passes the issuer and the features.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["Features", "smart_configuration", "openid_configuration", "endpoint_urls"]

ENDPOINT_PATHS = {
    "authorization_endpoint": "/authorize",
    "token_endpoint": "/token",
    "introspection_endpoint": "/introspect",
    "revocation_endpoint": "/revoke",
    "userinfo_endpoint": "/userinfo",
    "registration_endpoint": "/register",
    "management_endpoint": "/account",
    "jwks_uri": "/.well-known/jwks.json",
}


@dataclass
class Features:
    """What is implemented. Each component declares its part (``FEATURES``); the server's
    is the :meth:`union` of the parts it registers."""

    capabilities: set[str] = field(default_factory=set)
    grant_types: set[str] = field(default_factory=set)
    auth_methods: set[str] = field(default_factory=set)
    auth_signing_algs: set[str] = field(default_factory=set)
    endpoints: set[str] = field(default_factory=set)
    scopes: set[str] = field(default_factory=set)
    response_types: set[str] = field(default_factory=set)
    code_challenge_methods: set[str] = field(default_factory=set)
    claims: set[str] = field(default_factory=set)
    prompt_values: set[str] = field(default_factory=set)

    @classmethod
    def union(cls, *parts: Features) -> Features:
        out = cls()
        for part in parts:
            for f in fields(cls):
                getattr(out, f.name).update(getattr(part, f.name))
        return out


def endpoint_urls(issuer: str, names: Iterable[str]) -> dict[str, str]:
    # SMART: "All endpoint URLs in it MUST be absolute."
    return {n: issuer + ENDPOINT_PATHS[n] for n in ENDPOINT_PATHS if n in set(names)}


def _sorted(values: Iterable[str]) -> list[str]:
    return sorted(set(values))


def smart_configuration(
    issuer: str, f: Features, access_token_algs: Iterable[str]
) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    if "sso-openid-connect" in f.capabilities:
        # SMART: issuer and jwks_uri are REQUIRED with sso-openid-connect, else omitted.
        doc["issuer"] = issuer
    doc.update(endpoint_urls(issuer, f.endpoints))
    if "sso-openid-connect" not in f.capabilities:
        doc["jwks_uri"] = issuer + ENDPOINT_PATHS["jwks_uri"]  # access tokens are JWTs
    doc["grant_types_supported"] = _sorted(f.grant_types)
    doc["token_endpoint_auth_methods_supported"] = _sorted(f.auth_methods)
    if f.auth_signing_algs:
        doc["token_endpoint_auth_signing_alg_values_supported"] = _sorted(f.auth_signing_algs)
    doc["scopes_supported"] = _sorted(f.scopes)
    doc["response_types_supported"] = _sorted(f.response_types)
    doc["capabilities"] = _sorted(f.capabilities)
    # SMART: MUST include S256 and MUST NOT include plain.
    doc["code_challenge_methods_supported"] = _sorted(f.code_challenge_methods)
    doc["access_token_signing_alg_values_supported"] = _sorted(access_token_algs)
    return doc


def openid_configuration(issuer: str, f: Features, id_token_algs: Iterable[str]) -> dict[str, Any]:
    doc: dict[str, Any] = {"issuer": issuer}
    doc.update(endpoint_urls(issuer, f.endpoints))
    doc.update(
        response_types_supported=_sorted(f.response_types),
        response_modes_supported=["query"],
        subject_types_supported=["public"],
        id_token_signing_alg_values_supported=_sorted(id_token_algs),
        grant_types_supported=_sorted(f.grant_types),
        token_endpoint_auth_methods_supported=_sorted(f.auth_methods),
        scopes_supported=_sorted(f.scopes),
        claims_supported=_sorted(f.claims),
        code_challenge_methods_supported=_sorted(f.code_challenge_methods),
        authorization_response_iss_parameter_supported=True,
    )
    if f.auth_signing_algs:
        doc["token_endpoint_auth_signing_alg_values_supported"] = _sorted(f.auth_signing_algs)
    if f.prompt_values:
        # OpenID Connect Prompt Create 1.0 §4.1 / RFC 8414 registry: prompt_values_supported.
        doc["prompt_values_supported"] = _sorted(f.prompt_values)
    return doc
