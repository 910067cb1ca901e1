"""Signing keys in the database, loaded (and decrypted) once per process.

The JWKS is read from the database on every request so that a key made by
``authserver keys rotate`` is published at once on every worker; signers are cached per
process and re-read at most every :data:`SIGNER_TTL` seconds, so a rotation takes effect
everywhere within that time while earlier keys stay published until their tokens expire.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app

from authserver import jose, keys, store

if TYPE_CHECKING:
    from authserver.models import SigningKey

__all__ = [
    "ID_TOKEN_ALG",
    "SIGNER_TTL",
    "ensure_keys",
    "get_signer",
    "init_app",
    "public_jwks",
    "rotate",
    "list_keys",
]

#: OpenID Connect and SMART: id_tokens are RS256 (Inferno accepts nothing else).
ID_TOKEN_ALG = "RS256"
#: How long a process keeps using the signer it loaded before looking for a newer key.
SIGNER_TTL = 30.0



class _Signers:
    """The app's signer cache: ``alg -> (signer, loaded at)``, kept in ``app.extensions``
    (one per app, so nothing is shared between apps or keyed by the database URL)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_alg: dict[str, tuple[jose.Signer, float]] = {}


def _signers() -> _Signers:
    return current_app.extensions["authserver.signers"]


def _to_record(row: SigningKey) -> keys.KeyRecord:
    def dt(v: int | None) -> datetime | None:
        return None if v is None else datetime.fromtimestamp(v, UTC)

    return keys.KeyRecord(
        kid=row.kid, alg=row.alg, public_jwk=dict(row.public_jwk),
        private_blob=bytes(row.private_blob), created_at=dt(row.created_at),
        retired_at=dt(row.retired_at),
    )


def _kek() -> bytes:
    return keys.load_kek(current_app.config["KEY_ENCRYPTION_KEY"])


def required_algs() -> list[str]:
    algs = [ID_TOKEN_ALG]
    if current_app.config["SIGNING_ALG"] not in algs:
        algs.append(current_app.config["SIGNING_ALG"])
    return algs


def _max_token_lifetime() -> timedelta:
    c = current_app.config
    return timedelta(seconds=max(c["ACCESS_TOKEN_LIFETIME"], c["ID_TOKEN_LIFETIME"],
                                 c["CLIENT_CREDENTIALS_TOKEN_LIFETIME"]))


def _add_key(alg: str, now: datetime) -> SigningKey:
    rec = keys.generate_key(alg, _kek(), now)
    return store.signing_keys.add_key(kid=rec.kid, alg=rec.alg, public_jwk=rec.public_jwk,
                                      private_blob=rec.private_blob,
                                      created_at=int(now.timestamp()))


@store.transaction()
def ensure_keys(now: datetime | None = None) -> list[str]:
    """Create an active key for every algorithm in use that has none; return new kids."""
    now = now or datetime.now(UTC)
    have = {r.alg for r in store.signing_keys.active_keys()}
    return [_add_key(alg, now).kid for alg in required_algs() if alg not in have]


def rotate(now: datetime | None = None) -> list[str]:
    """Retire every active key and make a new one per algorithm in use; return new kids."""
    now = now or datetime.now(UTC)
    with store.transaction():
        current = store.signing_keys.active_keys()
        algs = sorted({r.alg for r in current} | set(required_algs()))
        for row in current:
            row.retired_at = int(now.timestamp())
        made = [_add_key(alg, now).kid for alg in algs]
    cache = _signers()
    with cache.lock:
        cache.by_alg.clear()
    return made


def list_keys(now: datetime | None = None) -> list[dict[str, Any]]:
    now = now or datetime.now(UTC)
    rows = store.signing_keys.all_keys()
    shown = {r.kid for r in keys.published([_to_record(r) for r in rows], now,
                                           _max_token_lifetime())}
    return [{"kid": r.kid, "alg": r.alg, "created_at": r.created_at,
             "retired_at": r.retired_at, "active": r.retired_at is None,
             "published": r.kid in shown} for r in rows]


def public_jwks(now: datetime | None = None) -> dict[str, Any]:
    """The JWKS: active keys and retired keys whose tokens may still be alive."""
    now = now or datetime.now(UTC)
    rows = store.signing_keys.all_keys()
    return keys.jwks(keys.published([_to_record(r) for r in rows], now, _max_token_lifetime()))


def get_signer(alg: str | None = None) -> jose.Signer:
    """The signer of the newest active key for ``alg`` (default: SIGNING_ALG)."""
    alg = alg or current_app.config["SIGNING_ALG"]
    cache = _signers()
    hit = cache.by_alg.get(alg)
    now = time.monotonic()
    if hit and now - hit[1] < SIGNER_TTL:
        return hit[0]
    with cache.lock:
        row = store.signing_keys.newest_active(alg)
        if row is None:
            raise keys.KeyConfigError(f"no active {alg} signing key: run 'authserver init'")
        if hit and hit[0].kid == row.kid:
            signer = hit[0]
        else:
            signer = jose.Signer.from_record(_to_record(row), _kek())
        cache.by_alg[alg] = (signer, now)
        return signer


def init_app(app: Flask) -> None:
    app.extensions["authserver.signers"] = _Signers()
