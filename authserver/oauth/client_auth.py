"""``private_key_jwt``: asymmetric client authentication, as SMART profiles it.

- RFC 7523 §2.2 and §3 (JWT for client authentication)
  https://www.rfc-editor.org/rfc/rfc7523#section-3
- SMART App Launch 2.2, client-confidential-asymmetric
  https://hl7.org/fhir/smart-app-launch/client-confidential-asymmetric.html
- RFC 9111 §5.2.2 (Cache-Control response directives), for the client's ``jwks_uri``.

Authlib's :class:`JWTBearerClientAssertion` (registered by Authlib as
``client_assertion_jwt``) is subclassed and registered under the name SMART and
discovery use, ``private_key_jwt``. Its ``__call__`` resolves the key from the client
alone and lets joserfc pick the algorithm; SMART needs the header's ``kid``, ``alg`` and
``jku`` to choose exactly one key, so ``__call__`` is re-written here as a row of small
named checks, each refusing with ``invalid_client`` and a description naming the rule.
Signatures are checked by :func:`authserver.jose.verify_compact` (never ``none``/HS*).

The method works for every endpoint that authenticates clients (token, introspection,
revocation): see :meth:`PrivateKeyJWT.get_audiences` for the ``aud`` each accepts.

A client's ``jwks_uri`` is fetched by :class:`JwksFetcher` so that a slow, hanging or
failing one costs that client only, and the client learns nothing of what answered there
(see the comment opening its section).
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import json
import logging
import socket
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from flask import current_app, has_app_context, has_request_context
from flask import request as flask_request
from requests.certs import where as requests_ca_bundle

from authserver import clock, jose, store
from authserver.oauth.registration import is_loopback_host

__all__ = ["ASSERTION_TYPE", "JwksError", "JwksFetcher", "PrivateKeyJWT"]

log = logging.getLogger(__name__)

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

#: Paths (relative to the issuer) whose own URL is also accepted as an assertion ``aud``.
_OWN_AUDIENCE_PATHS = ("/introspect", "/revoke")


class JwksError(Exception):
    """The client's ``jwks_uri`` could not be used. ``str()`` is the one text the client
    is shown, whatever happened; ``reason`` says what happened, for the server's log."""

    MESSAGE = "could not fetch jwks_uri"

    def __init__(self, reason: str) -> None:
        super().__init__(self.MESSAGE)
        self.reason = reason


# ---- the client's JWKS: fetched, cached as its Cache-Control allows ------------------
#
# A client's jwks_uri is a URL chosen by whoever registered the client, so fetching it
# must cost that client only (issue 11):
# - one fetch takes at most the fetch timeout in all: name lookup, connect, TLS, request,
#   status line, headers and body share one wall-clock deadline (a socket timeout alone
#   restarts on every byte, so a server trickling a byte a second would hold us for hours);
# - a failed fetch is remembered per (client, jwks_uri) for JWKS_FAILURE_CACHE seconds,
#   doubling with each failure in a row up to FAILURE_BACKOFF_CAP times that: meanwhile
#   the client's requests fail at once, without touching the network;
# - at most one fetch per client is in flight in a process, and at most
#   MAX_CONCURRENT_FETCHES in all (fewer than the threads of a worker, see serving.py):
#   a request that would need another fails at once instead of waiting;
# - locks guard the cache only and are never held during network I/O;
# - the client is told "could not fetch jwks_uri" and nothing more (no host, port, status,
#   timing word or content: the server must not be a port scanner); the log says why.

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
        if not allow_private and not all(_ip_allowed(ip) for _f, (ip, *_r) in addresses):
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

_Address = tuple[int, tuple[Any, ...]]  # (address family, socket address)


