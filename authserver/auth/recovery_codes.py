"""Two-step recovery codes: one-time codes a person keeps on paper for when the
authenticator app is lost (the "lost your phone?" path of the TOTP step).

Each account holds :data:`COUNT` codes. A code is :data:`LENGTH` characters drawn at random
(``secrets``) from :data:`ALPHABET`, Crockford's base32 in lower case: the digits and the
letters without ``i``, ``l``, ``o`` and ``u``, so nothing on the page can be misread. That is
5 bits a character, 50 bits a code: guessing one of an account's ten takes about 2^46 tries,
and the TOTP step's lockout allows a handful an hour. Codes are shown as ``xxxxx-xxxxx``.

What a person types is normalised before it is looked at (:func:`normalise`): spaces and
dashes dropped, case folded, and the look-alikes Crockford names mapped to what they look
like (``o`` to ``0``; ``i`` and ``l`` to ``1``). Only :func:`digest` of a code is stored:
SHA-256 over the code and the account's id, so one table row tells nothing about any other
account's codes (the codes are random, so no slow hash is needed; NIST SP 800-63B §5.1.2.2
asks for a salted hash of "look-up secrets" of less than 112 bits).

- https://www.crockford.com/base32.html
- https://pages.nist.gov/800-63-3/sp800-63b.html#lookupsecrets

Pure module: no Flask, no database.
"""

from __future__ import annotations

import secrets

from authserver.digests import sha256_hex

__all__ = ["ALPHABET", "COUNT", "LENGTH", "new_codes", "normalise", "digest", "display"]

#: Crockford's base32, lower case: no i, l, o or u.
ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
#: Codes per account (a new set replaces the old one whole).
COUNT = 10
#: Characters in a code: 10 x 5 bits = 50 bits.
LENGTH = 10

_LOOKALIKES = str.maketrans({"o": "0", "i": "1", "l": "1"})
_IGNORED = str.maketrans("", "", " -\t\u00a0")
_MAX_INPUT = 64  # longer input is not a code: refused before any work


def new_codes(count: int = COUNT) -> list[str]:
    """``count`` fresh random codes, normalised (no dash), all different. A draw of digits
    only (about 1 in 100,000) is drawn again: it would be read as a TOTP code."""
    codes: set[str] = set()
    while len(codes) < count:
        code = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
        if not code.isdigit():
            codes.add(code)
    return sorted(codes)


def normalise(typed: object) -> str | None:
    """The code ``typed`` spells (spaces, dashes and case ignored, look-alikes mapped), or
    None when it cannot be one: wrong length or a character outside the alphabet. A string
    of digits only is never a code here: that is a TOTP code (six digits), and the caller
    tells the two apart with this answer."""
    if not isinstance(typed, str) or len(typed) > _MAX_INPUT:
        return None
    code = typed.translate(_IGNORED).lower().translate(_LOOKALIKES)
    if len(code) != LENGTH or code.isdigit() or any(c not in ALPHABET for c in code):
        return None
    return code


def digest(user_id: int, code: str) -> str:
    """What is stored of ``code`` (normalised) for the account ``user_id``."""
    return sha256_hex(f"recovery-code:{user_id}:{code}")


def display(code: str) -> str:
    """``abcde12345`` as people are shown it: ``abcde-12345``."""
    half = LENGTH // 2
    return f"{code[:half]}-{code[half:]}"
