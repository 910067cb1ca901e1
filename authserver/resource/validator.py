"""Validate SMART access tokens at a resource server (a FHIR server).

- RFC 9068 §4 https://www.rfc-editor.org/rfc/rfc9068#section-4: a resource server "MUST
  verify that the typ header value is at+jwt", that ``iss`` is the expected issuer, that
  ``aud`` names it, that the token has not expired, and the signature with the issuer's keys
  (the claim checks are :func:`authserver.access_tokens.check_access_token_claims`, shared
  with the authorization server).
- OpenID Connect Discovery 1.0 §4 / SMART App Launch 2.2 §Conformance: the issuer's metadata
  names ``jwks_uri`` (and ``introspection_endpoint``); its ``issuer`` must equal the one
  configured.
- RFC 7517: the key set is cached (``Cache-Control: max-age``, bounded) and fetched again as
  soon as a token names a ``kid`` it does not hold (a key rotated in at the issuer), at most
  once per :data:`JWKS_MIN_REFRESH_INTERVAL`.
- RFC 7662: in introspection mode every token is also checked with the issuer, so a revoked
  token is refused at once.

Pure: the standard library, ``requests`` for HTTP, :mod:`authserver.jose` for signatures,
:mod:`authserver.access_tokens` for the claims and :mod:`authserver.smart` for scopes. Example::

    validator = TokenValidator("https://auth.example.org", "https://fhir.example.org/r4")
    token = validator.validate(bearer_token(request_headers.get("Authorization")))
    access = token.access("s", "Observation", {"patient": ["p1"]})
    if not access.allowed: ...  # 403
    results = access.filter(candidates)
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from authserver import access_tokens, jose
from authserver.resource.access import Access, decide
from authserver.resource.errors import AuthorizationServerUnavailable, TokenInvalid
from authserver.smart.grammar import Scope, ScopeError, parse_scope

__all__ = [
    "DEFAULT_ALGORITHMS", "DEFAULT_LEEWAY", "JWKS_MAX_AGE",
    "JWKS_MIN_REFRESH_INTERVAL", "AccessToken", "Introspection", "TokenValidator",
]

log = logging.getLogger(__name__)

#: Asymmetric algorithms only: never ``none`` or HS*.
DEFAULT_ALGORITHMS = ("RS256", "RS384", "ES256", "ES384")
#: Clock skew tolerated on ``exp``, ``nbf`` and ``iat`` (seconds).
DEFAULT_LEEWAY = 30
#: Longest a key set is used before it is fetched again (seconds).
JWKS_MAX_AGE = 300.0
#: An unknown ``kid`` fetches the key set again at most this often (seconds).
JWKS_MIN_REFRESH_INTERVAL = 1.0
#: How long the issuer's metadata is kept (seconds).
METADATA_MAX_AGE = 3600.0
#: Timeout of every HTTP call to the issuer (seconds).
HTTP_TIMEOUT = 5.0
#: Where the issuer's metadata is looked for, in order.
METADATA_PATHS = ("/.well-known/openid-configuration", "/.well-known/smart-configuration")

_MAX_AGE = re.compile(r"max-age=(\d+)")


@dataclass(frozen=True)
class Introspection:
    """Introspection mode: this resource server's credentials (``authserver resource-server
    create``); ``endpoint`` defaults to the issuer's ``introspection_endpoint``."""

    client_id: str
    client_secret: str = field(repr=False)
    endpoint: str | None = None


