"""Password hashing with Argon2id (RFC 9106) and the password policy.

Defaults are RFC 9106 section 4's SECOND recommended option, for memory-constrained settings:
Argon2id, t=3 passes, p=4 lanes, m=2^16 KiB (64 MiB), a 128-bit salt and a 256-bit tag.
Hashes are stored in the PHC string format (``$argon2id$v=19$m=65536,t=3,p=4$...``), so old
hashes keep verifying after a parameter change and :meth:`Hasher.verify` reports when a hash
should be upgraded.

Passwords are NFKC-normalized before hashing and verifying (NIST SP 800-63B), so the same
password typed with composed or decomposed characters matches.

Pure module: no Flask, no database.
"""

from __future__ import annotations

import threading
import unicodedata

import argon2
from argon2.exceptions import Argon2Error

__all__ = [
    "TIME_COST",
    "MEMORY_COST",
    "PARALLELISM",
    "HASH_LEN",
    "SALT_LEN",
    "MIN_PASSWORD_LENGTH",
    "MAX_PASSWORD_LENGTH",
    "Hasher",
    "PasswordService",
    "hash_password",
    "verify_password",
    "check_password_policy",
]

# RFC 9106 section 4, second recommended option.
TIME_COST = 3
MEMORY_COST = 65536  # KiB = 64 MiB
PARALLELISM = 4
HASH_LEN = 32
SALT_LEN = 16

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024

# Input of the dummy hash verified for unknown users; only the work done matters, and the
# result is discarded (an unknown user always fails, whatever password is sent).
_DUMMY_PASSWORD = "authserver-dummy-password-for-unknown-users"


def _normalize(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


class Hasher:
    """Argon2id hasher with constant-ish time behaviour for unknown users.

    Constructor parameters default to RFC 9106's second recommended option; tests pass cheap
    ones, e.g. ``Hasher(time_cost=1, memory_cost=8, parallelism=1)``.
    """

    def __init__(
        self,
        time_cost: int = TIME_COST,
        memory_cost: int = MEMORY_COST,
        parallelism: int = PARALLELISM,
        hash_len: int = HASH_LEN,
        salt_len: int = SALT_LEN,
    ) -> None:
        self._ph = argon2.PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            hash_len=hash_len,
            salt_len=salt_len,
            type=argon2.Type.ID,
        )
        self._dummy_hash: str | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        p = self._ph
        return (
            f"Hasher(time_cost={p.time_cost}, memory_cost={p.memory_cost}, "
            f"parallelism={p.parallelism}, hash_len={p.hash_len}, salt_len={p.salt_len})"
        )

    @property
    def dummy_hash(self) -> str:
        """A fixed hash made once with this hasher's parameters (for unknown users)."""
        if self._dummy_hash is None:
            with self._lock:
                if self._dummy_hash is None:
                    self._dummy_hash = self._ph.hash(_DUMMY_PASSWORD)
        return self._dummy_hash

    def hash(self, password: str) -> str:
        """Hash ``password`` (a str) to a PHC-format Argon2id string."""
        if not isinstance(password, str):
            raise TypeError("password must be a str")
        return self._ph.hash(_normalize(password))

    def verify(self, stored_hash: str | None, password: str) -> tuple[bool, bool]:
        """Return ``(ok, needs_rehash)``. Never raises.

        ``stored_hash`` None (unknown user) or malformed: the dummy hash is verified instead so
        the call costs about as much as a wrong password, and ``(False, False)`` is returned.
        ``needs_rehash`` is only ever True when ``ok`` is True.
        """
        if not isinstance(password, str) or len(password) > 4 * MAX_PASSWORD_LENGTH:
            return False, False
        try:
            candidate = _normalize(password)
        except (ValueError, TypeError):  # pragma: no cover - defensive
            return False, False
        if isinstance(stored_hash, str) and stored_hash.startswith("$argon2"):
            try:
                self._ph.verify(stored_hash, candidate)
            except (Argon2Error, ValueError, TypeError):
                return False, False
            try:
                return True, self._ph.check_needs_rehash(stored_hash)
            except (Argon2Error, ValueError, TypeError):  # pragma: no cover - defensive
                return True, False
        # Unknown user or unusable stored hash: burn the same work, then fail.
        try:
            self._ph.verify(self.dummy_hash, candidate)
        except (Argon2Error, ValueError, TypeError):
            pass
        return False, False


PasswordService = Hasher

_default: Hasher | None = None
_default_lock = threading.Lock()


def _default_hasher() -> Hasher:
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Hasher()
    return _default


def hash_password(password: str) -> str:
    """Hash with the default (RFC 9106 second option) :class:`Hasher`."""
    return _default_hasher().hash(password)


def verify_password(stored_hash: str | None, password: str) -> tuple[bool, bool]:
    """``(ok, needs_rehash)`` with the default :class:`Hasher`; see :meth:`Hasher.verify`."""
    return _default_hasher().verify(stored_hash, password)


def check_password_policy(password: str) -> str | None:
    """Return None if ``password`` is acceptable, else a user-facing message.

    Length only (NIST SP 800-63B): 8 to 1024 characters after NFKC normalization.
    """
    if not isinstance(password, str):
        return "Password must be text."
    length = len(_normalize(password))
    if length < MIN_PASSWORD_LENGTH:
        return f"Password must be at least {MIN_PASSWORD_LENGTH} characters long."
    if length > MAX_PASSWORD_LENGTH:
        return f"Password must be at most {MAX_PASSWORD_LENGTH} characters long."
    return None