def _left(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("deadline")
    return left


def _resolve(host: str, port: int, deadline: float) -> list[_Address]:
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


def _ip_allowed(address: str) -> bool:
    """SSRF guard for one address: global unicast only (no loopback, private,
    link-local — e.g. the cloud metadata 169.254.169.254 —, reserved, multicast or
    unspecified address)."""
    ip = ipaddress.ip_address(str(address).split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def address_allowed(host: str) -> bool:
    """SSRF guard: may we connect to ``host``? Every address it resolves to must pass
    :func:`_ip_allowed` (loopback is refused too: JWKS_ALLOW_PRIVATE_NETWORKS=1 lifts the
    guard for development and on-premises deployments). A name that does not resolve is
    left to the fetch to fail. The fetch checks the addresses it resolved itself and
    connects to those very addresses, so a DNS answer cannot change in between."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return True
    return all(_ip_allowed(info[4][0]) for info in infos)


class _DeadlineSocket:
    """A connected socket whose every operation may only use the time left before the
    deadline; what :class:`http.client.HTTPConnection` needs of a socket."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock, self._deadline = sock, deadline

    def sendall(self, data: bytes) -> None:
        self._sock.settimeout(_left(self._deadline))
        self._sock.sendall(data)  # the timeout bounds the whole sendall (Python >= 3.5)

    def recv_into(self, buffer: Any, nbytes: int = 0) -> int:
        self._sock.settimeout(_left(self._deadline))
        return self._sock.recv_into(buffer, nbytes)

    def makefile(self, mode: str = "rb", *_args: Any, **_kwargs: Any) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self))

    def close(self) -> None:
        pass  # http.client closes its connection before the body of a close-delimited
        # answer is read; the socket is closed by whoever opened it (_get)


class _DeadlineReader(io.RawIOBase):
    def __init__(self, sock: _DeadlineSocket) -> None:
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._sock.recv_into(buffer)


_tls: ssl.SSLContext | None = None


def _tls_context() -> ssl.SSLContext:
    """Certificate and host name verified; trusted: the system store and the bundle
    requests uses (what jwks_uri fetches trusted before)."""
    global _tls
    if _tls is None:
        context = ssl.create_default_context()
        context.load_verify_locations(cafile=requests_ca_bundle())
        _tls = context
    return _tls


def _connect(addresses: list[_Address], deadline: float) -> socket.socket:
    error: OSError = ConnectionError("no address")
    for family, sockaddr in addresses:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(_left(deadline))
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
            if isinstance(exc, TimeoutError):
                break
    raise error


