"""Tests for authserver.auth.passwords (Argon2id, RFC 9106)."""

from __future__ import annotations

import unicodedata

import pytest

from authserver.auth import passwords
from authserver.auth.passwords import (
    Hasher,
    PasswordService,
    check_password_policy,
    hash_password,
    verify_password,
)

CHEAP = {"time_cost": 1, "memory_cost": 8, "parallelism": 1}


@pytest.fixture(scope="module")
def hasher() -> Hasher:
    return Hasher(**CHEAP)


def test_hash_and_verify(hasher: Hasher) -> None:
    stored = hasher.hash("correct horse battery staple")
    assert stored.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert "correct horse" not in stored
    assert hasher.verify(stored, "correct horse battery staple") == (True, False)
    assert hasher.verify(stored, "correct horse battery stapl") == (False, False)
    assert hasher.verify(stored, "") == (False, False)
    # Random salt: same password, different hashes.
    assert hasher.hash("correct horse battery staple") != stored


def test_unicode_normalization(hasher: Hasher) -> None:
    composed = "p\u00e4ssw\u00f6rd"
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    assert hasher.verify(hasher.hash(composed), decomposed) == (True, False)


def test_needs_rehash_when_parameters_change(hasher: Hasher) -> None:
    stronger = Hasher(time_cost=2, memory_cost=16, parallelism=1)
    old = hasher.hash("password123")
    assert stronger.verify(old, "password123") == (True, True)
    assert stronger.verify(old, "wrong-password") == (False, False)
    assert stronger.verify(stronger.hash("password123"), "password123") == (True, False)


class _SpyHasher:
    """Wraps argon2.PasswordHasher (whose methods cannot be patched) to record verify calls."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.calls: list[str] = []

    def verify(self, stored: str, password: str) -> bool:
        self.calls.append(stored)
        return self.inner.verify(stored, password)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def test_unknown_user_uses_dummy_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    hasher = Hasher(**CHEAP)
    spy = _SpyHasher(hasher._ph)
    monkeypatch.setattr(hasher, "_ph", spy)
    calls = spy.calls
    assert hasher.verify(None, "whatever-password") == (False, False)
    assert calls == [hasher.dummy_hash]
    # Made once, with the same parameters as real hashes.
    assert hasher.dummy_hash is hasher.dummy_hash
    assert hasher.dummy_hash.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    # Malformed stored hashes also do the dummy work and fail closed.
    calls.clear()
    assert hasher.verify("not-a-hash", "whatever-password") == (False, False)
    assert calls == [hasher.dummy_hash]


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "garbage",
        "$argon2id$",
        "$argon2id$v=19$m=8,t=1,p=1$AAAA$BBBB",
        "$argon2id$v=19$m=8,t=1,p=1$!!!!$????",
        "$2b$12$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234",
        "$argon2id$v=19$m=999999999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
        b"$argon2id$v=19$m=8,t=1,p=1$",
        12345,
        ["x"],
    ],
)
def test_malformed_hashes_never_raise(hasher: Hasher, stored: object) -> None:
    assert hasher.verify(stored, "password123") == (False, False)  # type: ignore[arg-type]


@pytest.mark.parametrize("password", [None, b"password123", 12345, ["password123"]])
def test_non_str_password_never_raises(hasher: Hasher, password: object) -> None:
    stored = hasher.hash("password123")
    assert hasher.verify(stored, password) == (False, False)  # type: ignore[arg-type]
    assert hasher.verify(None, password) == (False, False)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        hasher.hash(password)  # type: ignore[arg-type]


def test_huge_password_refused_cheaply(hasher: Hasher) -> None:
    stored = hasher.hash("password123")
    assert hasher.verify(stored, "x" * 1_000_000) == (False, False)


def test_repr_shows_parameters_only(hasher: Hasher) -> None:
    assert repr(hasher) == (
        "Hasher(time_cost=1, memory_cost=8, parallelism=1, hash_len=32, salt_len=16)"
    )
    assert PasswordService is Hasher


def test_module_defaults_are_rfc9106_second_option(monkeypatch: pytest.MonkeyPatch) -> None:
    """The one slow test: real parameters, read off the PHC string."""
    monkeypatch.setattr(passwords, "_default", None)
    stored = hash_password("correct horse battery staple")
    prefix = "$argon2id$v=19$m=65536,t=3,p=4$"
    assert stored.startswith(prefix)
    salt_b64, hash_b64 = stored[len(prefix) :].split("$")
    # PHC strings use unpadded standard base64: 16-byte salt -> 22 chars, 32-byte tag -> 43.
    assert len(salt_b64) == 22 and len(hash_b64) == 43
    assert verify_password(stored, "correct horse battery staple") == (True, False)
    assert verify_password(None, "correct horse battery staple") == (False, False)
    assert passwords._default is not None
    assert passwords._default.dummy_hash.startswith(prefix)


def test_module_functions_use_default_hasher(monkeypatch: pytest.MonkeyPatch) -> None:
    cheap = Hasher(**CHEAP)
    monkeypatch.setattr(passwords, "_default", cheap)
    stored = hash_password("hunter2hunter2")
    assert stored.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert verify_password(stored, "hunter2hunter2") == (True, False)
    assert verify_password(stored, "hunter2") == (False, False)
    # A hash with weaker parameters than the default is flagged for upgrade.
    monkeypatch.setattr(passwords, "_default", Hasher(time_cost=2, memory_cost=8, parallelism=1))
    assert verify_password(stored, "hunter2hunter2") == (True, True)


@pytest.mark.parametrize(
    ("password", "ok"),
    [
        ("", False),
        ("12345678901", False),
        ("qwerty123456", False),  # long enough, but on the common list
        ("pässwörd längst", True),
        ("x" * 1024, True),
        ("x" * 1025, False),
        (" " * 12, True),  # no composition rules (NIST SP 800-63B)
    ],
)
def test_password_policy(password: str, ok: bool) -> None:
    message = check_password_policy(password)
    if ok:
        assert message is None
    else:
        assert isinstance(message, str) and message
        assert password not in message or password == ""


def test_password_policy_messages() -> None:
    assert check_password_policy("short") == "Password must be at least 12 characters long."
    assert check_password_policy("y" * 2000) == "Password must be at most 1024 characters long."
    assert check_password_policy(None) == "Password must be text."  # type: ignore[arg-type]
