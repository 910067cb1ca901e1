"""The resource-server kit (authserver.resource) against a real local HTTP issuer.

RFC 9068 §4 (what a resource server checks), RFC 7662 (introspection mode), RFC 6750 §3
(challenges), SMART App Launch 2.2 scopes (compartments, granular category scopes).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from authserver import jose, keys
from authserver.resource import (
    AuthorizationServerUnavailable,
    Introspection,
    TokenInvalid,
    TokenValidator,
    bearer_token,
    patient_of,
    www_authenticate,
)

AUD = "https://fhir.example.org/r4"
LAB = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"
KEK = keys.load_kek(keys.new_kek())


def _signer(alg: str = "RS256") -> tuple[jose.Signer, keys.KeyRecord]:
    rec = keys.generate_key(alg, KEK, datetime.now(UTC))
    return jose.Signer.from_record(rec, KEK), rec


RSA, RSA_REC = _signer("RS256")
EC, EC_REC = _signer("ES256")


class Issuer:
    """A tiny authorization server: discovery, JWKS and introspection over real HTTP."""

    def __init__(self) -> None:
        self.records = [RSA_REC]
        self.hits: dict[str, int] = {}
        self.introspection: dict = {"active": True}
        self.introspect_status = 200
        self.auth_seen: list[str | None] = []
        self.issuer_override: str | None = None
        self.jwks_cache_control = "public, max-age=300"
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                return None

            def _send(self, status: int, body: dict, cache: str | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                if cache:
                    self.send_header("Cache-Control", cache)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                issuer.hits[self.path] = issuer.hits.get(self.path, 0) + 1
                if self.path == "/.well-known/openid-configuration":
                    self._send(200, {"issuer": issuer.issuer_override or issuer.url,
                                     "jwks_uri": issuer.url + "/jwks",
                                     "introspection_endpoint": issuer.url + "/introspect"})
                elif self.path == "/jwks":
                    self._send(200, keys.jwks(issuer.records), issuer.jwks_cache_control)
                else:
                    self._send(404, {"error": "not_found"})

            def do_POST(self) -> None:
                issuer.hits[self.path] = issuer.hits.get(self.path, 0) + 1
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                issuer.auth_seen.append(self.headers.get("Authorization"))
                self._send(issuer.introspect_status, issuer.introspection)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def token(self, signer: jose.Signer = RSA, typ: str = "at+jwt", **over) -> str:
        t = int(time.time())
        claims = {"iss": self.url, "sub": "42", "aud": AUD, "exp": t + 300, "iat": t,
                  "jti": f"j{t}", "client_id": "app", "scope": "patient/*.rs",
                  "patient": "p1"}
        claims.update(over)
        return signer.sign({k: v for k, v in claims.items() if v is not None}, typ=typ)


@pytest.fixture
def issuer():
    srv = Issuer()
    yield srv
    srv.close()


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _b64(obj: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


# ---- validation ----------------------------------------------------------------------

def test_valid_token_is_accepted_with_its_context(issuer):
    token = TokenValidator(issuer.url, AUD).validate(issuer.token(fhirUser=AUD + "/Patient/p1"))
    assert token.patient == "p1" and token.client_id == "app" and token.subject == "42"
    assert token.scope == "patient/*.rs"
    assert token.fhir_user == AUD + "/Patient/p1"


def test_ec_signed_token_is_accepted(issuer):
    issuer.records = [RSA_REC, EC_REC]
    assert TokenValidator(issuer.url, AUD).validate(issuer.token(EC)).patient == "p1"


def test_audience_matches_with_trailing_slash_and_in_a_list(issuer):
    v = TokenValidator(issuer.url, AUD + "/")
    assert v.validate(issuer.token(aud=["https://other.example", AUD])).patient == "p1"


@pytest.mark.parametrize("typ", ["JWT", "jwt", "at+JWT2", ""])
def test_token_without_at_jwt_typ_is_refused(issuer, typ):
    with pytest.raises(TokenInvalid, match="not an access token"):
        TokenValidator(issuer.url, AUD).validate(issuer.token(typ=typ))


def test_application_at_jwt_typ_is_accepted(issuer):
    assert TokenValidator(issuer.url, AUD).validate(
        issuer.token(typ="application/at+jwt")).patient == "p1"


@pytest.mark.parametrize("over, message", [
    ({"iss": "https://evil.example"}, "another server"),
    ({"aud": "https://other.example/fhir"}, "another server"),
    ({"aud": None}, "another server"),
    ({"exp": int(time.time()) - 600}, "expired"),
    ({"exp": "soon"}, "expired"),
    ({"nbf": int(time.time()) + 600}, "not valid yet"),
    ({"iat": int(time.time()) + 3600}, "'iat'"),
    ({"sub": None}, "'sub'"),
    ({"client_id": None}, "'client_id'"),
])
def test_token_with_bad_claims_is_refused(issuer, over, message):
    with pytest.raises(TokenInvalid, match=message):
        TokenValidator(issuer.url, AUD).validate(issuer.token(**over))


def test_small_clock_skew_is_tolerated(issuer):
    t = int(time.time())
    token = issuer.token(exp=t - 10, nbf=t + 10)
    assert TokenValidator(issuer.url, AUD).validate(token).patient == "p1"
    with pytest.raises(TokenInvalid, match="expired"):
        TokenValidator(issuer.url, AUD, leeway=0).validate(token)


def test_tampered_token_is_refused(issuer):
    header, payload, sig = issuer.token().split(".")
    forged = _b64({**json.loads(base64.urlsafe_b64decode(payload + "==")), "patient": "p2"})
    with pytest.raises(TokenInvalid, match="signature"):
        TokenValidator(issuer.url, AUD).validate(f"{header}.{forged}.{sig}")


@pytest.mark.parametrize("header", [
    {"alg": "none", "kid": RSA.kid, "typ": "at+jwt"},
    {"alg": "HS256", "kid": RSA.kid, "typ": "at+jwt"},
])
def test_unsigned_or_symmetric_token_is_refused(issuer, header):
    token = f"{_b64(header)}.{_b64({'iss': issuer.url})}.c2ln"
    with pytest.raises(TokenInvalid, match="signature"):
        TokenValidator(issuer.url, AUD).validate(token)


@pytest.mark.parametrize("token", ["", "abc", "a.b", "!!!.e30.x", _b64({"kid": 5}) + ".e30.x"])
def test_malformed_token_is_refused(issuer, token):
    with pytest.raises(TokenInvalid):
        TokenValidator(issuer.url, AUD).validate(token)


def test_key_set_is_cached(issuer):
    v = TokenValidator(issuer.url, AUD)
    for _ in range(3):
        v.validate(issuer.token())
    assert issuer.hits["/jwks"] == 1
    assert issuer.hits["/.well-known/openid-configuration"] == 1


def test_rotated_key_is_fetched_on_unknown_kid(issuer):
    mono = Clock()
    v = TokenValidator(issuer.url, AUD, monotonic=mono)
    v.validate(issuer.token())
    new, rec = _signer("RS256")
    issuer.records = [rec, RSA_REC]  # the issuer rotates; the old key stays published
    mono.t += 2  # past the refresh rate limit, well within the cache's max-age
    assert v.validate(issuer.token(new)).patient == "p1"
    assert issuer.hits["/jwks"] == 2
    v.validate(issuer.token(RSA))  # both keys are now held
    assert issuer.hits["/jwks"] == 2


def test_unknown_kid_refetches_at_most_once_per_interval(issuer):
    mono = Clock()
    v = TokenValidator(issuer.url, AUD, monotonic=mono)
    v.validate(issuer.token())
    stranger, _ = _signer("RS256")  # never published
    for _ in range(5):
        with pytest.raises(TokenInvalid):
            v.validate(issuer.token(stranger))
    assert issuer.hits["/jwks"] == 1  # within 1 s of the last fetch: no new fetch
    mono.t += 1.5
    with pytest.raises(TokenInvalid):
        v.validate(issuer.token(stranger))
    assert issuer.hits["/jwks"] == 2


def test_key_set_max_age_is_honoured(issuer):
    issuer.jwks_cache_control = "max-age=10"
    mono = Clock()
    v = TokenValidator(issuer.url, AUD, monotonic=mono)
    v.validate(issuer.token())
    mono.t += 9
    v.validate(issuer.token())
    assert issuer.hits["/jwks"] == 1
    mono.t += 2
    v.validate(issuer.token())
    assert issuer.hits["/jwks"] == 2


def test_discovery_with_another_issuer_is_refused(issuer):
    issuer.issuer_override = "https://evil.example"
    with pytest.raises(AuthorizationServerUnavailable):
        TokenValidator(issuer.url, AUD).validate(issuer.token())


def test_unreachable_issuer_is_unavailable_not_invalid():
    v = TokenValidator("http://127.0.0.1:9", AUD, timeout=0.5)
    token = RSA.sign({"iss": "http://127.0.0.1:9"}, typ="at+jwt")
    with pytest.raises(AuthorizationServerUnavailable):
        v.validate(token)


def test_explicit_jwks_uri_skips_discovery(issuer):
    v = TokenValidator(issuer.url, AUD, jwks_uri=issuer.url + "/jwks")
    v.validate(issuer.token())
    assert "/.well-known/openid-configuration" not in issuer.hits


# ---- introspection mode ----------------------------------------------------------------

def test_introspection_mode_accepts_active_token(issuer):
    issuer.introspection = {"active": True, "client_id": "app", "scope": "patient/*.rs",
                            "patient": "p1", "intent": "summary"}
    v = TokenValidator(issuer.url, AUD, introspection=Introspection("rs", "s3cret"))
    token = v.validate(issuer.token())
    assert token.introspection["intent"] == "summary"
    expected = "Basic " + base64.b64encode(b"rs:s3cret").decode()
    assert issuer.auth_seen == [expected]


def test_introspection_mode_refuses_inactive_token(issuer):
    issuer.introspection = {"active": False}
    v = TokenValidator(issuer.url, AUD, introspection=Introspection("rs", "s"))
    with pytest.raises(TokenInvalid, match="not active"):
        v.validate(issuer.token())


def test_introspection_mode_checks_the_signature_first(issuer):
    v = TokenValidator(issuer.url, AUD, introspection=Introspection("rs", "s"))
    with pytest.raises(TokenInvalid):
        v.validate(issuer.token(iss="https://evil.example"))
    assert "/introspect" not in issuer.hits


def test_introspection_mode_for_another_client_is_refused(issuer):
    issuer.introspection = {"active": True, "client_id": "other-app"}
    v = TokenValidator(issuer.url, AUD, introspection=Introspection("rs", "s"))
    with pytest.raises(TokenInvalid):
        v.validate(issuer.token())


def test_introspection_failure_is_unavailable(issuer):
    issuer.introspect_status = 401
    issuer.introspection = {"error": "invalid_client"}
    v = TokenValidator(issuer.url, AUD, introspection=Introspection("rs", "wrong"))
    with pytest.raises(AuthorizationServerUnavailable):
        v.validate(issuer.token())


def test_introspection_scope_is_authoritative(issuer):
    issuer.introspection = {"active": True, "scope": "patient/Observation.rs"}
    v = TokenValidator(issuer.url, AUD, introspection=Introspection("rs", "s"))
    token = v.validate(issuer.token(scope="patient/*.rs"))
    assert token.access("r", "Observation").allowed
    assert not token.access("r", "Condition").allowed


# ---- scope decisions over a token ------------------------------------------------------

def _obs(pid: str, category: str = "laboratory") -> dict:
    return {"resourceType": "Observation", "id": f"o-{pid}", "subject": {
        "reference": f"Patient/{pid}"}, "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": category}]}]}


def _token(issuer, scope: str, **over):
    return TokenValidator(issuer.url, AUD).validate(issuer.token(scope=scope, **over))


def test_patient_scope_reaches_only_the_patient_in_context(issuer):
    access = _token(issuer, "patient/Observation.rs").access("s", "Observation")
    assert access.allowed
    assert access.permits(_obs("p1")) and not access.permits(_obs("p2"))
    assert not access.permits({"resourceType": "Observation", "id": "x"})  # no subject
    assert not access.permits({"resourceType": "Condition", "subject": {
        "reference": "Patient/p1"}})


def test_patient_scope_without_patient_in_context_allows_nothing(issuer):
    assert not _token(issuer, "patient/*.rs", patient=None).access("r", "Patient").allowed


def test_granular_category_scope_filters_resources(issuer):
    access = _token(issuer, f"patient/Observation.rs?category={LAB}").access("s", "Observation")
    assert access.allowed
    assert access.permits(_obs("p1", "laboratory"))
    assert not access.permits(_obs("p1", "vital-signs"))
    assert access.filter([_obs("p1", "laboratory"), _obs("p1", "vital-signs")]) == [
        _obs("p1", "laboratory")]


def test_strict_search_needs_parameters_inside_the_granular_scope(issuer):
    token = _token(issuer, f"patient/Observation.rs?category={LAB}")
    assert not token.access("s", "Observation", {"patient": ["p1"]}, strict=True).allowed
    assert token.access("s", "Observation", {"category": [LAB]}, strict=True).allowed
    assert token.access("s", "Observation", {"patient": ["p1"]}).allowed  # filtered instead


def test_interaction_outside_the_scope_is_denied(issuer):
    token = _token(issuer, "patient/Observation.rs patient/Patient.r")
    assert not token.access("c", "Observation").allowed
    assert not token.access("s", "Patient").allowed
    assert token.access("read", "Patient").allowed
    assert not token.access("r", "Condition").allowed


def test_v1_scopes_are_understood(issuer):
    token = _token(issuer, "patient/Observation.read user/Condition.write",
                   fhirUser=AUD + "/Practitioner/pr1")
    assert token.access("s", "Observation").allowed
    assert not token.access("u", "Observation").allowed
    assert token.access("u", "Condition").allowed and not token.access("r", "Condition").allowed


def test_user_scope_without_fhir_user_reaches_nothing(issuer):
    token = _token(issuer, "user/*.cruds", patient=None)
    for interaction in ("r", "s", "c", "u", "d"):
        assert not token.access(interaction, "Observation").allowed


def test_user_scope_of_a_patient_user_reaches_their_own_compartment(issuer):
    token = _token(issuer, "user/Observation.rs", patient=None,
                   fhirUser=AUD + "/Patient/p2")
    access = token.access("s", "Observation")
    assert access.permits(_obs("p2")) and not access.permits(_obs("p1"))


def test_user_scope_of_a_practitioner_reaches_every_record(issuer):
    token = _token(issuer, "user/Observation.rs", patient=None,
                   fhirUser=AUD + "/Practitioner/pr1")
    access = token.access("s", "Observation")
    assert access.permits(_obs("p1")) and access.permits(_obs("p2"))
    assert not access.permits(_obs("p1"), user_can_see=lambda r: False)


def test_system_scope_reaches_every_record(issuer):
    access = _token(issuer, "system/Observation.rs", patient=None).access("s", "Observation")
    assert access.permits(_obs("p1")) and access.permits(_obs("p3"))


def test_malformed_scope_in_token_grants_nothing(issuer):
    token = _token(issuer, "patient/Observation.xyz patient/Patient.rs")
    assert not token.access("r", "Observation").allowed
    assert token.access("r", "Patient").allowed


# ---- helpers ---------------------------------------------------------------------------

def test_patient_of_reads_references():
    assert patient_of({"resourceType": "Patient", "id": "p1"}) == "p1"
    assert patient_of({"resourceType": "Encounter", "subject": {
        "reference": "https://fhir.example.org/r4/Patient/p3"}}) == "p3"
    assert patient_of({"resourceType": "AllergyIntolerance", "patient": {
        "reference": "Patient/p2"}}) == "p2"
    assert patient_of({"resourceType": "Observation", "subject": {
        "reference": "Group/g1"}}) is None


def test_bearer_token_parsing():
    assert bearer_token("Bearer abc.def-_~+/=") == "abc.def-_~+/="
    assert bearer_token("bearer  x ") == "x"
    with pytest.raises(TokenInvalid) as missing:
        bearer_token(None)
    assert missing.value.error is None
    for bad in ("Basic abc", "Bearer", "Bearer a b", "Bearer " + "x" * 9000, "Bearer é"):
        with pytest.raises(TokenInvalid):
            bearer_token(bad)


def test_www_authenticate_challenge():
    assert www_authenticate("fhir") == 'Bearer realm="fhir"'
    assert www_authenticate("r", "invalid_token", 'bad "x"') == (
        'Bearer realm="r", error="invalid_token", error_description="bad x"')
    assert www_authenticate(None, "insufficient_scope", None, "patient/*.rs") == (
        'Bearer error="insufficient_scope", scope="patient/*.rs"')
