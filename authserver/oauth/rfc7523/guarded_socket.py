"""The SSRF guard and a socket under one wall-clock deadline, for fetching a client's
``jwks_uri`` (:mod:`.jwks_fetcher`).

- The guard: only global unicast addresses are connected to (no loopback, private,
  link-local, reserved, multicast or unspecified address); JWKS_ALLOW_PRIVATE_NETWORKS=1
  lifts it for development and on-premises deployments.
- The deadline: connect, TLS handshake, every send and every read may only use the time
  left before one deadline (a socket timeout alone restarts on every byte).
- TLS: certificate and host name verified (SMART: the JWKS URL is fetched over TLS)
  https://hl7.org/fhir/smart-app-launch/client-confidential-asymmetric.html
"""

from __future__ import annotations

import io
import ipaddress
import socket
import ssl
import time
from typing import Any

from requests.certs import where as requests_ca_bundle

__all__ = ["Address", "DeadlineSocket", "address_allowed", "connect", "ip_allowed",
           "time_left", "tls_context"]

Address = tuple[int, tuple[Any, ...]]  # (address family, socket address)


def time_left(deadline: float) -> float:
    """Seconds left before ``deadline`` (a ``time.monotonic`` time); TimeoutError if none."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("deadline")
    return left


def ip_allowed(address: str) -> bool:
    """SSRF guard for one address: global unicast only (no loopback, private,
    link-local — e.g. the cloud metadata 169.254.169.254 —, reserved, multicast or
    unspecified address)."""
    ip = ipaddress.ip_address(str(address).split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def address_allowed(host: str) -> bool:
    """SSRF guard: may we connect to ``host``? Every address it resolves to must pass
    :func:`ip_allowed` (loopback is refused too: JWKS_ALLOW_PRIVATE_NETWORKS=1 lifts the
    guard for development and on-premises deployments). A name that does not resolve is
    left to the fetch to fail. The fetch checks the addresses it resolved itself and
    connects to those very addresses, so a DNS answer cannot change in between."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return True
    return all(ip_allowed(info[4][0]) for info in infos)


class DeadlineSocket:
    """A connected socket whose every operation may only use the time left before the
    deadline; what :class:`http.client.HTTPConnection` needs of a socket."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock, self._deadline = sock, deadline

    def sendall(self, data: bytes) -> None:
        self._sock.settimeout(time_left(self._deadline))
        self._sock.sendall(data)  # the timeout bounds the whole sendall (Python >= 3.5)

    def recv_into(self, buffer: Any, nbytes: int = 0) -> int:
        self._sock.settimeout(time_left(self._deadline))
        return self._sock.recv_into(buffer, nbytes)

    def makefile(self, mode: str = "rb", *_args: Any, **_kwargs: Any) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self))

    def close(self) -> None:
        pass  # http.client closes its connection before the body of a close-delimited
        # answer is read; the socket is closed by whoever opened it (jwks_fetcher._get)


class _DeadlineReader(io.RawIOBase):
    def __init__(self, sock: DeadlineSocket) -> None:
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._sock.recv_into(buffer)


_tls: ssl.SSLContext | None = None


def tls_context() -> ssl.SSLContext:
    """Certificate and host name verified; trusted: the system store and the bundle
    requests uses (what jwks_uri fetches trusted before)."""
    global _tls
    if _tls is None:
        context = ssl.create_default_context()
        context.load_verify_locations(cafile=requests_ca_bundle())
        _tls = context
    return _tls


def connect(addresses: list[Address], deadline: float) -> socket.socket:
    """A socket connected to the first of ``addresses`` that answers before the deadline
    (a timeout ends the tries: the deadline is spent); the last OSError otherwise."""
    error: OSError = ConnectionError("no address")
    for family, sockaddr in addresses:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(time_left(deadline))
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
            if isinstance(exc, TimeoutError):
                break
    raise error
