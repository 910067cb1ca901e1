"""``private_key_jwt``: asymmetric client authentication, as SMART profiles it.

- RFC 7523 §2.2 and §3 (JWT for client authentication)
  https://www.rfc-editor.org/rfc/rfc7523#section-3
- SMART App Launch 2.2, client-confidential-asymmetric
  https://hl7.org/fhir/smart-app-launch/client-confidential-asymmetric.html

Authlib's :class:`JWTBearerClientAssertion` (registered by Authlib as
``client_assertion_jwt``) is subclassed and registered under the name SMART and
discovery use, ``private_key_jwt``. Its ``__call__`` resolves the key from the client
alone and lets joserfc pick the algorithm; SMART needs the header's ``kid``, ``alg`` and
``jku`` to choose exactly one key, so ``__call__`` is re-written here as a row of small
named checks, each refusing with ``invalid_client`` and a description naming the rule.
Signatures are checked by :func:`authserver.jose.verify_compact` (never ``none``/HS*).

The method works for every endpoint that authenticates clients (token, introspection,
revocation): see :meth:`PrivateKeyJWT.get_audiences` for the ``aud`` each accepts.

A client's ``jwks_uri`` is fetched by :class:`.jwks_fetcher.JwksFetcher` so that a slow,
hanging or failing one costs that client only, and the client learns nothing of what
answered there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from flask import current_app, has_request_context
from flask import request as flask_request

from authserver import clock, jose, store
from authserver.oauth.rfc7523.jwks_fetcher import JwksError, JwksFetcher
from authserver.smart.client_types import AuthMethod
from authserver.smart.configuration import Features

__all__ = ["ASSERTION_TYPE", "PrivateKeyJWT"]

log = logging.getLogger(__name__)

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

#: Paths (relative to the issuer) whose own URL is also accepted as an assertion ``aud``.
_OWN_AUDIENCE_PATHS = ("/introspect", "/revoke")

_KTY_OF_ALG = {"RS256": "RSA", "RS384": "RSA", "ES256": "EC", "ES384": "EC"}


class PrivateKeyJWT(JWTBearerClientAssertion):
    """SMART ``private_key_jwt`` (RFC 7523 client assertion) for any endpoint."""

    CLIENT_AUTH_METHOD = AuthMethod.PRIVATE_KEY_JWT.value
    #: SMART: servers SHALL support RS384 and ES384; RS256/ES256 are accepted too.
    #: Never ``none`` and never HS* (a public key used as an HMAC secret).
    ALGORITHMS = ("RS384", "ES384", "RS256", "ES256")
    FEATURES = Features(auth_methods={CLIENT_AUTH_METHOD}, auth_signing_algs=set(ALGORITHMS),
                        capabilities={"client-confidential-asymmetric"})
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
            try:
                # An unknown kid may mean the client rotated its keys: the fetcher looks
                # again, at most once a minute per client.
                jwks = self.fetcher.key_set(client.get_client_id(), uri,
                                            lambda s: bool(_matching(s, kid, kty)))
            except JwksError as exc:
                # Never the host, port, status or content: the client learns only this.
                raise fail(str(exc)) from None
            matches = _matching(jwks, kid, kty)
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
            _header, claims = jose.verify_compact(assertion, resolve_key, [alg])
        except jose.TokenError as exc:
            reason = "signature is invalid" if "signature" in str(exc) else str(exc)
            raise fail(f"assertion {reason}") from None
        self.verify_claims(claims, fail)
        return claims

    def verify_claims(self, claims: Any, fail: Callable[[str], Exception] | None = None
                      ) -> None:
        fail = fail or _failer(None)
        now = clock.now()
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
            store.jti.prune_assertion_jtis()
        return store.jti.claim_assertion_jti(claims["iss"], jti, int(claims["exp"]) + self.leeway)

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
