"""URL helpers shared across modules (pure: stdlib only).

- :func:`is_loopback_host`: a loopback host, where plain ``http`` is allowed (RFC 8252 §8.3
  https://www.rfc-editor.org/rfc/rfc8252#section-8.3, RFC 9700 §2.1
  https://www.rfc-editor.org/rfc/rfc9700#section-2.1);
- :func:`origin_of`: the web origin of a URL (RFC 6454 §6.1
  https://www.rfc-editor.org/rfc/rfc6454#section-6.1), what CORS compares.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

__all__ = ["is_loopback_host", "normalize_aud", "origin_of"]


def is_loopback_host(host: str | None) -> bool:
    """``localhost`` or a loopback IP literal (IPv6 with or without its brackets)."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def origin_of(uri: str) -> str | None:
    """The web origin a browser sends for pages at ``uri`` (RFC 6454 §6.1 ASCII
    serialization: lower-case scheme and host, no user info, no default port), or None
    when ``uri`` is not an http(s) URL."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in ("http", "https") or not host:
        return None
    try:
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        return None
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal
    default_port = 443 if scheme == "https" else 80
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != default_port
                                   else "")


def normalize_aud(aud: str) -> str:
    """A FHIR base URL as compared with ``AUTHSERVER_FHIR_BASE_URL``: no surrounding
    blanks, no trailing slash."""
    return aud.strip().rstrip("/")
