"""Token endpoint benchmark: ``make bench`` (or ``python bench/run.py [--database-url URL]``).

1. Makes a throw-away instance (SQLite in a temporary folder, or the PostgreSQL database
   given by ``--database-url`` / ``BENCH_DATABASE_URL`` — its tables are created if absent
   and two clients are added), registers two backend clients with the CLI: one
   ``client_secret_basic``, one ``private_key_jwt`` (ES384).
2. Starts ``authserver serve --workers 2`` on 127.0.0.1 and drives ``client_credentials``
   from a bounded load generator (fixed request count, time limit, requests in flight).
3. Measures the raw signing rate of the access token's algorithm on one core with
   ``cryptography`` (server stopped), and prints the ratio token rps / raw signing rate.
4. Profiles the client_secret_basic hot path in-process with pyinstrument (top entries).

Results are printed and written to bench/results/<time>.json (gitignored).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from cryptography.hazmat.primitives.asymmetric import ec

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from hotpath import (  # noqa: E402
    by_package,
    cpu_sign_rate,
    profile_calls,
    time_calls,
    wsgi_caller,
)
from loadgen import form_post, run_load  # noqa: E402
from servers import free_port, start_server, stop  # noqa: E402
from signing import raw_sign_rate  # noqa: E402

from authserver import keys  # noqa: E402

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SCOPE = "system/*.rs"


def _cli(env: dict[str, str], *args: str) -> dict[str, Any]:
    exe = shutil.which("authserver", path=os.path.dirname(sys.executable)) or "authserver"
    out = subprocess.run([exe, *args], env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


# ---- the ES384 client key and its assertions (the load generator's side) ------------

def _es384_key() -> tuple[ec.EllipticCurvePrivateKey, dict[str, str]]:
    private = ec.generate_private_key(ec.SECP384R1())
    nums = private.public_key().public_numbers()

    def b64(n: int) -> str:
        return base64.urlsafe_b64encode(n.to_bytes(48, "big")).rstrip(b"=").decode()

    jwk = {"kty": "EC", "crv": "P-384", "x": b64(nums.x), "y": b64(nums.y),
           "kid": "bench-" + secrets.token_hex(4), "alg": "ES384", "use": "sig"}
    return private, jwk


def _assertions(private: ec.EllipticCurvePrivateKey, kid: str, client_id: str, aud: str,
                n: int) -> list[str]:
    """n distinct assertions (unique jti), signed before the clock starts."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    def seg(obj: dict) -> str:
        raw = json.dumps(obj, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    header = seg({"alg": "ES384", "typ": "JWT", "kid": kid})
    exp = int(time.time()) + 290
    out = []
    for _ in range(n):
        body = seg({"iss": client_id, "sub": client_id, "aud": aud, "exp": exp,
                    "jti": secrets.token_urlsafe(16)})
        signing_input = f"{header}.{body}".encode()
        r, s = decode_dss_signature(private.sign(signing_input, ec.ECDSA(hashes.SHA384())))
        sig = base64.urlsafe_b64encode(r.to_bytes(48, "big") + s.to_bytes(48, "big"))
        out.append(f"{header}.{body}.{sig.rstrip(b'=').decode()}")
    return out


# ---- the run ----------------------------------------------------------------------------

def _reference_scenario(args: argparse.Namespace, tmp: Path) -> dict:
    """The same load against bare Flask + Flask-SQLAlchemy + Authlib (bench/reference_app.py)."""
    import reference_app
    from joserfc.jwk import RSAKey

    key = RSAKey.generate_key(2048, parameters={"kid": "reference"})
    jwks = tmp / "reference-jwks.json"
    jwks.write_text(json.dumps({"keys": [key.as_dict(private=True)]}))
    url = args.database_url or f"sqlite:///{tmp / 'reference.sqlite3'}"
    client_id, secret = reference_app.setup(url)
    port = free_port()
    env = dict(os.environ, REFERENCE_DATABASE_URL=url, REFERENCE_JWKS=str(jwks),
               REFERENCE_ISSUER=f"http://127.0.0.1:{port}")
    gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    proc = start_server(env, port, args.workers, tmp / "reference.log", cmd=[
        gunicorn, "--chdir", str(HERE), "--bind", f"127.0.0.1:{port}", "--workers",
        str(args.workers), "reference_app:app"], ready_path="/token")
    basic = "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    req = form_post(port, "/token", urlencode({"grant_type": "client_credentials",
                                              "scope": SCOPE}), {"Authorization": basic})
    try:
        return _load_scenario("reference: bare Flask+Authlib", proc, port, lambda i: req,
                              args)
    finally:
        stop(proc)


