"""The shared RFC 9068 §4 checks (authserver.access_tokens) and the unverified header decode
(authserver.jose.unverified_header), with both callers' parameters: the resource kit's
defaults (messages matter) and the authorization server's (integer times, no nbf/iat clock
check, bounded jti/client_id/sub)."""

from __future__ import annotations

import base64
import json

import pytest

from authserver import jose
from authserver.access_tokens import (
    MAX_KID_LENGTH,
    AccessTokenRejected,
    check_access_token_claims,
    key_id,
)
from authserver.oauth.rfc9068 import OUR_STRING_CLAIMS

ISS = "https://as.example"
AUD = "https://fhir.example/r4"
NOW = 1_000_000
HEADER = {"alg": "RS256", "kid": "k1", "typ": "at+jwt"}


def claims(**over) -> dict:
    base = {"iss": ISS, "aud": AUD, "exp": NOW + 300, "iat": NOW, "sub": "42",
            "client_id": "app", "jti": "j1", "scope": "patient/*.rs"}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def resource(header: dict, body: dict, leeway: float = 30) -> None:
    check_access_token_claims(header, body, issuer=ISS, now=NOW, audiences={AUD}, leeway=leeway)


def ours(header: dict, body: dict) -> None:
    check_access_token_claims(header, body, issuer=ISS, now=NOW, integer_times=True,
                              check_not_before=False, strings=OUR_STRING_CLAIMS)


# ---- accepted ------------------------------------------------------------------------

@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt", "Application/At+JWT"])
def test_access_token_types_are_accepted_ignoring_case(typ):
    resource({**HEADER, "typ": typ}, claims())
    ours({**HEADER, "typ": typ}, claims())


@pytest.mark.parametrize("aud", [AUD, AUD + "/", ["https://other.example", AUD + "/"]])
def test_audience_is_one_of_ours_trailing_slash_ignored(aud):
    resource(HEADER, claims(aud=aud))
    check_access_token_claims(HEADER, claims(aud="https://x/"), issuer=ISS, now=NOW,
                              audiences=["https://x"])


def test_leeway_applies_to_exp_nbf_and_iat():
    resource(HEADER, claims(exp=NOW - 29, nbf=NOW + 30, iat=NOW + 30))


def test_resource_kit_accepts_fractional_times_and_tokens_without_jti_or_scope():
    resource(HEADER, claims(exp=NOW + 0.5, iat=NOW - 0.5, nbf=float(NOW), jti=None, scope=None),
             leeway=0)


def test_resource_kit_strings_have_no_bound():
    resource(HEADER, claims(sub="s" * 1000, client_id="c" * 1000))


def test_authorization_server_ignores_aud_nbf_and_a_future_iat():
    ours(HEADER, claims(aud=None, nbf=NOW + 3600, iat=NOW + 3600))
    ours(HEADER, claims(nbf="garbage"))


def test_authorization_server_bounds():
    ours(HEADER, claims(jti="j" * 64, client_id="c" * 255, sub="s" * 255))


# ---- refused by the resource kit, with its messages ----------------------------------

@pytest.mark.parametrize("header, body, message", [
    ({**HEADER, "typ": "JWT"}, claims(), "The token is not an access token"),
    ({"alg": "RS256"}, claims(), "The token is not an access token"),
    ({**HEADER, "typ": 5}, claims(), "The token is not an access token"),
    (HEADER, claims(iss=ISS + "/"), "The token was issued by another server"),
    (HEADER, claims(iss=None), "The token was issued by another server"),
    (HEADER, claims(aud="https://other.example"), "The token is for another server"),
    (HEADER, claims(aud=None), "The token is for another server"),
    (HEADER, claims(aud=[5, {"a": AUD}]), "The token is for another server"),
    (HEADER, claims(exp=NOW - 30), "The token has expired"),
    (HEADER, claims(exp="soon"), "The token has expired"),
    (HEADER, claims(exp=True), "The token has expired"),
    (HEADER, claims(exp=None), "The token has expired"),
    (HEADER, claims(nbf=NOW + 31), "The token is not valid yet"),
    (HEADER, claims(nbf="now"), "The token is not valid yet"),
    (HEADER, claims(iat=NOW + 31), "The token has no valid 'iat'"),
    (HEADER, claims(iat=None), "The token has no valid 'iat'"),
    (HEADER, claims(sub=None), "The token has no 'sub'"),
    (HEADER, claims(sub=""), "The token has no 'sub'"),
    (HEADER, claims(sub=None, client_id=None), "The token has no 'sub'"),
    (HEADER, claims(client_id=7), "The token has no 'client_id'"),
    # the first failing check names the error
    ({**HEADER, "typ": "JWT"}, claims(iss="x", exp=0), "The token is not an access token"),
    (HEADER, claims(iss="x", aud="y"), "The token was issued by another server"),
    (HEADER, claims(aud="y", exp=0), "The token is for another server"),
])
def test_resource_kit_refusals_and_messages(header, body, message):
    with pytest.raises(AccessTokenRejected) as exc:
        resource(header, body)
    assert str(exc.value) == message


def test_no_leeway_means_exp_must_be_after_now():
    with pytest.raises(AccessTokenRejected, match="^The token has expired$"):
        resource(HEADER, claims(exp=NOW), leeway=0)
    resource(HEADER, claims(exp=NOW + 1), leeway=0)


# ---- refused by the authorization server ---------------------------------------------

@pytest.mark.parametrize("body, message", [
    (claims(exp=NOW), "The token has expired"),
    (claims(exp=float(NOW + 300)), "The token has expired"),
    (claims(iat=float(NOW)), "The token has no valid 'iat'"),
    (claims(iat=False), "The token has no valid 'iat'"),
    (claims(jti=None), "The token has no 'jti'"),
    (claims(jti="j" * 65), "The token's 'jti' is too long"),
    (claims(client_id="c" * 256), "The token's 'client_id' is too long"),
    (claims(sub="s" * 256), "The token's 'sub' is too long"),
    (claims(sub=""), "The token has no 'sub'"),
])
def test_authorization_server_refusals(body, message):
    with pytest.raises(AccessTokenRejected) as exc:
        ours(HEADER, body)
    assert str(exc.value) == message


# ---- the header, before the signature ------------------------------------------------

def _b64(obj) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


@pytest.mark.parametrize("token, header", [
    (_b64(HEADER) + ".e30.sig", HEADER),
    (_b64({"kid": "k"}) + "==.x.y", {"kid": "k"}),  # padding is tolerated
    ("eyJraWQiOiJhIiwia2lkIjoiYiJ9.x.y", {"kid": "b"}),  # duplicates: verify_compact refuses
    ("e30", {}),
])
def test_unverified_header_decodes_the_first_segment(token, header):
    assert jose.unverified_header(token) == header


@pytest.mark.parametrize("token", ["", "!!!.e30.x", "bm90IGpzb24.e30.x", _b64([1]) + ".e30.x",
                                   _b64("kid") + ".e30.x", "é.e30.x", "W1tbW1s.e30.x"])
def test_unverified_header_is_none_for_anything_but_a_json_object(token):
    assert jose.unverified_header(token) is None


@pytest.mark.parametrize("header, kid", [
    ({"kid": "k1"}, "k1"),
    ({"kid": "k" * MAX_KID_LENGTH}, "k" * MAX_KID_LENGTH),
    ({"kid": "k" * (MAX_KID_LENGTH + 1)}, None),
    ({"kid": ""}, None),
    ({"kid": 5}, None),
    ({}, None),
])
def test_key_id(header, kid):
    assert key_id(header) == kid
