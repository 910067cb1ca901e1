"""The client's ``jwks_uri``: fetched under one deadline, behind an SSRF guard, cached.

- SMART App Launch 2.2, client-confidential-asymmetric: the client's JWK Set is fetched from
  its registered ``jwks_uri`` over TLS (plain http for loopback only)
  https://hl7.org/fhir/smart-app-launch/client-confidential-asymmetric.html
- RFC 9111 §5.2.2 (Cache-Control response directives): how long a JWK Set is reused
  https://www.rfc-editor.org/rfc/rfc9111#section-5.2.2

A client's jwks_uri is a URL chosen by whoever registered the client, so fetching it
must cost that client only (issue 11):

- one fetch takes at most the fetch timeout in all: name lookup, connect, TLS, request,
  status line, headers and body share one wall-clock deadline (a socket timeout alone
  restarts on every byte, so a server trickling a byte a second would hold us for hours);
- a failed fetch is remembered per (client, jwks_uri) for JWKS_FAILURE_CACHE seconds,
  doubling with each failure in a row up to FAILURE_BACKOFF_CAP times that: meanwhile
  the client's requests fail at once, without touching the network;
- at most one fetch per client is in flight in a process, and at most
  MAX_CONCURRENT_FETCHES in all (fewer than the threads of a worker, see serving.py):
  a request that would need another fails at once instead of waiting;
- locks guard the cache only and are never held during network I/O;
- the client is told "could not fetch jwks_uri" and nothing more (no host, port, status,
  timing word or content: the server must not be a port scanner); the log says why;
- every address the name resolves to must be a global unicast one (the SSRF guard of
  :mod:`.guarded_socket`, lifted by JWKS_ALLOW_PRIVATE_NETWORKS), and the fetch connects to
  exactly those addresses, on a socket whose every operation shares the one deadline.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import logging
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

from flask import current_app, has_app_context

from authserver.oauth.rfc7523.guarded_socket import (
    Address,
    DeadlineSocket,
    connect,
    ip_allowed,
    time_left,
    tls_context,
)
from authserver.urls import is_loopback_host

__all__ = ["JwksError", "JwksFetcher"]

log = logging.getLogger(__name__)


class JwksError(Exception):
    """The client's ``jwks_uri`` could not be used. ``str()`` is the one text the client
    is shown, whatever happened; ``reason`` says what happened, for the server's log."""

    MESSAGE = "could not fetch jwks_uri"

    def __init__(self, reason: str) -> None:
        super().__init__(self.MESSAGE)
        self.reason = reason


@dataclass
class _Entry:
    """What is known of one (client_id, jwks_uri)."""

    jwks: dict[str, Any] | None = None  # the last JWK Set downloaded, while fresh
    expires: float = 0.0  # clock time the JWK Set stops being fresh
    refetched: float | None = None  # clock time of the last unknown-kid refetch
    failures: int = 0  # failed downloads in a row
    retry_at: float = 0.0  # no download before this clock time (the negative cache)

    def empty(self) -> bool:
        return self.jwks is None and self.failures == 0 and self.refetched is None


def _max_age(cache_control: str | None, age: str | None, default: float) -> float:
    """Seconds a response may be reused, per its Cache-Control (RFC 9111 §5.2.2)."""
    if cache_control is None:
        # No directive: RFC 9111 §4.2.2 allows heuristic freshness; we use a short default.
        return default
    lifetime: float | None = None
    for part in cache_control.split(","):
        name, _, value = part.strip().partition("=")
        name = name.strip().lower()
        if name in ("no-store", "no-cache"):
            return 0.0
        if name == "max-age":
            try:
                lifetime = max(0.0, float(int(value.strip().strip('"'))))
            except ValueError:
                return 0.0  # RFC 9111 §4.2.1: an invalid max-age means stale
    if lifetime is None:
        return default
    try:
        lifetime -= max(0, int(age or 0))
    except ValueError:
        pass
    return max(0.0, lifetime)