def _group_cpu(pgid: int) -> float:
    """CPU seconds (user + system) used so far by the processes of one process group."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid:  # pgrp; utime and stime are fields 14 and 15 of stat
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _load_scenario(name: str, proc: subprocess.Popen, port: int, make: Any,
                   args: argparse.Namespace) -> dict:
    run_load(port, make, total=min(200, args.requests), concurrency=args.concurrency,
             time_limit=10)  # warm-up: both workers, keys loaded, connections pooled
    server_cpu, client_cpu = _group_cpu(proc.pid), time.process_time()
    result = run_load(port, make, total=args.requests, concurrency=args.concurrency,
                      time_limit=args.time_limit)
    server_cpu = _group_cpu(proc.pid) - server_cpu
    client_cpu = time.process_time() - client_cpu
    summary = result.summary()
    # CPU per request is what the machine's other load cannot skew: the server's CPU
    # milliseconds per token, and the load generator's (which shares these cores).
    summary["server_cpu_ms_per_request"] = round(1000 * server_cpu / max(1, result.requests), 3)
    summary["loadgen_cpu_ms_per_request"] = round(1000 * client_cpu / max(1, result.requests), 3)
    ok = result.statuses.get(200, 0)
    if ok != result.requests:
        print(f"  {name}: {result.requests - ok} non-200 answers: {summary['statuses']}; "
              f"first answer: {result.sample[:300]!r}", file=sys.stderr)
    summary["name"] = name
    print(f"  {name:<34} {summary['rps']:8.1f} req/s   p50 {summary['p50_ms']:6.2f} ms"
          f"   p99 {summary['p99_ms']:6.2f} ms   ({summary['requests']} requests; server CPU "
          f"{summary['server_cpu_ms_per_request']:.2f} ms/request)")
    return summary


def _machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu or platform.processor(), "cores": os.cpu_count(),
            "python": platform.python_version(), "platform": platform.platform(),
            "loadavg": os.getloadavg() if hasattr(os, "getloadavg") else None}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", ""),
                   help="PostgreSQL URL (default: SQLite in a temporary folder)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--requests", type=int, default=6000, help="per scenario")
    p.add_argument("--time-limit", type=float, default=20.0, help="seconds per scenario")
    p.add_argument("--concurrency", type=int, default=4, help="requests in flight")
    p.add_argument("--sign-seconds", type=float, default=3.0)
    p.add_argument("--profile-requests", type=int, default=1500, help="0 to skip")
    p.add_argument("--no-reference", dest="reference", action="store_false",
                   help="skip the bare Flask + Authlib yardstick")
    args = p.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="authserver-bench-"))
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSERVER_")}
    env.update(AUTHSERVER_INSTANCE_PATH=str(tmp / "instance"), AUTHSERVER_ISSUER=issuer)
    if args.database_url:
        env["AUTHSERVER_DATABASE_URL"] = args.database_url
    db_kind = "postgresql" if args.database_url else "sqlite"
    report: dict[str, Any] = {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                              "machine": _machine(), "database": db_kind,
                              "workers": args.workers, "concurrency": args.concurrency}
    print(f"authserver token endpoint benchmark: {db_kind}, {args.workers} workers, "
          f"{args.concurrency} in flight, {report['machine']['cpu']} x{os.cpu_count()}")
    try:
        _cli(env, "init")
        if args.database_url:
            # A database used by an earlier run holds keys wrapped by that run's (deleted)
            # key-encryption key: make fresh active keys under this run's.
            _cli(env, "keys", "rotate")
        secret_client = _cli(env, "client", "create", "--name", "bench-secret",
                             "--grant-type", "client_credentials",
                             "--auth-method", "client_secret_basic", "--scope", SCOPE)
        private, jwk = _es384_key()
        jwks_file = tmp / "jwks.json"
        jwks_file.write_text(json.dumps({"keys": [jwk]}))
        jwt_client = _cli(env, "client", "create", "--name", "bench-jwt",
                          "--grant-type", "client_credentials",
                          "--auth-method", "private_key_jwt", "--jwks-file", str(jwks_file),
                          "--scope", SCOPE)
        alg = _access_token_alg(env)
        report["access_token_alg"] = alg

        basic = "Basic " + base64.b64encode(
            f"{quote(secret_client['client_id'])}:{quote(secret_client['client_secret'])}"
            .encode()).decode()
        body = urlencode({"grant_type": "client_credentials", "scope": SCOPE})
        secret_req = form_post(port, "/token", body, {"Authorization": basic})
        n_assert = args.requests + 200
        print(f"  signing {n_assert} ES384 client assertions for the load generator ...")
        asserts = _assertions(private, jwk["kid"], jwt_client["client_id"],
                              issuer + "/token", n_assert)

        proc = start_server(env, port, args.workers, tmp / "server.log")
        try:
            results = [_load_scenario("client_credentials secret_basic", proc, port,
                                      lambda i: secret_req, args)]
            used = iter(asserts)

            def next_assertion(_i: int) -> bytes:
                return form_post(port, "/token", urlencode({
                    "grant_type": "client_credentials", "scope": SCOPE,
                    "client_assertion_type": ASSERTION_TYPE,
                    "client_assertion": next(used)}))

            results.append(_load_scenario("client_credentials private_key_jwt", proc, port,
                                          next_assertion, args))
        finally:
            stop(proc)
        if args.reference:
            results.append(_reference_scenario(args, tmp))
        report["scenarios"] = results

        print(f"  raw {alg} signing on one core (cryptography) ...")
        raw = max(raw_sign_rate(alg, args.sign_seconds / 3) for _ in range(3))
        raw_cpu = _raw_sign_cpu_rate(alg, args.sign_seconds / 3)
        verify = _raw_es384_verify_rate(args.sign_seconds / 3)
        report["raw_sign_rate"] = round(raw, 1)
        report["raw_sign_rate_per_cpu_second"] = round(raw_cpu, 1)
        report["raw_es384_verify_rate"] = round(verify, 1)
        print(f"  raw {alg} signatures/s on one core: {raw:8.1f} wall, {raw_cpu:.1f} per CPU "
              f"second   (ES384 verifications/s: {verify:.1f})")
        for r in results:
            r["ratio_to_raw_sign"] = round(r["rps"] / raw, 3)
            # What the same workers would do with the cores to themselves: CPU-bound, so
            # capacity = cores / CPU per request (this machine's other load cancels out).
            per_req = r["server_cpu_ms_per_request"] / 1000
            cores = min(args.workers, os.cpu_count() or 1)
            r["cpu_bound_rps"] = round(cores / per_req, 1) if per_req else None
            r["cpu_bound_ratio_to_raw_sign"] = (
                round(cores / per_req / raw_cpu, 3) if per_req else None)
            print(f"  ratio {r['name']:<34} {r['ratio_to_raw_sign']:.2f} measured   "
                  f"{r['cpu_bound_ratio_to_raw_sign']:.2f} CPU-bound "
                  f"({r['cpu_bound_rps']:.0f} req/s on {cores} cores at "
                  f"{r['server_cpu_ms_per_request']:.2f} ms CPU each)")

        if args.profile_requests:
            report["profile"] = _profile(env, secret_client, args.profile_requests)
        report["machine"]["loadavg_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
        out = HERE / "results"
        out.mkdir(exist_ok=True)
        path = out / time.strftime("%Y%m%d-%H%M%S.json")
        path.write_text(json.dumps(report, indent=2))
        print(f"  results: {path.relative_to(HERE.parent)}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    failed = [r["name"] for r in report.get("scenarios", [])
              if r["statuses"] != {"200": r["requests"]}]
    if failed or report.get("profile", {}).get("non_200"):
        print(f"  FAILED: non-200 answers in {failed or ['the in-process profile']}",
              file=sys.stderr)
        return 1
    return 0


def _access_token_alg(env: dict[str, str]) -> str:
    from authserver.config import load_config

    return load_config(environ=env)["SIGNING_ALG"]


def _raw_sign_cpu_rate(alg: str, seconds: float) -> float:
    """Signatures per CPU second of this process (one core), as signing.raw_sign_rate signs."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    message = base64.urlsafe_b64encode(os.urandom(225))
    if alg.startswith("RS"):
        key = rsa.generate_private_key(65537, keys.RSA_KEY_SIZE)
        pad, digest = padding.PKCS1v15(), (hashes.SHA256() if alg == "RS256"
                                           else hashes.SHA384())
        return cpu_sign_rate(lambda: key.sign(message, pad, digest), seconds)
    eckey = ec.generate_private_key(ec.SECP256R1() if alg == "ES256" else ec.SECP384R1())
    algo = ec.ECDSA(hashes.SHA256() if alg == "ES256" else hashes.SHA384())
    return cpu_sign_rate(lambda: eckey.sign(message, algo), seconds)


