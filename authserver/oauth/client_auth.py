"""``private_key_jwt``: asymmetric client authentication, as SMART profiles it.

- RFC 7523 §2.2 and §3 (JWT for client authentication)
  https://www.rfc-editor.org/rfc/rfc7523#section-3
- SMART App Launch 2.2, client-confidential-asymmetric
  https://hl7.org/fhir/smart-app-launch/client-confidential-asymmetric.html
- RFC 9111 §5.2.2 (Cache-Control response directives), for the client's ``jwks_uri``.

Authlib's :class:`JWTBearerClientAssertion` (registered by Authlib as
``client_assertion_jwt``) is subclassed and registered under the name SMART and
discovery use, ``private_key_jwt``. Its ``__call__`` resolves the key from the client
alone and lets joserfc pick the algorithm; SMART needs the header's ``kid``, ``alg`` and
``jku`` to choose exactly one key, so ``__call__`` is re-written here as a row of small
named checks, each refusing with ``invalid_client`` and a description naming the rule.
Signatures are checked by :func:`authserver.keys.verify_compact` (never ``none``/HS*).

The method works for every endpoint that authenticates clients (token, introspection,
revocation): see :meth:`PrivateKeyJWT.get_audiences` for the ``aud`` each accepts.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from flask import current_app, has_app_context, has_request_context
from flask import request as flask_request

from authserver import keys
from authserver.oauth import storage
from authserver.oauth.registration import is_loopback_host

__all__ = ["ASSERTION_TYPE", "JwksError", "JwksFetcher", "PrivateKeyJWT"]

log = logging.getLogger(__name__)

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

#: Paths (relative to the issuer) whose own URL is also accepted as an assertion ``aud``.
_OWN_AUDIENCE_PATHS = ("/introspect", "/revoke")


class JwksError(Exception):
    """The client's ``jwks_uri`` could not be used; the message is safe to show the client."""


# ---- the client's JWKS: fetched, cached as its Cache-Control allows ------------------

@dataclass
class _Cached:
    jwks: dict[str, Any]
    expires: float  # monotonic


def _max_age(cache_control: str | None, age: str | None, default: float) -> float:
    """Seconds a response may be reused, per its Cache-Control (RFC 9111 §5.2.2)."""
    if cache_control is None:
        # No directive: RFC 9111 §4.2.2 allows heuristic freshness; we use a short default.
        return default
    lifetime: float | None = None
    for part in cache_control.split(","):
        name, _, value = part.strip().partition("=")
        name = name.strip().lower()
        if name in ("no-store", "no-cache"):
            return 0.0
        if name == "max-age":
            try:
                lifetime = max(0.0, float(int(value.strip().strip('"'))))
            except ValueError:
                return 0.0  # RFC 9111 §4.2.1: an invalid max-age means stale
    if lifetime is None:
        return default
    try:
        lifetime -= max(0, int(age or 0))
    except ValueError:
        pass
    return max(0.0, lifetime)


