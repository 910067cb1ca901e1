"""Two versions of the server side by side: is the token endpoint's CPU per request the same?

``python bench/ab_versions.py REF_A REF_B [--rounds 4 --requests 1500]``

Each git ref is checked out into a throw-away worktree (detached, removed afterwards) and
run from it (``PYTHONPATH`` = the worktree, this virtualenv's packages): an instance of its
own (SQLite), one ``client_secret_basic`` backend client, ``authserver serve --workers 2``
on 127.0.0.1. Both servers stay up, and the load alternates A, B, A, B ... (``--rounds``
times ``--requests`` client_credentials requests each, 4 in flight), so the machine's other
load falls on both alike. What is compared is the **server's CPU milliseconds per request**
(user + system of its process group, from ``/proc``), which that other load barely moves;
wall-clock requests/s is printed too. On a shared 2-core VM the rounds of one version spread
by about 3 %: read a difference below that as none.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote, urlencode

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from loadgen import form_post, run_load  # noqa: E402
from run import SCOPE, _group_cpu  # noqa: E402
from servers import free_port, start_server, stop  # noqa: E402

REPO = HERE.parent
ENTRY = "import sys; from authserver.cli import main; sys.exit(main())"


class Version:
    """One ref: its worktree, instance, client and running server."""

    def __init__(self, ref: str, tmp: Path, label: str):
        self.ref, self.label = ref, label
        self.tree = tmp / f"tree-{label}"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "-q",
                        str(self.tree), ref], check=True)
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSERVER_")}
        self.env.update(PYTHONPATH=str(self.tree), AUTHSERVER_INSTANCE_PATH=str(
            tmp / f"instance-{label}"), AUTHSERVER_ISSUER=f"http://127.0.0.1:{self.port}")
        self.proc: subprocess.Popen | None = None
        self.cpu: list[float] = []
        self.rps: list[float] = []

    def cli(self, *args: str) -> dict:
        out = subprocess.run([sys.executable, "-c", ENTRY, *args], env=self.env, check=True,
                             capture_output=True, text=True, cwd=self.tree)
        return json.loads(out.stdout.strip().splitlines()[-1])

    def start(self, workers: int, log: Path) -> bytes:
        self.cli("init")
        client = self.cli("client", "create", "--name", "ab", "--grant-type",
                          "client_credentials", "--auth-method", "client_secret_basic",
                          "--scope", SCOPE)
        basic = "Basic " + base64.b64encode(
            f"{quote(client['client_id'])}:{quote(client['client_secret'])}".encode()).decode()
        self.proc = start_server(self.env, self.port, workers, log, cmd=[
            sys.executable, "-c", ENTRY, "serve", "--host", "127.0.0.1", "--port",
            str(self.port), "--workers", str(workers)])
        body = urlencode({"grant_type": "client_credentials", "scope": SCOPE})
        return form_post(self.port, "/token", body, {"Authorization": basic})

    def round(self, request: bytes, n: int, concurrency: int) -> None:
        assert self.proc is not None
        before = _group_cpu(self.proc.pid)
        result = run_load(self.port, lambda _i: request, total=n, concurrency=concurrency,
                          time_limit=120)
        cpu = _group_cpu(self.proc.pid) - before
        if result.statuses.get(200, 0) != result.requests:
            raise SystemExit(f"{self.label}: non-200 answers {dict(result.statuses)}: "
                             f"{result.sample[:300]!r}")
        self.cpu.append(1000 * cpu / result.requests)
        self.rps.append(result.rps)

    def close(self) -> None:
        if self.proc is not None:
            stop(self.proc)
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force",
                        str(self.tree)], check=False)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("ref_a")
    p.add_argument("ref_b")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--requests", type=int, default=1500, help="per round and version")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="authserver-ab-"))
    versions = [Version(args.ref_a, tmp, "A"), Version(args.ref_b, tmp, "B")]
    try:
        requests = [v.start(args.workers, tmp / f"server-{v.label}.log") for v in versions]
        for v, req in zip(versions, requests, strict=True):  # warm-up: workers forked, keys loaded
            run_load(v.port, lambda _i, r=req: r, total=200, concurrency=args.concurrency,
                     time_limit=30)
        for i in range(args.rounds):
            order = list(zip(versions, requests, strict=True))
            for v, req in order if i % 2 == 0 else order[::-1]:
                v.round(req, args.requests, args.concurrency)
        for v in versions:
            print(f"  {v.label} {v.ref:<12} server CPU ms/request: median "
                  f"{statistics.median(v.cpu):.3f}  rounds "
                  f"{' '.join(f'{c:.3f}' for c in v.cpu)}   req/s median "
                  f"{statistics.median(v.rps):.0f}")
        a, b = (statistics.median(v.cpu) for v in versions)
        print(f"  B / A server CPU per request: {b / a:.3f}")
    finally:
        for v in versions:
            v.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
