"""The raw signing rate: what ``cryptography`` alone signs per second, the ceiling the token
endpoint's rate is compared with (``bench/run.py``).

The key comes from :func:`authserver.keys.new_private_key` and the algorithm's hash from
:data:`authserver.jose.ALGS`, so the rate is that of the very keys the server signs with; the
bare sign leaves out what :class:`authserver.jose.Signer` adds (JSON, base64url, the ECDSA
``R || S`` conversion).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric import ec, padding

from authserver import jose, keys

__all__ = ["raw_sign_rate"]


def raw_sign_rate(alg: str, seconds: float = 1.0) -> float:
    """Signatures per second of the bare ``cryptography`` sign over a ~300-byte message."""
    key = keys.new_private_key(alg)
    # 225 random bytes -> 300 base64url characters, the size of a typical JWS signing input.
    message = jose.b64url_encode(os.urandom(225)).encode("ascii")
    sign = _make_bare_signer(key, jose.ALGS[alg])
    sign(message)  # warm up
    count = 0
    start = time.perf_counter()
    while True:
        sign(message)
        count += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return count / elapsed


def _make_bare_signer(key: jose.PrivateKey, spec: jose.AlgSpec) -> Callable[[bytes], bytes]:
    if spec.kty == "RSA":
        pad, hash_obj = padding.PKCS1v15(), spec.hash_cls()

        def sign_rsa(data: bytes) -> bytes:
            return key.sign(data, pad, hash_obj)  # type: ignore[call-arg]

        return sign_rsa
    sig_alg = ec.ECDSA(spec.hash_cls())

    def sign_ec(data: bytes) -> bytes:
        return key.sign(data, sig_alg)  # type: ignore[call-arg]

    return sign_ec
