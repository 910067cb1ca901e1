"""Run the app under gunicorn (the production server). Every gunicorn option lives here."""

from __future__ import annotations

import os
import shutil
import sys

__all__ = ["THREADS", "WORKER_CLASS", "run_gunicorn"]

#: Threaded workers. Most requests are short (a signature, a hash, one indexed query), but
#: private_key_jwt may wait on a client's jwks_uri (up to JWKS_FETCH_TIMEOUT): with sync
#: workers that wait holds the whole worker, and a client pointing jwks_uri at a server that
#: never answers could stall everyone. With threads it holds one thread, and the fetcher
#: (authserver.oauth.rfc7523.JwksFetcher.MAX_CONCURRENT_FETCHES, fewer than THREADS)
#: leaves the other threads of every worker to requests that fetch nothing.
WORKER_CLASS = "gthread"
#: Threads per worker (CPU-bound work still runs one at a time per worker, under the GIL).
THREADS = 4


def run_gunicorn(target: str, host: str, port: int, workers: int) -> None:
    """Replace this process with gunicorn serving ``target`` (``workers`` processes of
    THREADS threads each)."""
    exe = shutil.which("gunicorn") or os.path.join(os.path.dirname(sys.executable), "gunicorn")
    os.execv(exe, [exe, "--bind", f"{host}:{port}", "--workers", str(max(1, workers)),
                   "--worker-class", WORKER_CLASS, "--threads", str(THREADS),
                   "--timeout", "30", "--graceful-timeout", "10", "--keep-alive", "5",
                   "--access-logfile", "-", "--error-logfile", "-", target])
