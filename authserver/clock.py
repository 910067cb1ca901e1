"""The server's clock: whole seconds since the epoch (every ``*_at`` column holds one)."""

from __future__ import annotations

import time


def now() -> int:
    return int(time.time())
