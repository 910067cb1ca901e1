"""The server processes a benchmark starts: a free loopback port, start until healthy, stop."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

__all__ = ["free_port", "start_server", "stop"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(env: dict[str, str], port: int, workers: int, log: Path,
                  cmd: list[str] | None = None, ready_path: str = "/health"
                  ) -> subprocess.Popen:
    exe = shutil.which("authserver", path=os.path.dirname(sys.executable)) or "authserver"
    cmd = cmd or [exe, "serve", "--host", "127.0.0.1", "--port", str(port),
                  "--workers", str(workers)]
    proc = subprocess.Popen(cmd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{cmd[0]} exited ({proc.returncode}); see {log}")
        try:
            if requests.get(f"http://127.0.0.1:{port}{ready_path}", timeout=1).status_code < 500:
                return proc
        except requests.RequestException:
            pass
        time.sleep(0.2)
    stop(proc)
    raise SystemExit(f"{cmd[0]} did not become ready; see {log}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # our own process group (start_new_session)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
