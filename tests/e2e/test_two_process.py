"""The authorization server and the demo FHIR server as two separate processes.

``authserver serve`` (gunicorn, 2 workers) and ``authserver fhir-demo`` (introspection mode)
on free ports with a temporary instance folder (SQLite); everything is driven over HTTP:
a full patient launch, then reads and searches under the granted scopes, revocation through
/revoke and through "Revoke access" on /account (refused at once in introspection mode), and
``authserver keys rotate`` (new tokens validate in the running FHIR server: its key set is
fetched again on the unknown ``kid``).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.helpers import PASSWORD, REDIRECT_URI, OAuthFlow, csrf_of

pytestmark = pytest.mark.e2e

EXE = str(Path(sys.executable).with_name("authserver"))
SCOPE = "openid fhirUser launch/patient offline_access patient/Patient.rs patient/Observation.rs"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{url} process exited:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    pytest.fail(f"{url} did not start:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture
def stack(tmp_path: Path):
    as_port, fhir_port = _free_port(), _free_port()
    issuer = f"http://127.0.0.1:{as_port}"
    fhir_base = f"http://127.0.0.1:{fhir_port}/fhir"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSERVER_")}
    env.update(AUTHSERVER_INSTANCE_PATH=str(tmp_path / "instance"), AUTHSERVER_ISSUER=issuer,
               AUTHSERVER_FHIR_BASE_URL=fhir_base)

    def cli(*args: str, stdin: str | None = None) -> dict:
        res = subprocess.run([EXE, *args], env=env, input=stdin, capture_output=True,
                             text=True, timeout=120)
        assert res.returncode == 0, res.stderr
        return json.loads(res.stdout)

    cli("user", "create", "alice", "--role", "patient", "--password-stdin",
        "--fhir-user", "Patient/p1", "--name", "Alice Example", stdin=PASSWORD + "\n")
    client = cli("client", "create", "--name", "Demo App", "--redirect-uri", REDIRECT_URI,
                 "--scope", SCOPE, "--auth-method", "none")
    rs = cli("resource-server", "create", "--name", "Demo FHIR server")
    as_log, fhir_log = tmp_path / "auth.log", tmp_path / "fhir.log"
    with as_log.open("w") as out:
        auth = subprocess.Popen([EXE, "serve", "--port", str(as_port), "--workers", "2"],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    fhir_env = {**env, "AUTHSERVER_FHIR_DEMO_CLIENT_ID": rs["client_id"],
                "AUTHSERVER_FHIR_DEMO_CLIENT_SECRET": rs["client_secret"]}
    with fhir_log.open("w") as out:
        fhir = subprocess.Popen([EXE, "fhir-demo", "--port", str(fhir_port),
                                 "--issuer", issuer], env=fhir_env, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        _wait_ready(issuer + "/health", auth, as_log)
        _wait_ready(fhir_base + "/metadata", fhir, fhir_log)
        yield {"issuer": issuer, "fhir": fhir_base, "client": client, "cli": cli,
               "auth": auth, "fhir_proc": fhir, "as_log": as_log}
    finally:
        _stop(fhir)
        _stop(auth)


def _launch(stack: dict) -> tuple[dict, requests.Session]:
    """A full standalone patient launch; the user unticks vital signs on the consent page."""
    http = requests.Session()
    flow = OAuthFlow(stack["issuer"], stack["client"], http, scope=SCOPE, aud=stack["fhir"])
    flow.authorize()
    flow.follow()
    flow.login("alice")
    if 'name="decision"' in flow.last.text:
        chosen = [v for v in flow.consent_values() if "vital-signs" not in v]
        flow.consent("allow", chosen)
    resp = flow.token(flow.code())
    assert resp.status_code == 200, resp.text
    return resp.json(), http


def _get(stack: dict, path: str, token: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(stack["fhir"] + path, headers=headers, timeout=10)


def _kid(token: str) -> str:
    header = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]


def _outcome(resp: requests.Response) -> dict:
    assert resp.headers["Content-Type"].startswith("application/fhir+json")
    body = resp.json()
    assert body["resourceType"] == "OperationOutcome"
    return body


def test_two_processes_full_launch_scopes_revocation_and_key_rotation(stack):
    fhir = stack["fhir"]
    # Discovery at the FHIR base is the authorization server's; metadata repeats its URIs.
    smart = requests.get(fhir + "/.well-known/smart-configuration").json()
    assert smart == requests.get(stack["issuer"] + "/.well-known/smart-configuration").json()
    meta = _get(stack, "/metadata", None).json()
    uris = {e["url"]: e["valueUri"] for e in meta["rest"][0]["security"]["extension"][0][
        "extension"]}
    assert uris["token"] == smart["token_endpoint"]
    assert uris["introspect"] == smart["introspection_endpoint"]

    token, http = _launch(stack)
    at = token["access_token"]
    assert token["patient"] == "p1"

    # Allowed read: 200.
    resp = _get(stack, "/Patient/p1", at)
    assert resp.status_code == 200 and resp.json()["id"] == "p1"
    # Granted lab results only (vital signs were unticked), and only p1's.
    bundle = _get(stack, "/Observation", at).json()
    ids = sorted(e["resource"]["id"] for e in bundle["entry"])
    assert ids == ["obs-p1-glucose", "obs-p1-hba1c"]
    assert _get(stack, "/Observation/obs-p1-heart-rate", at).status_code == 404
    # Another patient's data is not returned under a patient/ scope.
    assert _get(stack, "/Observation?patient=p2", at).json()["total"] == 0
    other = _get(stack, "/Patient/p2", at)
    assert other.status_code == 404 and _outcome(other)
    # A resource type outside the granted scopes: 403 with an OperationOutcome.
    denied = _get(stack, "/Condition", at)
    assert denied.status_code == 403
    assert _outcome(denied)["issue"][0]["code"] == "forbidden"
    assert 'error="insufficient_scope"' in denied.headers["WWW-Authenticate"]
    # No token / a bad token: 401 with a Bearer challenge.
    missing = _get(stack, "/Patient/p1", None)
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"].startswith(
        "Bearer")
    bad = _get(stack, "/Patient/p1", at[:-4] + "AAAA")
    assert bad.status_code == 401 and 'error="invalid_token"' in bad.headers["WWW-Authenticate"]

    # RFC 7009 revocation: refused at once by the FHIR server (introspection mode).
    resp = requests.post(stack["issuer"] + "/revoke", data={
        "token": at, "client_id": stack["client"]["client_id"]})
    assert resp.status_code == 200
    revoked = _get(stack, "/Patient/p1", at)
    assert revoked.status_code == 401
    assert 'error="invalid_token"' in revoked.headers["WWW-Authenticate"]

    # "Revoke access" on /account: the next launch's token is refused at once too.
    token2, http2 = _launch(stack)
    assert _get(stack, "/Patient/p1", token2["access_token"]).status_code == 200
    page = http2.get(stack["issuer"] + "/account/revoke",  # the confirmation page
                     params={"client_id": stack["client"]["client_id"]})
    assert "Demo App" in page.text
    resp = http2.post(stack["issuer"] + "/account/revoke", allow_redirects=False, data={
        "csrf_token": csrf_of(page.text), "client_id": stack["client"]["client_id"]})
    assert resp.status_code == 303
    assert _get(stack, "/Patient/p1", token2["access_token"]).status_code == 401

    # Key rotation: new tokens validate in the running FHIR server, without restarting it.
    before, _ = _launch(stack)
    rotated = stack["cli"]("keys", "rotate")
    new_kids = set(rotated["active"])
    assert _kid(before["access_token"]) not in new_kids
    # Restart the auth server's workers (not the FHIR server) so they sign with the new key
    # now rather than after their signer cache expires.
    os.kill(stack["auth"].pid, signal.SIGHUP)
    after = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        candidate, _ = _launch(stack)
        if _kid(candidate["access_token"]) in new_kids:
            after = candidate
            break
        time.sleep(0.5)
    assert after is not None, "the auth server kept signing with the retired key"
    resp = _get(stack, "/Patient/p1", after["access_token"])
    assert resp.status_code == 200, resp.text
    # The token signed before the rotation still validates (its key stays published).
    assert _get(stack, "/Patient/p1", before["access_token"]).status_code == 200
    assert stack["fhir_proc"].poll() is None  # the same FHIR server process throughout