def _scopes_of(text: Any) -> tuple[Scope, ...]:
    out = []
    for token in text.split() if isinstance(text, str) else []:
        try:
            out.append(parse_scope(token))
        except ScopeError:
            continue  # a scope we cannot read grants nothing
    return tuple(out)


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True)
class AccessToken:
    """A validated access token: its claims and the scopes it grants.

    ``introspection`` holds the issuer's introspection response in introspection mode
    (with every launch-context parameter, e.g. ``fhirContext`` and ``intent``).
    """

    claims: Mapping[str, Any]
    scopes: tuple[Scope, ...]
    introspection: Mapping[str, Any] | None = None

    def _get(self, name: str) -> str | None:
        if self.introspection is not None and name in self.introspection:
            return _str_or_none(self.introspection[name])
        return _str_or_none(self.claims.get(name))

    @property
    def scope(self) -> str:
        return " ".join(s.raw for s in self.scopes)

    @property
    def client_id(self) -> str | None:
        return self._get("client_id")

    @property
    def subject(self) -> str | None:
        return self._get("sub")

    @property
    def patient(self) -> str | None:
        """The patient in context (SMART ``patient``), for ``patient/`` scopes."""
        return self._get("patient")

    @property
    def encounter(self) -> str | None:
        return self._get("encounter")

    @property
    def fhir_user(self) -> str | None:
        return self._get("fhirUser")

    @property
    def expires_at(self) -> int | float:
        return self.claims["exp"]

    def access(self, interaction: str, resource_type: str,
               params: Mapping[str, list[str]] | None = None, *, strict: bool = False) -> Access:
        """May this token do ``interaction`` (c, r, u, d, s, or read, search, ...) on
        ``resource_type`` (with these search ``params``)? See :func:`access.decide`."""
        return decide(self.scopes, interaction, resource_type, patient=self.patient,
                      fhir_user=self.fhir_user, params=params, strict=strict)


def _normalize(url: str) -> str:
    return url.rstrip("/")


