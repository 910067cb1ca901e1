"""The per-address sign-in limit is counted once across gunicorn workers.

``authserver serve --workers 2`` on 127.0.0.1 with a fresh SQLite instance, behind one
(simulated) proxy hop: 21 wrong passwords from one address, two at a time so that both
workers answer (gunicorn's access log names the worker's pid), get 401 twenty times and
429 the 21st — a per-worker count would have let 40 through. Another address is unaffected.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.e2e.test_two_process import EXE, _free_port, _stop, _wait_ready
from tests.helpers import csrf_of

pytestmark = pytest.mark.e2e

ADDRESS, OTHER = "203.0.113.7", "203.0.113.8"
#: gunicorn access-log line: "<pid> 203.0.113.7 POST /login HTTP/1.1 401" (the worker's
#: pid, the X-Forwarded-For the request carried, request line, status).
_FORMAT = "%(p)s %({x-forwarded-for}i)s %(r)s %(s)s"
_LINE = re.compile(r"^<(\d+)> (\S+) (\w+) (\S+) HTTP/[\d.]+ (\d{3})$", re.M)


@pytest.fixture
def server(tmp_path: Path):
    port = _free_port()
    issuer = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSERVER_")}
    env.update(AUTHSERVER_INSTANCE_PATH=str(tmp_path / "instance"), AUTHSERVER_ISSUER=issuer,
               AUTHSERVER_TRUST_PROXY="1",  # as deploy/ sets it: one hop, X-Forwarded-For
               GUNICORN_CMD_ARGS=f"--access-logformat '{_FORMAT}' --keep-alive 0")
    res = subprocess.run([EXE, "init"], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    log = tmp_path / "auth.log"
    with log.open("w") as out:
        proc = subprocess.Popen([EXE, "serve", "--port", str(port), "--workers", "2"],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_ready(issuer + "/health", proc, log)
        yield {"url": issuer, "log": log, "proc": proc}
    finally:
        _stop(proc)


def _answers(log: Path, method: str, path: str, address: str = "-") -> list[tuple[int, int]]:
    """(pid, status) of each logged request to ``path`` forwarded for ``address``."""
    return [(int(pid), int(status))
            for pid, addr, m, p, status in _LINE.findall(log.read_text())
            if m == method and p.split("?")[0] == path and addr == address]


def _both_workers_up(server: dict, pool: ThreadPoolExecutor) -> None:
    """Until both workers have answered /health (each loads the app after its fork)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        list(pool.map(lambda _: requests.get(server["url"] + "/health", timeout=10,
                                             headers={"Connection": "close"}), range(4)))
        time.sleep(0.2)  # the access-log line follows the response
        if len({pid for pid, _ in _answers(server["log"], "GET", "/health")}) == 2:
            return
    pytest.fail("the second worker never answered:\n" + server["log"].read_text()[-3000:])


def test_21_wrong_passwords_from_one_address_are_stopped_at_20_by_2_workers(server):
    base = server["url"]
    jars = [requests.Session(), requests.Session()]
    tokens = [csrf_of(jar.get(base + "/login", headers={"X-Forwarded-For": ADDRESS}).text)
              for jar in jars]

    def attempt(i: int, address: str = ADDRESS) -> int:
        jar, token = jars[i % 2], tokens[i % 2]
        return jar.post(base + "/login", allow_redirects=False, timeout=60, data={
            "csrf_token": token, "username": f"spray{i}", "password": "Winter2026!"},
            headers={"X-Forwarded-For": address, "Connection": "close"}).status_code

    with ThreadPoolExecutor(2) as pool:
        _both_workers_up(server, pool)
        first_20 = []
        for i in range(0, 20, 2):  # two at a time: while one worker hashes, the other answers
            first_20 += list(pool.map(attempt, (i, i + 1)))
    assert first_20 == [401] * 20
    resp_21 = attempt(20)
    assert resp_21 == 429
    assert attempt(21, OTHER) == 401  # the limit is the address's, not everyone's
    time.sleep(0.3)
    logged = _answers(server["log"], "POST", "/login", ADDRESS)
    assert sorted(s for _, s in logged) == [401] * 20 + [429]
    pids = {pid for pid, status in logged if status == 401}
    assert len(pids) == 2, logged  # both workers answered, into one shared count
    assert server["proc"].poll() is None
