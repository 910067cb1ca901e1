"""Run the app under gunicorn (the production server)."""

from __future__ import annotations

import os
import shutil
import sys

__all__ = ["run_gunicorn"]


def run_gunicorn(target: str, host: str, port: int, workers: int) -> None:
    """Replace this process with gunicorn serving ``target`` (sync workers: every request
    is short — a signature, a hash, one indexed query)."""
    exe = shutil.which("gunicorn") or os.path.join(os.path.dirname(sys.executable), "gunicorn")
    os.execv(exe, [exe, "--bind", f"{host}:{port}", "--workers", str(max(1, workers)),
                   "--timeout", "30", "--graceful-timeout", "10", "--keep-alive", "5",
                   "--access-logfile", "-", "--error-logfile", "-", target])