class TokenValidator:
    """Validates access tokens issued by ``issuer`` for ``audience`` (the FHIR base URL, or
    several). Thread safe; one instance per resource server, created at start-up."""

    def __init__(
        self, issuer: str, audience: str | list[str], *,
        introspection: Introspection | None = None,
        algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS, leeway: int = DEFAULT_LEEWAY,
        jwks_uri: str | None = None, session: requests.Session | None = None,
        timeout: float = HTTP_TIMEOUT, clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        jwks_max_age: float = JWKS_MAX_AGE,
        jwks_min_refresh_interval: float = JWKS_MIN_REFRESH_INTERVAL,
    ) -> None:
        self.issuer = issuer
        self.audiences = {_normalize(a) for a in ([audience] if isinstance(audience, str)
                                                   else audience)}
        self.introspection = introspection
        self.algorithms = tuple(algorithms)
        self.leeway = leeway
        self.timeout = timeout
        self._clock = clock
        self._monotonic = monotonic
        self._http = session or requests.Session()
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._jwks_uri = jwks_uri
        self._jwks: dict[str, Any] | None = None
        self._kids: frozenset[str] = frozenset()
        self._jwks_at = 0.0
        self._jwks_ttl = jwks_max_age
        self._jwks_max_age = jwks_max_age
        self._jwks_min_interval = jwks_min_refresh_interval

    # ---- HTTP -------------------------------------------------------------------------
    def _get_json(self, url: str) -> tuple[dict[str, Any], float | None]:
        try:
            resp = self._http.get(url, timeout=self.timeout,
                                  headers={"Accept": "application/json"})
            body = resp.json() if resp.status_code == 200 else None
        except (requests.RequestException, ValueError) as exc:
            raise AuthorizationServerUnavailable(
                f"cannot fetch {url} ({exc.__class__.__name__})") from None
        if not isinstance(body, dict):
            raise AuthorizationServerUnavailable(f"{url} answered {resp.status_code}")
        m = _MAX_AGE.search(resp.headers.get("Cache-Control", ""))
        return body, float(m.group(1)) if m else None

    def metadata(self) -> dict[str, Any]:
        """The issuer's metadata (OpenID / SMART discovery), cached."""
        with self._lock:
            return self._metadata_locked()

    def _metadata_locked(self) -> dict[str, Any]:
        now = self._monotonic()
        if self._metadata is not None and now - self._metadata_at < METADATA_MAX_AGE:
            return self._metadata
        last: AuthorizationServerUnavailable | None = None
        for path in METADATA_PATHS:
            try:
                doc, _ = self._get_json(_normalize(self.issuer) + path)
            except AuthorizationServerUnavailable as exc:
                last = exc
                continue
            # OIDC Discovery §4.3: "The issuer value returned MUST be identical to the Issuer
            # URL that was directly used to retrieve the configuration information."
            if "issuer" in doc and doc["issuer"] != self.issuer:
                raise AuthorizationServerUnavailable("discovery 'issuer' does not match")
            self._metadata, self._metadata_at = doc, now
            return doc
        raise last or AuthorizationServerUnavailable("no discovery document")

    def _keys_for(self, kid: str) -> dict[str, Any]:
        """The key set, fetched when stale, or when ``kid`` is not in it (rate limited)."""
        with self._lock:
            now = self._monotonic()
            age = now - self._jwks_at
            fresh = self._jwks is not None and age < self._jwks_ttl
            if fresh and (kid in self._kids or age < self._jwks_min_interval):
                return self._jwks  # type: ignore[return-value]
            uri = self._jwks_uri or self._metadata_locked().get("jwks_uri")
            if not isinstance(uri, str) or not uri.startswith(("https://", "http://")):
                raise AuthorizationServerUnavailable("the issuer publishes no jwks_uri")
            try:
                jwks, max_age = self._get_json(uri)
            except AuthorizationServerUnavailable:
                if self._jwks is None:
                    raise
                log.warning("key set refresh failed; keeping the keys held")
                return self._jwks
            self._jwks = jwks
            self._kids = frozenset(k.get("kid") for k in jwks.get("keys", [])
                                   if isinstance(k, dict) and isinstance(k.get("kid"), str))
            self._jwks_at = now
            ttl = self._jwks_max_age if max_age is None else min(max_age, self._jwks_max_age)
            self._jwks_ttl = max(ttl, self._jwks_min_interval)
            return jwks

    # ---- validation ---------------------------------------------------------------------
    def _check_claims(self, header: dict[str, Any], claims: dict[str, Any]) -> None:
        """RFC 9068 §4 with this server's audiences and leeway (any JSON number for the times;
        ``sub`` and ``client_id`` required, unbounded): :mod:`authserver.access_tokens`."""
        try:
            access_tokens.check_access_token_claims(
                header, claims, issuer=self.issuer, now=self._clock(),
                audiences=self.audiences, leeway=self.leeway)
        except access_tokens.AccessTokenRejected as exc:
            raise TokenInvalid(str(exc)) from None

    def _verify_locally(self, token: str) -> dict[str, Any]:
        if not isinstance(token, str) or token.count(".") != 2:
            raise TokenInvalid("The access token is malformed")
        header = jose.unverified_header(token)
        if header is None:
            raise TokenInvalid("The access token is malformed")
        kid = access_tokens.key_id(header)
        if kid is None:
            raise TokenInvalid("The token names no key")
        try:
            header, claims = jose.verify_compact(token, self._keys_for(kid), self.algorithms)
        except jose.TokenError:
            raise TokenInvalid("The token signature is not valid") from None
        self._check_claims(header, claims)
        return claims

    def _introspect(self, token: str) -> dict[str, Any]:
        assert self.introspection is not None
        endpoint = self.introspection.endpoint or self.metadata().get("introspection_endpoint")
        if not isinstance(endpoint, str):
            raise AuthorizationServerUnavailable("the issuer publishes no introspection_endpoint")
        try:
            resp = self._http.post(
                endpoint, data={"token": token, "token_type_hint": "access_token"},
                auth=(self.introspection.client_id, self.introspection.client_secret),
                timeout=self.timeout, headers={"Accept": "application/json"})
            body = resp.json() if resp.status_code == 200 else None
        except (requests.RequestException, ValueError) as exc:
            raise AuthorizationServerUnavailable(
                f"introspection failed ({exc.__class__.__name__})") from None
        if not isinstance(body, dict):
            raise AuthorizationServerUnavailable(f"introspection answered {resp.status_code}")
        if body.get("active") is not True:
            raise TokenInvalid("The access token is not active")
        return body

    def validate(self, token: str) -> AccessToken:
        """The validated token; :class:`TokenInvalid` (401) or
        :class:`AuthorizationServerUnavailable` (503) otherwise."""
        claims = self._verify_locally(token)
        if self.introspection is None:
            return AccessToken(claims, _scopes_of(claims.get("scope")))
        body = self._introspect(token)
        if body.get("client_id", claims["client_id"]) != claims["client_id"]:
            raise TokenInvalid("The access token is not active")
        return AccessToken(claims, _scopes_of(body.get("scope", claims.get("scope"))), body)