def _get(parts: SplitResult, port: int, addresses: list[_Address], deadline: float,
         max_bytes: int) -> tuple[bytes, Any]:
    """GET the URL from one of ``addresses`` (no redirects followed, no proxy); the body
    (at most ``max_bytes``) and the headers of a 200 answer. Raises :class:`JwksError`."""
    host = parts.hostname or ""
    try:
        sock = _connect(addresses, deadline)
    except TimeoutError:
        raise JwksError("connect timed out") from None
    except OSError as exc:
        raise JwksError(f"connect failed ({exc.__class__.__name__})") from None
    try:
        if parts.scheme == "https":
            sock.settimeout(_left(deadline))  # the handshake's total deadline
            sock = _tls_context().wrap_socket(sock, server_hostname=host)
        conn = http.client.HTTPConnection(host, port)  # never connects: sock is given
        conn.sock = _DeadlineSocket(sock, deadline)  # type: ignore[assignment]
        conn.putrequest("GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""),
                        skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", parts.netloc.rpartition("@")[2])
        conn.putheader("Accept", "application/json")
        conn.putheader("Accept-Encoding", "identity")
        conn.putheader("Connection", "close")
        conn.endheaders()
        resp = conn.getresponse()
        if resp.status != 200:
            # Redirects are not followed: a 3xx is a failure like any other status.
            raise JwksError(f"HTTP status {resp.status}")
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
        return bytes(body), resp.headers
    except TimeoutError:
        raise JwksError("deadline passed") from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise JwksError(f"{exc.__class__.__name__}") from None
    finally:
        sock.close()


# ---- the client authentication method ------------------------------------------------

_KTY_OF_ALG = {"RS256": "RSA", "RS384": "RSA", "ES256": "EC", "ES384": "EC"}


class PrivateKeyJWT(JWTBearerClientAssertion):
    """SMART ``private_key_jwt`` (RFC 7523 client assertion) for any endpoint."""

    CLIENT_AUTH_METHOD = "private_key_jwt"
    #: SMART: servers SHALL support RS384 and ES384; RS256/ES256 are accepted too.
    #: Never ``none`` and never HS* (a public key used as an HMAC secret).
    ALGORITHMS = ("RS384", "ES384", "RS256", "ES256")
    #: SMART: "exp ... no more than five minutes in the future".
    MAX_LIFETIME = 300
    #: Clock skew allowed on ``exp`` (both ways) and ``nbf``, seconds.
    LEEWAY = 30
    MAX_ASSERTION_LENGTH = 16 * 1024
    MAX_JTI_LENGTH = 255  # the ClientAssertionJti.jti column
    #: Expired jti rows are deleted at most this often per process, seconds.
    PRUNE_INTERVAL = 60.0

    def __init__(self, fetcher: JwksFetcher | None = None) -> None:
        super().__init__(validate_jti=True, leeway=self.LEEWAY)
        self.fetcher = fetcher or JwksFetcher()
        self._pruned_at = 0.0

    # -- the checks, in order ----------------------------------------------------------

    def __call__(self, query_client: Callable[[str], Any], request: Any) -> Any:
        form = request.form
        assertion = form.get("client_assertion")
        assertion_type = form.get("client_assertion_type")
        if not assertion and not assertion_type:
            return None  # not this method: let the next one try
        fail = _failer(request)
        # RFC 6749 §3.2: request parameters MUST NOT be included more than once.
        if len(form.getlist("client_assertion")) > 1 or len(
                form.getlist("client_assertion_type")) > 1:
            raise fail("'client_assertion' and 'client_assertion_type' must be sent once")
        if assertion_type != ASSERTION_TYPE:
            raise fail(f"'client_assertion_type' must be '{ASSERTION_TYPE}'")
        if not assertion:
            raise fail("Missing 'client_assertion'")
        if len(assertion) > self.MAX_ASSERTION_LENGTH:
            raise fail("'client_assertion' is too long")
        try:
            header, claims = self.extract_assertion(assertion)
        except InvalidClientError:
            raise fail("'client_assertion' is not a signed JWT") from None
        alg = self._check_header(header, fail)
        client_id = self._check_identity(claims, form.get("client_id"), fail)
        client = query_client(client_id)
        if client is None:
            raise fail("assertion 'sub': unknown client")
        if not client.check_endpoint_auth_method(self.CLIENT_AUTH_METHOD, "token"):
            raise fail("the client is not registered for 'private_key_jwt'")
        key_set = self.resolve_client_public_key(client, header, fail)
        request.client = client
        self.process_assertion_claims(assertion, key_set, alg=alg, fail=fail)
        return self.authenticate_client(client)

    def _check_header(self, header: dict[str, Any], fail: Callable[[str], Exception]) -> str:
        alg = header.get("alg")
        if alg not in self.ALGORITHMS:
            # SMART: the AS SHALL support RS384 and ES384; never 'none', never a MAC.
            raise fail(f"assertion 'alg' must be one of {', '.join(self.ALGORITHMS)}")
        typ = header.get("typ")
        # SMART: header "typ": fixed value "JWT" (RFC 7515 §4.1.9: compared case-insensitively).
        if not isinstance(typ, str) or typ.upper() != "JWT":
            raise fail("assertion header 'typ' must be 'JWT'")
        kid = header.get("kid")
        # SMART: "kid: the identifier of the key-pair used to sign this JWT" (REQUIRED).
        if not isinstance(kid, str) or not kid:
            raise fail("assertion header 'kid' is required")
        return alg

    def _check_identity(self, claims: dict[str, Any], form_client_id: Any,
                        fail: Callable[[str], Exception]) -> str:
        iss, sub = claims.get("iss"), claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise fail("assertion 'sub' is required")
        if not isinstance(iss, str) or not iss:
            raise fail("assertion 'iss' is required")
        # RFC 7523 §3 and SMART: iss and sub MUST both be the client_id.
        if iss != sub:
            raise fail("assertion 'iss' must equal 'sub'")
        # SMART: "client_id (if sent) must be known and equal iss".
        if form_client_id is not None and form_client_id != sub:
            raise fail("assertion 'sub' must equal the 'client_id' parameter")
        return sub

    # -- Authlib hooks ---------------------------------------------------------------

    def get_audiences(self) -> list[str]:
        """The ``aud`` values accepted.

        SMART says the assertion's ``aud`` is the token endpoint URL, and that is accepted
        at every endpoint. RFC 7523 §3 only asks that ``aud`` identify this server, so the
        issuer identifier is accepted too: draft-ietf-oauth-rfc7523bis makes it THE audience
        (it names no endpoint an attacker could share with another server), and widely used
        clients (openid-client) send it by default. At /introspect and /revoke the
        endpoint's own URL is accepted as well (some clients address the endpoint they call).
        """
        issuer = current_app.config["ISSUER"]
        audiences = [issuer + "/token", issuer]
        if has_request_context() and flask_request.path in _OWN_AUDIENCE_PATHS:
            audiences.append(issuer + flask_request.path)
        return audiences

    def resolve_client_public_key(self, client: Any, header: dict[str, Any] | None = None,
                                  fail: Callable[[str], Exception] | None = None
                                  ) -> dict[str, Any]:
        """A JWK Set holding exactly the one key matching ``kid`` and the ``alg``'s type."""
        fail = fail or _failer(None)
        header = header or {}
        meta = client.row.client_metadata or {}
        uri = meta.get("jwks_uri")
        jku = header.get("jku")
        if jku is not None and (not uri or jku != uri):
            # SMART: a jku header MUST equal the registered JWKS URL; never fetch another.
            raise fail("assertion header 'jku' must equal the registered 'jwks_uri'")
        kid, kty = header.get("kid"), _KTY_OF_ALG.get(header.get("alg", ""))
        if not uri:
            matches = _matching(meta.get("jwks"), kid, kty)
        else:
            try:
                # An unknown kid may mean the client rotated its keys: the fetcher looks
                # again, at most once a minute per client.
                jwks = self.fetcher.key_set(client.get_client_id(), uri,
                                            lambda s: bool(_matching(s, kid, kty)))
            except JwksError as exc:
                # Never the host, port, status or content: the client learns only this.
                raise fail(str(exc)) from None
            matches = _matching(jwks, kid, kty)
        # SMART: "select exactly one key with matching kid and kty"; 0 or >1 fails.
        if not matches:
            raise fail("no key of the client matches the assertion 'kid' and 'alg'")
        if len(matches) > 1:
            raise fail("more than one key of the client matches the assertion 'kid'")
        return {"keys": matches}

    def process_assertion_claims(self, assertion: str, resolve_key: Any, *, alg: str = "",
                                 fail: Callable[[str], Exception] | None = None
                                 ) -> dict[str, Any]:
        fail = fail or _failer(None)
        try:
            _header, claims = jose.verify_compact(assertion, resolve_key, [alg])
        except jose.TokenError as exc:
            reason = "signature is invalid" if "signature" in str(exc) else str(exc)
            raise fail(f"assertion {reason}") from None
        self.verify_claims(claims, fail)
        return claims

    def verify_claims(self, claims: Any, fail: Callable[[str], Exception] | None = None
                      ) -> None:
        fail = fail or _failer(None)
        now = clock.now()
        exp = claims.get("exp")
        if not _is_number(exp):
            raise fail("assertion 'exp' is required")
        if exp <= now - self.leeway:
            raise fail("assertion has expired ('exp')")
        if exp > now + self.MAX_LIFETIME + self.leeway:
            # SMART: exp "no more than five minutes in the future".
            raise fail("assertion 'exp' is more than 5 minutes in the future")
        nbf = claims.get("nbf")
        if nbf is not None and (not _is_number(nbf) or nbf > now + self.leeway):
            raise fail("assertion is not valid yet ('nbf')")
        aud = claims.get("aud")
        auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        # RFC 7523 §3: aud MUST identify this server; SMART: the token endpoint URL.
        if not set(self.get_audiences()).intersection(a for a in auds if isinstance(a, str)):
            raise fail("assertion 'aud' must be the token endpoint URL (or the issuer)")
        if claims.get("sub") != claims.get("iss"):
            raise fail("assertion 'iss' must equal 'sub'")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise fail("assertion 'jti' is required")
        if len(jti) > self.MAX_JTI_LENGTH:
            raise fail("assertion 'jti' is too long")
        if not self.validate_jti(claims, jti):
            # RFC 7523 §3: the server MAY refuse a replayed jti; SMART: it SHALL.
            raise fail("assertion 'jti' was already used")

    def validate_jti(self, claims: dict[str, Any], jti: str) -> bool:
        """Remember the ``jti`` in the database (unique per client) while the assertion
        could still be accepted; False when it was seen before."""
        now = time.monotonic()
        if now - self._pruned_at > self.PRUNE_INTERVAL:
            self._pruned_at = now
            store.jti.prune_assertion_jtis()
        return store.jti.claim_assertion_jti(claims["iss"], jti, int(claims["exp"]) + self.leeway)

    def authenticate_client(self, client: Any) -> Any:
        return client  # its method was checked before any key was fetched


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _matching(jwks: Any, kid: Any, kty: str | None) -> list[dict[str, Any]]:
    keys_ = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys_, list):
        return []
    return [k for k in keys_ if isinstance(k, dict) and k.get("kid") == kid
            and k.get("kty") == kty]


def _failer(request: Any) -> Callable[[str], Exception]:
    """Build ``invalid_client`` errors: 401 when the client used HTTP authentication
    (RFC 6749 §5.2), else 400."""
    headers = getattr(request, "headers", None) or {}
    status = 401 if headers.get("Authorization") else 400

    def fail(description: str) -> Exception:
        log.info("private_key_jwt refused: %s", description)
        return InvalidClientError(description=description, status_code=status)

    return fail
