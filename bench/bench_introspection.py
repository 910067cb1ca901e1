"""Introspection and revocation benchmark (RFC 7662 /introspect, RFC 7009 /revoke).

``run(base_url, client_id, client_secret, tokens, seconds)`` drives a running server on
127.0.0.1 with the bounded load generator of ``loadgen.py`` (same method as the token
endpoint benchmark: new connection per request, fixed requests in flight, time limit):

1. POST /introspect for ``tokens`` (round robin), HTTP Basic ``client_id:client_secret``;
   every answer must be 200 with ``"active": true``;
2. POST /revoke for the same tokens (the first pass revokes, later passes find them revoked);
3. the raw signature-verification rate of the tokens' algorithm on one core
   (``cryptography``, no JWT parsing), and the ratios requests/s : verifications/s.

``client_id``/``client_secret`` are a confidential app (client_secret_basic) that owns
``tokens``: an app may introspect and revoke its own tokens, so one credential serves both
phases (a resource server's credentials cost the same at /introspect).

Standalone: ``python bench/bench_introspection.py [--seconds 10] [--tokens 200]`` makes a
throw-away SQLite instance (or ``--database-url``), mints the tokens in-process, starts
``authserver serve --workers 2`` and prints the result as JSON.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import requests

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from loadgen import form_post, run_load  # noqa: E402
from servers import free_port, start_server, stop  # noqa: E402

__all__ = ["run", "raw_verify_rate"]

FHIR_BASE = "http://127.0.0.1:8001/fhir"
SCOPE = "openid fhirUser launch/patient patient/*.rs"


def _b64d(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def raw_verify_rate(token: str, jwks: dict[str, Any], seconds: float = 1.0) -> tuple[str, float]:
    """(alg, signature verifications per second on one core) for ``token``'s key: the bare
    ``cryptography`` verify of its signing input, nothing else."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    head, body, sig = token.split(".")
    header = json.loads(_b64d(head))
    jwk = next(k for k in jwks["keys"] if k.get("kid") == header["kid"])
    alg = header["alg"]
    hash_alg = hashes.SHA256() if alg.endswith("256") else hashes.SHA384()
    data, signature = f"{head}.{body}".encode(), _b64d(sig)
    if jwk["kty"] == "RSA":
        pub = rsa.RSAPublicNumbers(int.from_bytes(_b64d(jwk["e"]), "big"),
                                   int.from_bytes(_b64d(jwk["n"]), "big")).public_key()

        def verify() -> None:
            pub.verify(signature, data, padding.PKCS1v15(), hash_alg)
    else:
        curve = ec.SECP256R1() if jwk["crv"] == "P-256" else ec.SECP384R1()
        pub = ec.EllipticCurvePublicNumbers(int.from_bytes(_b64d(jwk["x"]), "big"),
                                            int.from_bytes(_b64d(jwk["y"]), "big"),
                                            curve).public_key()
        half = len(signature) // 2
        der = encode_dss_signature(int.from_bytes(signature[:half], "big"),
                                   int.from_bytes(signature[half:], "big"))

        def verify() -> None:
            pub.verify(der, data, ec.ECDSA(hash_alg))
    verify()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        verify()
        n += 1
    return alg, n / (time.perf_counter() - start)


def _scenario(name: str, port: int, make: Any, seconds: float, concurrency: int) -> dict:
    run_load(port, make, total=100, concurrency=concurrency, time_limit=5)  # warm-up
    result = run_load(port, make, total=10_000_000, concurrency=concurrency,
                      time_limit=seconds)
    summary = result.summary()
    summary["name"] = name
    summary["sample"] = result.sample.split(b"\r\n\r\n", 1)[-1][:200].decode(errors="replace")
    print(f"  {name:<24} {summary['rps']:8.1f} req/s   p50 {summary['p50_ms']:6.2f} ms"
          f"   p99 {summary['p99_ms']:6.2f} ms   ({summary['requests']} requests, "
          f"statuses {summary['statuses']})", file=sys.stderr)
    return summary