class JwksFetcher:
    """Fetches clients' JWK Sets from their registered ``jwks_uri`` and caches them per
    process, never longer than the response's Cache-Control allows."""

    #: Whole-download deadline, seconds (connect + read).
    TIMEOUT = 5.0
    #: Largest JWKS document accepted, bytes.
    MAX_BYTES = 64 * 1024
    #: Most keys read from one document.
    MAX_KEYS = 100
    #: Cache lifetime when the response says nothing (no Cache-Control), seconds.
    DEFAULT_TTL = 300.0
    #: Upper bound on any cache lifetime, seconds.
    MAX_TTL = 3600.0
    #: An unknown ``kid`` triggers a fresh download at most this often per client, seconds.
    REFETCH_INTERVAL = 60.0
    #: Clients whose keys are cached at once (least recently used dropped).
    MAX_ENTRIES = 1000

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[str, str], _Cached] = OrderedDict()
        self._refetched: dict[str, float] = {}

    def cached(self, client_id: str, uri: str) -> dict[str, Any] | None:
        with self._lock:
            hit = self._cache.get((client_id, uri))
            if hit is None or hit.expires <= self._clock():
                return None
            self._cache.move_to_end((client_id, uri))
            return hit.jwks

    def may_refetch(self, client_id: str) -> bool:
        """True (and remembered) when an unknown-``kid`` refetch is allowed for the client."""
        now = self._clock()
        with self._lock:
            last = self._refetched.get(client_id)
            if last is not None and now - last < self.REFETCH_INTERVAL:
                return False
            self._refetched[client_id] = now
            if len(self._refetched) > self.MAX_ENTRIES:
                self._refetched = {k: v for k, v in self._refetched.items()
                                   if now - v < self.REFETCH_INTERVAL}
            return True

    def fetch(self, client_id: str, uri: str) -> dict[str, Any]:
        """Download the JWKS now and cache it as allowed; raises :class:`JwksError`."""
        jwks, ttl = self._download(uri)
        with self._lock:
            key = (client_id, uri)
            if ttl > 0:
                self._cache[key] = _Cached(jwks, self._clock() + min(ttl, self.MAX_TTL))
                self._cache.move_to_end(key)
                while len(self._cache) > self.MAX_ENTRIES:
                    self._cache.popitem(last=False)
            else:
                self._cache.pop(key, None)
        return jwks

    def _download(self, uri: str) -> tuple[dict[str, Any], float]:
        parts = urlsplit(uri)
        if not (parts.scheme == "https" and parts.hostname) and not (
                parts.scheme == "http" and is_loopback_host(parts.hostname)):
            # SMART: the JWKS URL is fetched over TLS; plain http only for loopback.
            raise JwksError("'jwks_uri' must be https (http only for loopback hosts)")
        allow_private = has_app_context() and current_app.config.get(
            "JWKS_ALLOW_PRIVATE_NETWORKS")
        if not allow_private and not address_allowed(parts.hostname):
            raise JwksError("'jwks_uri' resolves to a private or reserved address")
        deadline = time.monotonic() + self.TIMEOUT
        body = bytearray()
        try:
            with requests.get(uri, stream=True, allow_redirects=False,
                              timeout=(self.TIMEOUT, self.TIMEOUT),
                              headers={"Accept": "application/json",
                                       "Accept-Encoding": "identity"}) as resp:
                if resp.status_code != 200:
                    raise JwksError(f"'jwks_uri' answered HTTP {resp.status_code}")
                declared = resp.headers.get("Content-Length", "")
                if declared.isdigit() and int(declared) > self.MAX_BYTES:
                    raise JwksError("'jwks_uri' document is too large")
                for chunk in resp.iter_content(8192):
                    body += chunk
                    if len(body) > self.MAX_BYTES:
                        raise JwksError("'jwks_uri' document is too large")
                    if time.monotonic() > deadline:
                        raise JwksError("'jwks_uri' did not answer in time")
                ttl = _max_age(resp.headers.get("Cache-Control"), resp.headers.get("Age"),
                               self.DEFAULT_TTL)
        except requests.Timeout:
            raise JwksError("'jwks_uri' did not answer in time") from None
        except requests.RequestException:
            raise JwksError("'jwks_uri' could not be fetched") from None
        try:
            doc = json.loads(bytes(body).decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise JwksError("'jwks_uri' did not return JSON") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
            raise JwksError("'jwks_uri' did not return a JWK Set")
        return {"keys": [k for k in doc["keys"][: self.MAX_KEYS] if isinstance(k, dict)]}, ttl


def address_allowed(host: str) -> bool:
    """SSRF guard: may we connect to ``host``? Every address it resolves to must be global
    (no private, link-local — e.g. the cloud metadata 169.254.169.254 —, reserved,
    multicast or unspecified address); loopback stays allowed, as the SMART rules allow
    http there for development. A name that does not resolve is left to the fetch to fail.
    (Checked before connecting; a DNS answer that changes between this check and the
    connection is not covered.)"""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return True
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if ip.is_loopback:
            continue
        if not ip.is_global or ip.is_multicast:
            return False
    return True


# ---- the client authentication method ------------------------------------------------

_KTY_OF_ALG = {"RS256": "RSA", "RS384": "RSA", "ES256": "EC", "ES384": "EC"}


class PrivateKeyJWT(JWTBearerClientAssertion):
    """SMART ``private_key_jwt`` (RFC 7523 client assertion) for any endpoint."""

    CLIENT_AUTH_METHOD = "private_key_jwt"
    #: SMART: servers SHALL support RS384 and ES384; RS256/ES256 are accepted too.
    #: Never ``none`` and never HS* (a public key used as an HMAC secret).
    ALGORITHMS = ("RS384", "ES384", "RS256", "ES256")
    #: SMART: "exp ... no more than five minutes in the future".
    MAX_LIFETIME = 300
    #: Clock skew allowed on ``exp`` (both ways) and ``nbf``, seconds.
    LEEWAY = 30
    MAX_ASSERTION_LENGTH = 16 * 1024
    MAX_JTI_LENGTH = 255  # the ClientAssertionJti.jti column
    #: Expired jti rows are deleted at most this often per process, seconds.
    PRUNE_INTERVAL = 60.0

    def __init__(self, fetcher: JwksFetcher | None = None) -> None:
        super().__init__(validate_jti=True, leeway=self.LEEWAY)
        self.fetcher = fetcher or JwksFetcher()
        self._pruned_at = 0.0

    # -- the checks, in order ----------------------------------------------------------

    def __call__(self, query_client: Callable[[str], Any], request: Any) -> Any:
        form = request.form
        assertion = form.get("client_assertion")
        assertion_type = form.get("client_assertion_type")
        if not assertion and not assertion_type:
            return None  # not this method: let the next one try
        fail = _failer(request)
        # RFC 6749 §3.2: request parameters MUST NOT be included more than once.
        if len(form.getlist("client_assertion")) > 1 or len(
                form.getlist("client_assertion_type")) > 1:
            raise fail("'client_assertion' and 'client_assertion_type' must be sent once")
        if assertion_type != ASSERTION_TYPE:
            raise fail(f"'client_assertion_type' must be '{ASSERTION_TYPE}'")
        if not assertion:
            raise fail("Missing 'client_assertion'")
        if len(assertion) > self.MAX_ASSERTION_LENGTH:
            raise fail("'client_assertion' is too long")
        try:
            header, claims = self.extract_assertion(assertion)
        except InvalidClientError:
            raise fail("'client_assertion' is not a signed JWT") from None
        alg = self._check_header(header, fail)
        client_id = self._check_identity(claims, form.get("client_id"), fail)
        client = query_client(client_id)
        if client is None:
            raise fail("assertion 'sub': unknown client")
        if not client.check_endpoint_auth_method(self.CLIENT_AUTH_METHOD, "token"):
            raise fail("the client is not registered for 'private_key_jwt'")
        key_set = self.resolve_client_public_key(client, header, fail)
        request.client = client
        self.process_assertion_claims(assertion, key_set, alg=alg, fail=fail)
        return self.authenticate_client(client)

    def _check_header(self, header: dict[str, Any], fail: Callable[[str], Exception]) -> str:
        alg = header.get("alg")
        if alg not in self.ALGORITHMS:
            # SMART: the AS SHALL support RS384 and ES384; never 'none', never a MAC.
            raise fail(f"assertion 'alg' must be one of {', '.join(self.ALGORITHMS)}")
        typ = header.get("typ")
        # SMART: header "typ": fixed value "JWT" (RFC 7515 §4.1.9: compared case-insensitively).
        if not isinstance(typ, str) or typ.upper() != "JWT":
            raise fail("assertion header 'typ' must be 'JWT'")
        kid = header.get("kid")
        # SMART: "kid: the identifier of the key-pair used to sign this JWT" (REQUIRED).
        if not isinstance(kid, str) or not kid:
            raise fail("assertion header 'kid' is required")
        return alg

    def _check_identity(self, claims: dict[str, Any], form_client_id: Any,
                        fail: Callable[[str], Exception]) -> str:
        iss, sub = claims.get("iss"), claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise fail("assertion 'sub' is required")
        if not isinstance(iss, str) or not iss:
            raise fail("assertion 'iss' is required")
        # RFC 7523 §3 and SMART: iss and sub MUST both be the client_id.
        if iss != sub:
            raise fail("assertion 'iss' must equal 'sub'")
        # SMART: "client_id (if sent) must be known and equal iss".
        if form_client_id is not None and form_client_id != sub:
            raise fail("assertion 'sub' must equal the 'client_id' parameter")
        return sub

    # -- Authlib hooks ---------------------------------------------------------------

    def get_audiences(self) -> list[str]:
        """The ``aud`` values accepted.

        SMART says the assertion's ``aud`` is the token endpoint URL, and that is accepted
        at every endpoint. RFC 7523 §3 only asks that ``aud`` identify this server, so the
        issuer identifier is accepted too: draft-ietf-oauth-rfc7523bis makes it THE audience
        (it names no endpoint an attacker could share with another server), and widely used
        clients (openid-client) send it by default. At /introspect and /revoke the
        endpoint's own URL is accepted as well (some clients address the endpoint they call).
        """
        issuer = current_app.config["ISSUER"]
        audiences = [issuer + "/token", issuer]
        if has_request_context() and flask_request.path in _OWN_AUDIENCE_PATHS:
            audiences.append(issuer + flask_request.path)
        return audiences

    def resolve_client_public_key(self, client: Any, header: dict[str, Any] | None = None,
                                  fail: Callable[[str], Exception] | None = None
                                  ) -> dict[str, Any]:
        """A JWK Set holding exactly the one key matching ``kid`` and the ``alg``'s type."""
        fail = fail or _failer(None)
        header = header or {}
        meta = client.row.client_metadata or {}
        uri = meta.get("jwks_uri")
        jku = header.get("jku")
        if jku is not None and (not uri or jku != uri):
            # SMART: a jku header MUST equal the registered JWKS URL; never fetch another.
            raise fail("assertion header 'jku' must equal the registered 'jwks_uri'")
        kid, kty = header.get("kid"), _KTY_OF_ALG.get(header.get("alg", ""))
        if not uri:
            matches = _matching(meta.get("jwks"), kid, kty)
        else:
            client_id = client.get_client_id()
            try:
                jwks = self.fetcher.cached(client_id, uri)
                fresh = jwks is None
                if fresh:
                    jwks = self.fetcher.fetch(client_id, uri)
                matches = _matching(jwks, kid, kty)
                if not matches and not fresh and self.fetcher.may_refetch(client_id):
                    # An unknown kid may mean the client rotated its keys: look again,
                    # at most once a minute per client.
                    matches = _matching(self.fetcher.fetch(client_id, uri), kid, kty)
            except JwksError as exc:
                raise fail(f"the client's keys are unavailable: {exc}") from None
        # SMART: "select exactly one key with matching kid and kty"; 0 or >1 fails.
        if not matches:
            raise fail("no key of the client matches the assertion 'kid' and 'alg'")
        if len(matches) > 1:
            raise fail("more than one key of the client matches the assertion 'kid'")
        return {"keys": matches}

    def process_assertion_claims(self, assertion: str, resolve_key: Any, *, alg: str = "",
                                 fail: Callable[[str], Exception] | None = None
                                 ) -> dict[str, Any]:
        fail = fail or _failer(None)
        try:
            _header, claims = keys.verify_compact(assertion, resolve_key, [alg])
        except keys.TokenError as exc:
            reason = "signature is invalid" if "signature" in str(exc) else str(exc)
            raise fail(f"assertion {reason}") from None
        self.verify_claims(claims, fail)
        return claims

    def verify_claims(self, claims: Any, fail: Callable[[str], Exception] | None = None
                      ) -> None:
        fail = fail or _failer(None)
        now = storage.now()
        exp = claims.get("exp")
        if not _is_number(exp):
            raise fail("assertion 'exp' is required")
        if exp <= now - self.leeway:
            raise fail("assertion has expired ('exp')")
        if exp > now + self.MAX_LIFETIME + self.leeway:
            # SMART: exp "no more than five minutes in the future".
            raise fail("assertion 'exp' is more than 5 minutes in the future")
        nbf = claims.get("nbf")
        if nbf is not None and (not _is_number(nbf) or nbf > now + self.leeway):
            raise fail("assertion is not valid yet ('nbf')")
        aud = claims.get("aud")
        auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        # RFC 7523 §3: aud MUST identify this server; SMART: the token endpoint URL.
        if not set(self.get_audiences()).intersection(a for a in auds if isinstance(a, str)):
            raise fail("assertion 'aud' must be the token endpoint URL (or the issuer)")
        if claims.get("sub") != claims.get("iss"):
            raise fail("assertion 'iss' must equal 'sub'")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise fail("assertion 'jti' is required")
        if len(jti) > self.MAX_JTI_LENGTH:
            raise fail("assertion 'jti' is too long")
        if not self.validate_jti(claims, jti):
            # RFC 7523 §3: the server MAY refuse a replayed jti; SMART: it SHALL.
            raise fail("assertion 'jti' was already used")

    def validate_jti(self, claims: dict[str, Any], jti: str) -> bool:
        """Remember the ``jti`` in the database (unique per client) while the assertion
        could still be accepted; False when it was seen before."""
        now = time.monotonic()
        if now - self._pruned_at > self.PRUNE_INTERVAL:
            self._pruned_at = now
            storage.prune_assertion_jtis()
        return storage.claim_assertion_jti(claims["iss"], jti, int(claims["exp"]) + self.leeway)

    def authenticate_client(self, client: Any) -> Any:
        return client  # its method was checked before any key was fetched


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _matching(jwks: Any, kid: Any, kty: str | None) -> list[dict[str, Any]]:
    keys_ = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys_, list):
        return []
    return [k for k in keys_ if isinstance(k, dict) and k.get("kid") == kid
            and k.get("kty") == kty]


def _failer(request: Any) -> Callable[[str], Exception]:
    """Build ``invalid_client`` errors: 401 when the client used HTTP authentication
    (RFC 6749 §5.2), else 400."""
    headers = getattr(request, "headers", None) or {}
    status = 401 if headers.get("Authorization") else 400

    def fail(description: str) -> Exception:
        log.info("private_key_jwt refused: %s", description)
        return InvalidClientError(description=description, status_code=status)

    return fail
