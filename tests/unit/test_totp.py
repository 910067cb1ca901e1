"""Tests for authserver.auth.totp (RFC 6238)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest

from authserver.auth import totp
from authserver.auth.totp import new_secret, provisioning_uri, qr_svg, time_step, verify

# RFC 6238 Appendix B: SHA-1 seed "12345678901234567890"; 6-digit codes are the last six
# digits of the published 8-digit values.
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()
RFC_VECTORS = [
    (59, "287082"),
    (1111111109, "081804"),
    (1111111111, "050471"),
    (1234567890, "005924"),
    (2000000000, "279037"),
    (20000000000, "353130"),
]


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def code_for_step(secret: str, step: int) -> str:
    return pyotp.TOTP(secret).generate_otp(step)


def test_new_secret() -> None:
    secret = new_secret()
    assert len(secret) == 32
    assert len(base64.b32decode(secret)) == 20  # 160 bits
    assert new_secret() != secret


@pytest.mark.parametrize(("seconds", "code"), RFC_VECTORS)
def test_rfc6238_vectors(seconds: int, code: str) -> None:
    step = seconds // 30
    assert verify(RFC_SECRET, code, at(seconds), None) == step
    assert time_step(at(seconds)) == step


def test_time_step_respects_timezone() -> None:
    moment = at(1111111111)
    plus_two = moment.astimezone(timezone(timedelta(hours=2)))
    assert time_step(plus_two) == time_step(moment) == 1111111111 // 30
    with pytest.raises(ValueError):
        time_step(datetime(2025, 1, 1, 12, 0))
    with pytest.raises(ValueError):
        verify(RFC_SECRET, "287082", datetime(2025, 1, 1, 12, 0), None)


def test_window_is_plus_minus_one_step() -> None:
    secret = new_secret()
    now = at(1_700_000_015)
    current = time_step(now)
    for offset in (-1, 0, 1):
        assert verify(secret, code_for_step(secret, current + offset), now, None) == (
            current + offset
        )
    for offset in (-3, -2, 2, 3):
        code = code_for_step(secret, current + offset)
        if code in {code_for_step(secret, current + o) for o in (-1, 0, 1)}:
            continue  # 1-in-a-million collision
        assert verify(secret, code, now, None) is None


def test_step_boundaries() -> None:
    secret = new_secret()
    start = 1_700_000_010  # a multiple of 30
    step = start // 30
    code = code_for_step(secret, step)
    assert verify(secret, code, at(start), None) == step
    assert verify(secret, code, at(start + 29.999), None) == step
    assert verify(secret, code, at(start + 30 + 29), None) == step  # previous step, still ok
    assert verify(secret, code, at(start + 60), None) is None  # two steps later
    assert verify(secret, code, at(start - 30), None) == step  # next step, clock behind
    assert verify(secret, code, at(start - 31), None) is None


def test_replay_refused() -> None:
    secret = new_secret()
    now = at(1_700_000_000)
    current = time_step(now)
    code = code_for_step(secret, current)
    used = verify(secret, code, now, None)
    assert used == current
    assert verify(secret, code, now, used) is None
    assert verify(secret, code, now + timedelta(seconds=20), used) is None
    # Older codes are refused once a newer step has been used.
    assert verify(secret, code_for_step(secret, current - 1), now, current) is None
    # The next step's code is still accepted after the current one was used.
    assert verify(secret, code_for_step(secret, current + 1), now, current) == current + 1
    assert verify(secret, code, now, current - 1) == current
    assert verify(secret, code, now, current + 1) is None


@pytest.mark.parametrize(
    "code",
    [
        "",
        "12345",
        "1234567",
        "abcdef",
        "12345a",
        "-12345",
        "+12345",
        "１２３４５６",
        "123\u0664567"[:6],
        None,
        123456,
        b"123456",
    ],
)
def test_malformed_codes_refused(code: object) -> None:
    assert verify(RFC_SECRET, code, at(59), None) is None  # type: ignore[arg-type]


def test_whitespace_is_stripped() -> None:
    for code in (" 287082", "287082\n", "287 082", "28 70 82", "\t287082 "):
        assert verify(RFC_SECRET, code, at(59), None) == 1


def test_bad_secret_raises_without_echoing() -> None:
    for secret in ("not base32 at all!", "ABCDEFGH", "", "A" * 24, "A1" * 16):
        with pytest.raises(ValueError) as excinfo:
            verify(secret, "123456", at(59), None)
        if secret:
            assert secret not in str(excinfo.value)
    # Lower case and spaces (as some users type them) are tolerated.
    assert verify(RFC_SECRET.lower(), "287082", at(59), None) == 1


def test_provisioning_uri() -> None:
    secret = new_secret()
    uri = provisioning_uri(secret, "alice@example.org", "SMART Auth")
    parts = urlsplit(uri)
    assert parts.scheme == "otpauth" and parts.netloc == "totp"
    query = parse_qs(parts.query)
    assert query["secret"] == [secret]
    assert query["issuer"] == ["SMART Auth"]
    parsed = pyotp.parse_uri(uri)
    assert parsed.secret == secret and parsed.digits == 6 and parsed.interval == 30
    assert parsed.name == "alice@example.org" and parsed.issuer == "SMART Auth"
    for account, issuer in (("a:b", "X"), ("a", "X:Y"), ("", "X"), ("a", "")):
        with pytest.raises(ValueError):
            provisioning_uri(secret, account, issuer)


def test_qr_svg() -> None:
    uri = provisioning_uri(RFC_SECRET, "alice@example.org", "SMART Auth")
    svg = qr_svg(uri)
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    assert "<?xml" not in svg
    assert qr_svg(uri) == svg  # deterministic
    assert qr_svg(uri.replace("alice", "bob")) != svg
    assert 'transform="scale(5)"' in svg
    assert RFC_SECRET not in svg  # encoded as modules, not text


def test_constants() -> None:
    assert (totp.DIGITS, totp.STEP_SECONDS, totp.WINDOW) == (6, 30, 1)