def _raw_es384_verify_rate(seconds: float) -> float:
    from cryptography.hazmat.primitives import hashes

    key = ec.generate_private_key(ec.SECP384R1())
    data = os.urandom(300)
    sig = key.sign(data, ec.ECDSA(hashes.SHA384()))
    pub, algo = key.public_key(), ec.ECDSA(hashes.SHA384())
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        pub.verify(sig, data, algo)
        n += 1
    return n / (time.perf_counter() - start)


def _profile(env: dict[str, str], client: dict, n: int) -> dict[str, Any]:
    """In-process: the WSGI app called directly, one thread, under pyinstrument."""
    saved = dict(os.environ)
    os.environ.update({k: v for k, v in env.items() if k.startswith("AUTHSERVER_")})
    try:
        from authserver.app import create_app

        app = create_app()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    basic = "Basic " + base64.b64encode(
        f"{quote(client['client_id'])}:{quote(client['client_secret'])}".encode()).decode()
    body = urlencode({"grant_type": "client_credentials", "scope": SCOPE})
    call = wsgi_caller(app, "/token", lambda i: body, {"Authorization": basic})
    time_calls(call, 200)
    rate, bad = time_calls(call, n)
    text, ranked = profile_calls(call, n)
    print(f"  in-process (no HTTP server) client_secret_basic: {rate:.1f} req per CPU second"
          + (f" ({bad} non-200)" if bad else ""))
    packages = by_package(ranked)
    print("  profile, self time by package (pyinstrument):")
    for share, name in packages[:10]:
        print(f"    {share * 100:5.1f}%  {name}")
    print("  profile, self time by function:")
    for share, name in ranked[:15]:
        print(f"    {share * 100:5.1f}%  {name}")
    return {"in_process_rps_per_cpu_second": round(rate, 1), "non_200": bad,
            "by_package": [[round(s * 100, 1), k] for s, k in packages],
            "top_self": [[round(s * 100, 1), k] for s, k in ranked[:40]],
            "tree": text}


if __name__ == "__main__":
    raise SystemExit(main())
