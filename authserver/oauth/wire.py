"""What may go on the wire in an OAuth error: one home for RFC 6749's character set.

RFC 6749 §4.1.2.1 and §5.2 (https://www.rfc-editor.org/rfc/rfc6749#section-5.2): "Values
for the "error_description" parameter MUST NOT include characters outside the set %x20-21 /
%x23-5B / %x5D-7E" (Authlib raises on them, which would be a 500).
"""

from __future__ import annotations

__all__ = ["allowed", "quote_param", "safe_description"]

#: Longest error_description we write from a message (a value is quoted shorter).
MAX_DESCRIPTION = 300


def allowed(c: str) -> bool:
    """Whether ``c`` may appear in an ``error_description``."""
    return 0x20 <= ord(c) <= 0x7E and c not in '"\\'


def quote_param(value: str, limit: int = 64) -> str:
    """A client's ``value`` quoted in an ``error_description``: characters outside the set
    become ``?`` (so the result never equals a different valid value), and it is
    shortened to ``limit``."""
    safe = "".join(c if allowed(c) else "?" for c in str(value)[:limit])
    return safe + ("..." if len(str(value)) > limit else "")


def safe_description(text: str) -> str:
    """One of our messages as an ``error_description``: double quotes become single ones
    (scope errors quote tokens JSON-style), other characters outside the set are dropped,
    and it is shortened to :data:`MAX_DESCRIPTION`."""
    return "".join(c for c in text.replace('"', "'") if allowed(c))[:MAX_DESCRIPTION]
