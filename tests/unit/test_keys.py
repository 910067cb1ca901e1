"""Tests for authserver.keys and authserver.jose (RFC 7517/7518/7638 signing keys and compact
JWS)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from authserver import jose
from authserver.jose import SUPPORTED_ALGS, Signer, TokenError, verify_compact
from authserver.keys import (
    KeyConfigError,
    KeyRecord,
    active,
    decrypt_private,
    encrypt_private,
    generate_key,
    jwk_thumbprint,
    jwks,
    load_kek,
    new_kek,
    published,
)
from bench.signing import raw_sign_rate

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def compact(header: dict, payload: dict, signature: bytes = b"") -> str:
    return ".".join(
        [b64(json.dumps(header).encode()), b64(json.dumps(payload).encode()), b64(signature)]
    )


@pytest.fixture(scope="module")
def kek() -> bytes:
    return load_kek(new_kek())


@pytest.fixture(scope="module")
def records(kek: bytes) -> dict[str, KeyRecord]:
    return {alg: generate_key(alg, kek, NOW) for alg in SUPPORTED_ALGS}


@pytest.fixture(scope="module")
def signers(records: dict[str, KeyRecord], kek: bytes) -> dict[str, Signer]:
    return {alg: Signer.from_record(rec, kek) for alg, rec in records.items()}


@pytest.fixture(scope="module")
def key_set(records: dict[str, KeyRecord]) -> dict:
    return jwks(records.values())


def private_pem(record: KeyRecord, kek: bytes) -> bytes:
    return decrypt_private(record.private_blob, kek, record.kid).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


# --------------------------------------------------------------------------------------- KEK


def test_new_kek_round_trips() -> None:
    text = new_kek()
    assert len(text) == 43 and "=" not in text
    raw = load_kek(text)
    assert len(raw) == 32
    assert load_kek(f"  {text}\n") == raw
    assert new_kek() != text


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "short",
        b64(bytes(32)) + "=",  # padded
        b64(bytes(31)),
        b64(bytes(33)),
        base64.b64encode(b"\xfb" * 32).decode().rstrip("="),  # standard alphabet (+ /)
        b64(bytes(32))[:-1] + "B",  # non-canonical trailing bits
        b"x" * 43,
        None,
    ],
)
def test_load_kek_rejects_other_formats_without_echoing(bad: object) -> None:
    with pytest.raises(KeyConfigError) as excinfo:
        load_kek(bad)  # type: ignore[arg-type]
    assert "AUTHSERVER_KEY_ENCRYPTION_KEY" in str(excinfo.value)
    if isinstance(bad, str) and bad:
        assert bad not in str(excinfo.value)
    assert isinstance(excinfo.value, ValueError)


# ---------------------------------------------------------------------------------- records


def test_rfc7638_thumbprint_vector() -> None:
    jwk = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6"
        "tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65"
        "YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdk"
        "t-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert jwk_thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


@pytest.mark.parametrize("alg", SUPPORTED_ALGS)
def test_generate_key(alg: str, records: dict[str, KeyRecord], kek: bytes) -> None:
    record = records[alg]
    jwk = record.public_jwk
    assert record.alg == alg and jwk["alg"] == alg and jwk["use"] == "sig"
    assert record.kid == jwk["kid"] == jwk_thumbprint(jwk)
    assert record.created_at == NOW and record.retired_at is None
    assert not set(PRIVATE_MEMBERS) & set(jwk)
    key = decrypt_private(record.private_blob, kek, record.kid)
    if alg.startswith("RS"):
        assert set(jwk) == {"kty", "n", "e", "kid", "alg", "use"}
        assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    else:
        assert set(jwk) == {"kty", "crv", "x", "y", "kid", "alg", "use"}
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        size = {"ES256": 32, "ES384": 48}[alg]
        assert jwk["crv"] == {"ES256": "P-256", "ES384": "P-384"}[alg]
        assert key.curve.key_size == size * 8
        assert len(unb64(jwk["x"])) == len(unb64(jwk["y"])) == size
    # The thumbprint covers only the required members, canonically ordered.
    required = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y")}[jwk["kty"]]
    canonical = json.dumps({m: jwk[m] for m in required}, separators=(",", ":"))
    assert record.kid == b64(hashlib.sha256(canonical.encode()).digest())


def test_generate_key_rejects_unsupported_alg_and_naive_now(kek: bytes) -> None:
    for alg in ("none", "HS256", "PS256", "EdDSA", "ES512"):
        with pytest.raises(KeyConfigError):
            generate_key(alg, kek, NOW)
    with pytest.raises(ValueError):
        generate_key("ES256", kek, datetime(2025, 1, 1))
    with pytest.raises(KeyConfigError):
        generate_key("ES256", b"short", NOW)


def test_key_record_repr_hides_private_blob(records: dict[str, KeyRecord]) -> None:
    record = records["RS256"]
    text = repr(record)
    assert record.kid in text
    assert "private_blob" not in text
    assert repr(record.private_blob) not in text
    assert record.private_blob.hex()[:16] not in text


# --------------------------------------------------------------------------- encryption at rest


def test_encrypt_decrypt_round_trip_der_and_pem(kek: bytes) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    for encoding in (serialization.Encoding.DER, serialization.Encoding.PEM):
        data = key.private_bytes(
            encoding, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        blob = encrypt_private(data, kek, "kid-1")
        assert blob[0] == 1
        assert data not in blob
        loaded = decrypt_private(blob, kek, "kid-1")
        assert loaded.private_numbers() == key.private_numbers()
    # Fresh nonce every time.
    assert encrypt_private(b"x", kek, "k") != encrypt_private(b"x", kek, "k")


def _decrypt_error(blob: bytes, kek: bytes, kid: str) -> str:
    with pytest.raises(KeyConfigError) as excinfo:
        decrypt_private(blob, kek, kid)
    return str(excinfo.value)


def test_decrypt_failures(records: dict[str, KeyRecord], kek: bytes) -> None:
    record = records["ES256"]
    other = records["ES384"]
    expected = (
        f"cannot decrypt signing key {record.kid}: wrong AUTHSERVER_KEY_ENCRYPTION_KEY "
        "or corrupted key"
    )
    wrong_kek = load_kek(new_kek())
    message = _decrypt_error(record.private_blob, wrong_kek, record.kid)
    assert message == expected
    assert b64(wrong_kek) not in message and b64(kek) not in message
    # A blob moved to another row (kid is the associated data) does not decrypt.
    assert other.kid in _decrypt_error(record.private_blob, kek, other.kid)
    # Tampering anywhere: version, nonce, ciphertext, tag; truncation; garbage.
    blob = bytearray(record.private_blob)
    for index in (0, 1, 20, len(blob) - 1):
        tampered = bytearray(blob)
        tampered[index] ^= 0x01
        assert _decrypt_error(bytes(tampered), kek, record.kid) == expected
    assert _decrypt_error(bytes(blob[:20]), kek, record.kid) == expected
    assert _decrypt_error(b"", kek, record.kid) == expected
    # An authenticated plaintext that is not a key is reported the same way.
    assert _decrypt_error(encrypt_private(b"not a key", kek, "k"), kek, "k").startswith(
        "cannot decrypt signing key k:"
    )


# ----------------------------------------------------------------------- rotation/publishing


def _record(kek: bytes, created: datetime, retired: datetime | None = None) -> KeyRecord:
    rec = generate_key("ES256", kek, created)
    rec.retired_at = retired
    return rec


def test_published_and_active(kek: bytes) -> None:
    lifetime = timedelta(hours=1)
    t0 = NOW - timedelta(days=30)
    old_gone = _record(kek, t0, retired=NOW - timedelta(hours=2))
    old_edge = _record(kek, t0 + timedelta(days=1), retired=NOW - lifetime)  # exactly expired
    recently_retired = _record(kek, t0 + timedelta(days=2), retired=NOW - timedelta(minutes=59))
    current = _record(kek, t0 + timedelta(days=3))
    newest = _record(kek, t0 + timedelta(days=4))
    rsa_key = generate_key("RS256", kek, t0 + timedelta(days=5))
    records = [old_gone, current, rsa_key, old_edge, newest, recently_retired]

    assert published(records, NOW, lifetime) == [rsa_key, newest, current, recently_retired]
    just_before = published(records, NOW - timedelta(seconds=1), lifetime)
    assert old_edge in just_before and old_gone not in just_before
    assert published([], NOW, lifetime) == []

    assert active(records, alg="ES256") is newest
    assert active(records, alg="RS256") is rsa_key
    assert active(records) is rsa_key  # defaults to RS256
    assert active(records, alg=None) is rsa_key
    assert active(records, alg="ES384") is None
    assert active([old_gone, recently_retired], alg="ES256") is None
    newest.retired_at = NOW
    assert active(records, alg="ES256") is current


def test_jwks_has_no_private_members(records: dict[str, KeyRecord], kek: bytes) -> None:
    key_set = jwks(records.values())
    assert [k["kid"] for k in key_set["keys"]] == [r.kid for r in records.values()]
    # Even a contaminated record cannot leak private material into the published set.
    leaky = KeyRecord(
        kid="leaky",
        alg="RS256",
        public_jwk={
            **records["RS256"].public_jwk,
            "d": "secret",
            "p": "x",
            "q": "y",
            "dp": "1",
            "dq": "2",
            "qi": "3",
            "kid": "leaky",
        },
        private_blob=b"",
        created_at=NOW,
    )
    key_set = jwks([*records.values(), leaky])
    text = json.dumps(key_set)
    for jwk in key_set["keys"]:
        assert not set(PRIVATE_MEMBERS) & set(jwk)
    assert "secret" not in text
    for record in records.values():
        pem = private_pem(record, kek).decode()
        assert pem not in text
    # Every published key parses as a public key with PyJWT.
    for jwk in key_set["keys"]:
        assert not hasattr(jwt.PyJWK(jwk).key, "private_numbers")


# -------------------------------------------------------------------------------------- JWS


@pytest.mark.parametrize("alg", SUPPORTED_ALGS)
def test_signer_output_verifies_with_pyjwt(
    alg: str, records: dict[str, KeyRecord], signers: dict[str, Signer]
) -> None:
    record = records[alg]
    claims = {"iss": "https://as.example", "sub": "p1", "aud": ["x"], "n": 1, "u": "é"}
    token = signers[alg].sign(claims)
    header = jwt.get_unverified_header(token)
    assert header == {"alg": alg, "kid": record.kid, "typ": "JWT"}
    decoded = jwt.decode(
        token,
        key=jwt.PyJWK(record.public_jwk),
        algorithms=[alg],
        audience="x",
        options={"verify_aud": True},
    )
    assert decoded == claims
    signature = unb64(token.split(".")[2])
    if alg.startswith("ES"):
        assert len(signature) == {"ES256": 64, "ES384": 96}[alg]  # raw r||s, not DER
    else:
        assert len(signature) == 256
    # Compact, whitespace-free JSON.
    assert unb64(token.split(".")[1]) == json.dumps(claims, separators=(",", ":")).encode()


def test_signer_headers_and_repr(
    records: dict[str, KeyRecord], signers: dict[str, Signer], kek: bytes
) -> None:
    signer = signers["ES256"]
    token = signer.sign({"a": 1}, typ="at+jwt", extra_headers={"x-test": "1"})
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "at+jwt" and header["x-test"] == "1"
    assert list(header)[:3] == ["alg", "kid", "typ"]
    for reserved in ("alg", "kid", "typ"):
        with pytest.raises(ValueError):
            signer.sign({}, extra_headers={reserved: "x"})
    text = repr(signer)
    assert text == f"Signer(kid={records['ES256'].kid!r}, alg='ES256')"
    assert "PRIVATE" not in text
    with pytest.raises(KeyConfigError):
        Signer.from_record(records["ES256"], load_kek(new_kek()))
    # A record whose alg does not fit its key is refused.
    mismatched = KeyRecord(
        kid=records["ES256"].kid,
        alg="ES384",
        public_jwk=records["ES256"].public_jwk,
        private_blob=records["ES256"].private_blob,
        created_at=NOW,
    )
    with pytest.raises(KeyConfigError):
        Signer.from_record(mismatched, kek)


@pytest.mark.parametrize("alg", SUPPORTED_ALGS)
def test_verify_compact_accepts_pyjwt_tokens(
    alg: str, records: dict[str, KeyRecord], key_set: dict, kek: bytes
) -> None:
    record = records[alg]
    claims = {"iss": "client", "sub": "client", "jti": "j1", "exp": 2_000_000_000}
    token = jwt.encode(claims, private_pem(record, kek), algorithm=alg, headers={"kid": record.kid})
    header, decoded = verify_compact(token, key_set, algorithms=[alg])
    assert decoded == claims
    assert header["alg"] == alg and header["kid"] == record.kid
    # A plain string is accepted for algorithms.
    assert verify_compact(token, key_set, alg)[1] == claims


@pytest.mark.parametrize("alg", SUPPORTED_ALGS)
def test_verify_compact_round_trip_and_tamper(
    alg: str, signers: dict[str, Signer], key_set: dict
) -> None:
    token = signers[alg].sign({"sub": "a", "scope": "patient/*.rs"})
    assert verify_compact(token, key_set, SUPPORTED_ALGS)[1]["sub"] == "a"
    head, payload, sig = token.split(".")
    forged = b64(json.dumps({"sub": "b", "scope": "patient/*.rs"}).encode())
    with pytest.raises(TokenError, match="signature"):
        verify_compact(f"{head}.{forged}.{sig}", key_set, SUPPORTED_ALGS)
    flipped = bytearray(unb64(sig))
    flipped[-1] ^= 1
    with pytest.raises(TokenError):
        verify_compact(f"{head}.{payload}.{b64(bytes(flipped))}", key_set, SUPPORTED_ALGS)
    with pytest.raises(TokenError):
        verify_compact(f"{head}.{payload}.", key_set, SUPPORTED_ALGS)


def test_verify_compact_rejects_none_and_hs256(
    records: dict[str, KeyRecord], key_set: dict
) -> None:
    record = records["RS256"]
    claims = {"sub": "admin"}
    none_token = compact({"alg": "none", "kid": record.kid}, claims)
    for algorithms in (["RS256"], ["none", "RS256"], ["none"]):
        with pytest.raises(TokenError, match="alg"):
            verify_compact(none_token, key_set, algorithms)
    # Classic key-confusion attack: HMAC keyed with the public key's published bytes.
    public_pem = jwt.PyJWK(record.public_jwk).key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for secret in (public_pem, json.dumps(record.public_jwk).encode()):
        header = b64(json.dumps({"alg": "HS256", "kid": record.kid, "typ": "JWT"}).encode())
        body = b64(json.dumps(claims).encode())
        mac = hmac.new(secret, f"{header}.{body}".encode(), hashlib.sha256).digest()
        token = f"{header}.{body}.{b64(mac)}"
        for algorithms in (["RS256"], ["HS256", "RS256"], SUPPORTED_ALGS):
            with pytest.raises(TokenError, match="alg"):
                verify_compact(token, key_set, algorithms)


def test_verify_compact_key_selection(
    records: dict[str, KeyRecord], signers: dict[str, Signer], key_set: dict
) -> None:
    token = signers["ES256"].sign({"sub": "a"})
    # Unknown kid.
    with pytest.raises(TokenError, match="unknown kid"):
        verify_compact(token, {"keys": [records["RS256"].public_jwk]}, SUPPORTED_ALGS)
    with pytest.raises(TokenError):
        verify_compact(token, {"keys": []}, SUPPORTED_ALGS)
    with pytest.raises(TokenError):
        verify_compact(token, {}, SUPPORTED_ALGS)
    # alg allowed by the key but not by the caller.
    with pytest.raises(TokenError, match="alg"):
        verify_compact(token, key_set, ["RS256", "ES384"])
    # Missing kid.
    bare = signers["ES256"].sign({"sub": "a"})
    head, payload, sig = bare.split(".")
    no_kid = b64(json.dumps({"alg": "ES256", "typ": "JWT"}).encode())
    with pytest.raises(TokenError, match="kid"):
        verify_compact(f"{no_kid}.{payload}.{sig}", key_set, SUPPORTED_ALGS)
    # The kid of an RSA key on an ES256 token: the key does not fit the alg.
    rsa_kid = b64(json.dumps({"alg": "ES256", "kid": records["RS256"].kid}).encode())
    with pytest.raises(TokenError):
        verify_compact(f"{rsa_kid}.{payload}.{sig}", key_set, SUPPORTED_ALGS)
    # Key advertising a different alg is not used.
    relabelled = {"keys": [{**records["ES256"].public_jwk, "alg": "ES384"}]}
    with pytest.raises(TokenError):
        verify_compact(token, relabelled, SUPPORTED_ALGS)
    # Encryption keys are not used for signatures.
    enc = {"keys": [{**records["ES256"].public_jwk, "use": "enc"}]}
    with pytest.raises(TokenError):
        verify_compact(token, enc, SUPPORTED_ALGS)


def test_verify_compact_ignores_embedded_jwk_and_jku(
    records: dict[str, KeyRecord], key_set: dict
) -> None:
    attacker = ec.generate_private_key(ec.SECP256R1())
    attacker_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(attacker.public_key()))
    pem = attacker.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    for kid in (records["ES256"].kid, jwk_thumbprint(attacker_jwk)):
        token = jwt.encode(
            {"sub": "admin"},
            pem,
            algorithm="ES256",
            headers={"kid": kid, "jwk": attacker_jwk, "jku": "https://evil.example/jwks"},
        )
        with pytest.raises(TokenError):
            verify_compact(token, key_set, SUPPORTED_ALGS)


def test_verify_compact_malformed(
    signers: dict[str, Signer], key_set: dict, records: dict[str, KeyRecord], kek: bytes
) -> None:
    token = signers["ES256"].sign({"sub": "a"})
    head, payload, sig = token.split(".")
    kid = records["ES256"].kid
    cases = [
        "",
        "abc",
        f"{head}.{payload}",
        f"{head}.{payload}.{sig}.x",
        f"{head}=.{payload}.{sig}",
        f"{head}.{payload}.{sig}==",
        f"!!.{payload}.{sig}",
        f"{b64(b'not json')}.{payload}.{sig}",
        f"{b64(b'[1,2]')}.{payload}.{sig}",
        f"{b64(json.dumps({'alg': 'ES256', 'kid': kid, 'crit': ['exp']}).encode())}"
        f".{payload}.{sig}",
        "a" * (jose.MAX_TOKEN_LENGTH + 1),
        f"{head}.{payload}\u00e9.{sig}",  # non-ASCII: not a compact JWS (was a 500)
        f"{head}.{payload}.{sig}\u2603",
        None,
    ]
    for case in cases:
        with pytest.raises(TokenError):
            verify_compact(case, key_set, SUPPORTED_ALGS)  # type: ignore[arg-type]
    # A validly signed payload that is not a JSON object.
    signer = signers["ES256"]
    header_b64 = b64(json.dumps({"alg": "ES256", "kid": kid}).encode())
    for body in (b"[1]", b'{"a":1,"a":2}', b"\xff"):
        body_b64 = b64(body)
        raw = jose._raw_sign(signer._key, jose.ALGS["ES256"], f"{header_b64}.{body_b64}".encode())
        with pytest.raises(TokenError, match="payload"):
            verify_compact(f"{header_b64}.{body_b64}.{b64(raw)}", key_set, ["ES256"])
    # A DER-encoded ECDSA signature (not RFC 7518 raw r||s) is refused.
    priv = decrypt_private(records["ES256"].private_blob, kek, kid)
    der = priv.sign(f"{head}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))
    with pytest.raises(TokenError):
        verify_compact(f"{head}.{payload}.{b64(der)}", key_set, ["ES256"])
    # Error messages never include the token.
    with pytest.raises(TokenError) as excinfo:
        verify_compact(f"{head}.{payload}.{sig[:-4]}AAAA", key_set, ["ES256"])
    assert payload not in str(excinfo.value)


def test_small_rsa_keys_refused_for_verification() -> None:
    small = rsa.generate_private_key(65537, 1024)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(small.public_key()))
    jwk["kid"] = "small"
    token = compact({"alg": "RS256", "kid": "small"}, {})
    head, body, _ = token.split(".")
    sig = small.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(TokenError):
        verify_compact(f"{head}.{body}.{b64(sig)}", {"keys": [jwk]}, ["RS256"])


@pytest.mark.parametrize("alg", SUPPORTED_ALGS)
def test_raw_sign_rate(alg: str) -> None:
    assert raw_sign_rate(alg, seconds=0.02) > 0
