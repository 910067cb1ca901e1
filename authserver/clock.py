"""The server's clock: whole seconds since the epoch (every ``*_at`` column holds one).

Every server-side reading of the time that is stored or compared with a stored time goes
through :func:`now`. (A TOTP code's time step is read from the wall clock, which the
user's authenticator shares, and signing keys are rotated on datetimes.)

:func:`shifted` is the seam for tests of expiry, lockouts and ``max_age``: inside its
block the server's time passes, or has passed, without anyone sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["now", "precise", "shifted"]

_offset = 0  # seconds added to the wall clock; only shifted() changes it


def now() -> int:
    return int(time.time()) + _offset


def precise() -> float:
    """:func:`now` with its fraction of a second, for comparing with a float deadline (the
    rate limiter's window ends), where whole seconds would round a 15-minute wait up to 16."""
    return time.time() + _offset


@contextmanager
def shifted(seconds: int) -> Iterator[None]:
    """Inside the block :func:`now` reads ``seconds`` (positive: later, negative: earlier)
    off the wall clock; nested blocks add up. Process-wide, for every thread (a test's
    live server sees it too), so for tests only."""
    global _offset
    _offset += seconds
    try:
        yield
    finally:
        _offset -= seconds