def run(base_url: str, client_id: str, client_secret: str, tokens: list[str],
        seconds: float, *, concurrency: int = 4) -> dict[str, Any]:
    """Benchmark /introspect then /revoke on a running server at ``base_url``
    (http://127.0.0.1:PORT). ``tokens`` are live access tokens of ``client_id``; they are
    all revoked afterwards."""
    parts = urlsplit(base_url)
    if parts.hostname != "127.0.0.1" or not parts.port:
        raise ValueError("base_url must be http://127.0.0.1:PORT (the load generator is local)")
    if not tokens:
        raise ValueError("at least one token is needed")
    port = parts.port
    basic = "Basic " + base64.b64encode(
        f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}".encode()).decode()
    for token in tokens[:5]:  # the tokens must be live for the numbers to mean anything
        body = requests.post(base_url + "/introspect", data={"token": token},
                             headers={"Authorization": basic}, timeout=10).json()
        if body.get("active") is not True:
            raise ValueError(f"token is not active at {base_url}/introspect: {body}")
    introspect_bodies = [form_post(port, "/introspect", urlencode({"token": t}),
                                   {"Authorization": basic}) for t in tokens]
    revoke_bodies = [form_post(port, "/revoke", urlencode({
        "token": t, "token_type_hint": "access_token"}), {"Authorization": basic})
        for t in tokens]
    n = len(tokens)
    introspect = _scenario("POST /introspect", port, lambda i: introspect_bodies[i % n],
                           seconds, concurrency)
    if '"active": true' not in introspect["sample"].replace('"active":true', '"active": true'):
        raise RuntimeError(f"introspection answered {introspect['sample']!r}")
    revoke = _scenario("POST /revoke", port, lambda i: revoke_bodies[i % n], seconds,
                       concurrency)
    jwks = requests.get(base_url + "/.well-known/jwks.json", timeout=10).json()
    alg, raw = max((raw_verify_rate(tokens[0], jwks, 1.0) for _ in range(3)),
                   key=lambda r: r[1])
    result = {
        "concurrency": concurrency, "seconds": seconds, "tokens": n, "alg": alg,
        "introspect": introspect, "revoke": revoke,
        "raw_verify_rate": round(raw, 1),
        "introspect_to_raw_verify": round(introspect["rps"] / raw, 3),
        "revoke_to_raw_verify": round(revoke["rps"] / raw, 3),
    }
    print(f"  raw {alg} verifications/s on one core: {raw:.1f}; ratios: introspect "
          f"{result['introspect_to_raw_verify']:.3f}, revoke "
          f"{result['revoke_to_raw_verify']:.3f}", file=sys.stderr)
    return result


# ---- standalone ------------------------------------------------------------------------

def _mint(env: dict[str, str], count: int) -> tuple[str, str, list[str]]:
    """A confidential app and ``count`` access tokens of it (one grant each), in-process."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        from authserver.app import create_app

        app = create_app()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    with app.app_context():
        from authserver import clock, store
        from authserver.extensions import db
        from authserver.oauth.tokens import issue_tokens
        from authserver.services import accounts, admin_console

        admin_console.init_instance()
        user = accounts.create_user("bench", "patient", password="bench password 123",
                                    fhir_user="Patient/p1", name="Bench User")
        client = admin_console.create_client(name="bench-app", redirect_uris=[
            "http://127.0.0.1:9999/cb"], scope=SCOPE, auth_method="client_secret_basic")
        row, u = store.clients.any_client(client["client_id"]), store.accounts.get_user(user["id"])
        tokens = []
        for _ in range(count):
            grant = store.authorization.create_grant(client_id=row.client_id, user_id=u.id,
                                         session_id=None, scope=SCOPE, aud=FHIR_BASE,
                                         context={"patient": "p1"}, expires_at=clock.now())
            tokens.append(issue_tokens(client=row, grant=grant, scope=SCOPE, user=u,
                                       include_refresh=False)["access_token"])
            db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return client["client_id"], client["client_secret"], tokens


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", ""))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--seconds", type=float, default=10.0, help="per endpoint")
    p.add_argument("--tokens", type=int, default=200)
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="authserver-bench-introspect-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSERVER_")}
    env.update(AUTHSERVER_INSTANCE_PATH=str(tmp / "instance"),
               AUTHSERVER_ISSUER=f"http://127.0.0.1:{port}", AUTHSERVER_FHIR_BASE_URL=FHIR_BASE)
    if args.database_url:
        env["AUTHSERVER_DATABASE_URL"] = args.database_url
    try:
        client_id, secret, tokens = _mint(env, args.tokens)
        proc = start_server(env, port, args.workers, tmp / "server.log")
        try:
            result = run(f"http://127.0.0.1:{port}", client_id, secret, tokens, args.seconds,
                         concurrency=args.concurrency)
        finally:
            stop(proc)
        result.update(database="postgresql" if args.database_url else "sqlite",
                      workers=args.workers, cores=os.cpu_count())
        print(json.dumps(result, indent=2))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
