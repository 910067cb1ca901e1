"""Password hashing with Argon2id (RFC 9106) and the password policy.

Defaults are RFC 9106 section 4's SECOND recommended option, for memory-constrained settings:
Argon2id, t=3 passes, p=4 lanes, m=2^16 KiB (64 MiB), a 128-bit salt and a 256-bit tag.
Hashes are stored in the PHC string format (``$argon2id$v=19$m=65536,t=3,p=4$...``), so old
hashes keep verifying after a parameter change and :meth:`Hasher.verify` reports when a hash
should be upgraded.

Passwords are NFKC-normalized before hashing and verifying (NIST SP 800-63B), so the same
password typed with composed or decomposed characters matches.

:func:`check_password_policy` is the one home of the rules a new password must meet, wherever
it is set (CLI, admin console, invitation, change, reset): at least 12 characters, not one of
the 10,000 most common passwords (``authserver/data/common-passwords.txt``, from zxcvbn,
MIT; see the README beside it), not the username nor containing it. NIST SP 800-63B
§5.1.1.2: verifiers "SHALL compare the prospective secrets against a list that contains
values known to be commonly-used, expected, or compromised", including "context-specific
words, such as the name of the service, the username, and derivatives thereof".
https://pages.nist.gov/800-63-3/sp800-63b.html#memsecretver

Pure module: no Flask, no database.
"""

from __future__ import annotations

import threading
import unicodedata
from functools import cache
from pathlib import Path

import argon2
from argon2.exceptions import Argon2Error

from authserver.smart.words import N_, Words

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
    "is_common_password",
    "COMMON_PASSWORDS_FILE",
]

# RFC 9106 section 4, second recommended option.
TIME_COST = 3
MEMORY_COST = 65536  # KiB = 64 MiB
PARALLELISM = 4
HASH_LEN = 32
SALT_LEN = 16

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
#: A username shorter than this is only refused as the whole password, not as a part of it
#: (a one-letter username would otherwise forbid every password holding that letter).
MIN_USERNAME_IN_PASSWORD = 3
#: The 10,000 most common passwords, one a line, after ``#`` header lines.
COMMON_PASSWORDS_FILE = Path(__file__).resolve().parents[1] / "data" / "common-passwords.txt"

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


def _fold(text: str) -> str:
    """What the rules compare: NFKC, then case-folded."""
    return _normalize(text).casefold()


@cache
def _common_passwords() -> frozenset[str]:
    """The list, loaded once per process (case-folded)."""
    with COMMON_PASSWORDS_FILE.open(encoding="utf-8") as fh:
        return frozenset(_fold(line.strip()) for line in fh
                         if line.strip() and not line.startswith("#"))


def is_common_password(password: str) -> bool:
    """Whether ``password`` is one of the 10,000 most common (case-insensitive, NFKC)."""
    return _fold(password) in _common_passwords()


def check_password_policy(password: str, username: str | None = None) -> Words | None:
    """Return None if ``password`` is acceptable, else a user-facing message (the first rule
    it breaks, as :class:`~authserver.smart.words.Words`, translated where it is shown): 12 to 1024
    characters after NFKC normalization, not one of the 10,000 most common passwords, and
    not ``username`` nor containing it (case-insensitive, after NFKC; containment only for
    usernames of :data:`MIN_USERNAME_IN_PASSWORD` characters or more).
    """
    if not isinstance(password, str):
        return Words(N_("Password must be text."))
    length = len(_normalize(password))
    if length < MIN_PASSWORD_LENGTH:
        return Words(N_("Password must be at least {n} characters long."),
                     n=MIN_PASSWORD_LENGTH)
    if length > MAX_PASSWORD_LENGTH:
        return Words(N_("Password must be at most {n} characters long."),
                     n=MAX_PASSWORD_LENGTH)
    if is_common_password(password):
        return Words(N_("This password is one of the most common passwords, which are tried "
                        "first by attackers. Choose another."))
    name = _fold(username) if isinstance(username, str) else ""
    folded = _fold(password)
    if name and (folded == name or (len(name) >= MIN_USERNAME_IN_PASSWORD and name in folded)):
        return Words(N_("Password must not contain your username."))
    return None