class JwksFetcher:
    """Fetches clients' JWK Sets from their registered ``jwks_uri`` and caches them per
    process, never longer than the response's Cache-Control allows; failures are
    remembered (see the comment above). Settings left ``None`` are read from the app's
    configuration (``JWKS_FETCH_TIMEOUT``, ``JWKS_FAILURE_CACHE``,
    ``JWKS_ALLOW_PRIVATE_NETWORKS``) at each call, else the class defaults. ``clock``
    times the caches only; a download's deadline is always real time."""

    #: Whole-download deadline, seconds (lookup + connect + TLS + headers + body).
    TIMEOUT = 2.0
    #: Seconds a failed download is remembered; doubles with each failure in a row...
    FAILURE_CACHE = 30.0
    #: ... up to this many times FAILURE_CACHE.
    FAILURE_BACKOFF_CAP = 20
    #: Downloads in flight at once in a process (any clients). Kept below the threads of
    #: a gunicorn worker (serving.THREADS) so requests that fetch nothing always find one.
    MAX_CONCURRENT_FETCHES = 2
    #: Largest JWKS document accepted, bytes.
    MAX_BYTES = 64 * 1024
    #: Most keys read from one document.
    MAX_KEYS = 100
    #: Cache lifetime when the response says nothing (no Cache-Control), seconds.
    DEFAULT_TTL = 300.0
    #: Upper bound on any cache lifetime, seconds.
    MAX_TTL = 3600.0
    #: An unknown ``kid`` triggers a fresh download at most this often per client, seconds.
    REFETCH_INTERVAL = 60.0
    #: (client, jwks_uri) pairs remembered at once (least recently used dropped).
    MAX_ENTRIES = 1000

    def __init__(self, clock: Callable[[], float] = time.monotonic, *,
                 timeout: float | None = None, failure_cache: float | None = None,
                 allow_private_networks: bool | None = None) -> None:
        self._clock = clock
        self._timeout = timeout
        self._failure_cache = failure_cache
        self._allow_private = allow_private_networks
        self._lock = threading.Lock()  # guards the two below; never held during I/O
        self._entries: OrderedDict[tuple[str, str], _Entry] = OrderedDict()
        self._in_flight: set[str] = set()  # client_ids being downloaded for

    def key_set(self, client_id: str, uri: str,
                accept: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The client's JWK Set: the cached one while fresh and ``accept``-ed (it holds
        the key wanted); else downloaded now — also when a fresh set lacks the key (the
        client may have rotated), at most once per REFETCH_INTERVAL, else that set is
        returned as it is. Raises :class:`JwksError` when a download fails or may not start
        (a failure is remembered, another download for the client or too many downloads
        are in flight)."""
        key = (client_id, uri)
        with self._lock:
            now = self._clock()
            entry = self._entries.get(key)
            fresh = entry.jwks if entry is not None and entry.expires > now else None
            if fresh is not None:
                self._entries.move_to_end(key)
                if accept(fresh):
                    return fresh
                if entry.refetched is not None and now - entry.refetched < self.REFETCH_INTERVAL:
                    return fresh  # looked again lately: no key matches, the caller refuses
            refusal = self._refusal(entry, client_id, now)
            if refusal is None:
                if fresh is not None:
                    entry.refetched = now
                self._in_flight.add(client_id)
        if refusal is not None:
            log.info("jwks_uri of client %s not fetched: %s", client_id, refusal)
            raise JwksError(refusal)
        try:
            jwks, ttl = self._download(uri)
        except JwksError as exc:
            retry_in = self._failed(key)
            log.warning("jwks_uri of client %s could not be fetched (%s); no new attempt "
                        "for %d s", client_id, exc.reason, retry_in)
            raise
        else:
            self._succeeded(key, jwks, ttl)  # before leaving the flight: no second fetch
        finally:
            with self._lock:
                self._in_flight.discard(client_id)
        return jwks

    def _refusal(self, entry: _Entry | None, client_id: str, now: float) -> str | None:
        """Why no download may start now (called with the lock held), or None."""
        if entry is not None and entry.retry_at > now:
            return f"an earlier failure is remembered for {entry.retry_at - now:.0f} s more"
        if client_id in self._in_flight:
            return "another fetch for this client is in flight"
        if len(self._in_flight) >= self.MAX_CONCURRENT_FETCHES:
            return "too many jwks_uri fetches in flight"
        return None

    def _failed(self, key: tuple[str, str]) -> float:
        """Remember a failed download; returns the seconds until the next may start."""
        base = self._setting(self._failure_cache, "JWKS_FAILURE_CACHE", self.FAILURE_CACHE)
        with self._lock:
            entry = self._entry(key)
            entry.failures += 1
            period = base * min(2 ** min(entry.failures - 1, 16), self.FAILURE_BACKOFF_CAP)
            entry.retry_at = self._clock() + period
        return period

    def _succeeded(self, key: tuple[str, str], jwks: dict[str, Any], ttl: float) -> None:
        with self._lock:
            entry = self._entry(key)
            entry.failures, entry.retry_at = 0, 0.0
            if ttl > 0:
                entry.jwks, entry.expires = jwks, self._clock() + min(ttl, self.MAX_TTL)
            else:
                entry.jwks, entry.expires = None, 0.0
            if entry.empty():
                del self._entries[key]

    def _entry(self, key: tuple[str, str]) -> _Entry:
        """The entry for ``key``, created (and the oldest dropped) if new; lock held."""
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry()
            while len(self._entries) > self.MAX_ENTRIES:
                self._entries.popitem(last=False)
        self._entries.move_to_end(key)
        return entry

    def _setting(self, explicit: Any, name: str, default: Any) -> Any:
        if explicit is not None:
            return explicit
        if has_app_context():
            return current_app.config.get(name, default)
        return default

    def _download(self, uri: str) -> tuple[dict[str, Any], float]:
        """GET ``uri`` within the deadline; (JWK Set, seconds it may be cached)."""
        timeout = float(self._setting(self._timeout, "JWKS_FETCH_TIMEOUT", self.TIMEOUT))
        allow_private = bool(self._setting(self._allow_private, "JWKS_ALLOW_PRIVATE_NETWORKS",
                                           False))
        deadline = time.monotonic() + timeout
        parts = urlsplit(uri)
        try:
            port = parts.port
        except ValueError:
            raise JwksError("invalid port") from None
        host = parts.hostname or ""
        if not (parts.scheme == "https" and host) and not (
                parts.scheme == "http" and is_loopback_host(host)):
            # SMART: the JWKS URL is fetched over TLS; plain http only for loopback.
            raise JwksError("not https")
        port = port or (443 if parts.scheme == "https" else 80)
        addresses = _resolve(host, port, deadline)
        if not allow_private and not all(ip_allowed(ip) for _f, (ip, *_r) in addresses):
            raise JwksError("resolves to a private, loopback or reserved address")
        body, headers = _get(parts, port, addresses, deadline, self.MAX_BYTES)
        try:
            doc = json.loads(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise JwksError("not JSON") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
            raise JwksError("not a JWK Set")
        ttl = _max_age(headers.get("Cache-Control"), headers.get("Age"), self.DEFAULT_TTL)
        return {"keys": [k for k in doc["keys"][: self.MAX_KEYS] if isinstance(k, dict)]}, ttl


# ---- one GET under one deadline --------------------------------------------------------


def _resolve(host: str, port: int, deadline: float) -> list[Address]:
    """The addresses ``host`` resolves to, within the deadline. getaddrinfo has no timeout
    of its own (a name server that never answers holds it for the resolver's retries), so
    it runs in a daemon thread we stop waiting for at the deadline."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
        return [(family, (host, port))]
    found: list[Any] = []

    def lookup() -> None:
        try:
            found.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except (OSError, UnicodeError) as exc:
            found.append(exc)

    thread = threading.Thread(target=lookup, name="jwks-uri-lookup", daemon=True)
    thread.start()
    thread.join(max(0.0, deadline - time.monotonic()))
    if not found:
        raise JwksError("name lookup timed out")
    if isinstance(found[0], Exception) or not found[0]:
        raise JwksError("name does not resolve")
    return [(info[0], info[4]) for info in found[0]]


def _get(parts: SplitResult, port: int, addresses: list[Address], deadline: float,
         max_bytes: int) -> tuple[bytes, Any]:
    """GET the URL from one of ``addresses`` (no redirects followed, no proxy); the body
    (at most ``max_bytes``) and the headers of a 200 answer. Raises :class:`JwksError`."""
    host = parts.hostname or ""
    try:
        sock = connect(addresses, deadline)
    except TimeoutError:
        raise JwksError("connect timed out") from None
    except OSError as exc:
        raise JwksError(f"connect failed ({exc.__class__.__name__})") from None
    try:
        if parts.scheme == "https":
            sock.settimeout(time_left(deadline))  # the handshake's total deadline
            sock = tls_context().wrap_socket(sock, server_hostname=host)
        resp = _send_request(parts, host, port, DeadlineSocket(sock, deadline))
        if resp.status != 200:
            # Redirects are not followed: a 3xx is a failure like any other status.
            raise JwksError(f"HTTP status {resp.status}")
        return _read_body(resp, max_bytes), resp.headers
    except TimeoutError:
        raise JwksError("deadline passed") from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise JwksError(f"{exc.__class__.__name__}") from None
    finally:
        sock.close()


def _send_request(parts: SplitResult, host: str, port: int,
                  sock: DeadlineSocket) -> http.client.HTTPResponse:
    """Send the GET on the connected ``sock``; the response, status line and headers read."""
    conn = http.client.HTTPConnection(host, port)  # never connects: sock is given
    conn.sock = sock  # type: ignore[assignment]
    conn.putrequest("GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
                    skip_host=True, skip_accept_encoding=True)
    conn.putheader("Host", parts.netloc.rpartition("@")[2])
    conn.putheader("Accept", "application/json")
    conn.putheader("Accept-Encoding", "identity")
    conn.putheader("Connection", "close")
    conn.endheaders()
    return conn.getresponse()


def _read_body(resp: http.client.HTTPResponse, max_bytes: int) -> bytes:
    """The response body; :class:`JwksError` if it is (or is declared) over ``max_bytes``."""
    declared = resp.getheader("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise JwksError("document too large")
    body = bytearray()
    while len(body) <= max_bytes:
        chunk = resp.read(min(8192, max_bytes + 1 - len(body)))
        if not chunk:
            break
        body += chunk
    if len(body) > max_bytes:
        raise JwksError("document too large")
    return bytes(body)
