"""Interoperability with real third-party clients, end to end over real HTTP.

1. panva's ``openid-client`` v6 (npm; Node.js, run as a subprocess from
   tests/e2e/interop/client.mjs): OpenID Connect Discovery 1.0, an authorization request
   with PKCE S256 (RFC 7636), state, nonce and SMART's ``aud``; the test signs in and
   consents over HTTP like a browser; then the library's own checks on the authorization
   response (RFC 9207 ``iss``, state), the code grant (id_token signature against our JWKS,
   iss/aud/exp/nonce/at_hash — OpenID Connect Core 1.0 §3.1.3.7), a refresh_token grant,
   UserInfo (expected ``sub``), and the rotated refresh token once more (refused,
   ``invalid_grant``). Public client (``none``), ``client_secret_basic`` and
   ``private_key_jwt`` (ES384 and RS384).

   Finding (private_key_jwt): openid-client's default client assertion carries no ``typ``
   header and ``aud`` = the issuer identifier (the audience draft-ietf-oauth-rfc7523bis
   moves clients to). SMART App Launch 2.2 (client-confidential-asymmetric) asks for header
   ``typ: JWT`` and ``aud`` = the token endpoint URL, and this server keeps to that: the
   library's default assertion is refused with ``invalid_client``. With the library's
   documented ``modifyAssertion`` hook setting those two values, it works.

2. SMART's Python ``fhirclient`` (PyPI): ``FHIRClient(settings=...)`` against the demo FHIR
   server (authserver.demo.fhir, in-process) whose CapabilityStatement names our endpoints
   (``oauth-uris`` extension; fhirclient 4.x reads ``/metadata`` only, never
   ``.well-known/smart-configuration``). fhirclient 4.x sends PKCE S256 (it always adds
   ``code_challenge``), ``aud`` = the FHIR base, state; it exchanges the code (sending
   ``client_id`` and an extra ``state`` parameter, which the token endpoint ignores), reads
   the Patient in context, and refreshes with ``reauthorize()``. It ignores the id_token.

Specs: https://openid.net/specs/openid-connect-core-1_0.html,
https://openid.net/specs/openid-connect-discovery-1_0.html,
https://www.rfc-editor.org/rfc/rfc9207, https://www.rfc-editor.org/rfc/rfc7636,
https://www.rfc-editor.org/rfc/rfc7523, https://hl7.org/fhir/smart-app-launch/app-launch.html,
https://hl7.org/fhir/smart-app-launch/client-confidential-asymmetric.html
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from werkzeug.serving import make_server

from tests.helpers import (
    FHIR_BASE,
    PATIENT_SCOPES,
    REDIRECT_URI,
    OAuthFlow,
    make_client,
    make_user,
    query_of,
    verify_jwt,
)

pytestmark = pytest.mark.e2e

INTEROP = Path(__file__).with_name("interop")
#: Whole run of one Node client (discovery, three grants, userinfo), seconds.
NODE_DEADLINE = 30


# ---- openid-client (Node) -----------------------------------------------------------

def _require_openid_client() -> str:
    node = shutil.which("node")
    if node is None or shutil.which("npm") is None:
        pytest.skip("openid-client interop: `node`/`npm` not found (Node.js 20+ is needed)")
    if not (INTEROP / "node_modules" / "openid-client" / "package.json").is_file():
        pytest.skip("openid-client interop: tests/e2e/interop/node_modules is missing "
                    "(run `bash .ci/install-interop`)")
    return node


class NodeClient:
    """client.mjs as a subprocess: JSON lines out, the callback URL in."""

    def __init__(self, node: str, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [node, str(INTEROP / "client.mjs")], cwd=INTEROP, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={"PATH": os.environ.get("PATH", ""), "NODE_NO_WARNINGS": "1", **env})
        self._watchdog = threading.Timer(NODE_DEADLINE, self.proc.kill)
        self._watchdog.start()

    def read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self.close()
            pytest.fail(f"openid-client script ended early:\n{self.proc.stderr.read()[-3000:]}")
        return json.loads(line)

    def send(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        self._watchdog.cancel()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            stream.close()


@pytest.fixture
def node() -> str:
    return _require_openid_client()


def _sign_in_and_consent(base_url: str, client: dict, authorization_url: str) -> str:
    """What the user's browser does: GET the URL, sign in, allow; returns the redirect."""
    flow = OAuthFlow(base_url, client, requests.Session())
    flow.last = flow.http.get(authorization_url, allow_redirects=False)
    flow.follow()
    flow.login("alice")
    if flow.last.status_code == 200 and 'name="decision"' in flow.last.text:
        flow.consent("allow")
    assert flow.last.status_code in (302, 303), flow.last.text[:500]
    location = flow.last.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?"), location
    assert query_of(location).get("iss") == base_url  # RFC 9207
    flow.http.close()
    return location


def _run_openid_client(node: str, base_url: str, client: dict, tamper=None,
                       **env: str) -> tuple[dict, dict]:
    """One whole launch by openid-client; returns (its first line, its result).
    ``tamper`` (str -> str) changes the redirect before the library sees it."""
    proc = NodeClient(node, {
        "INTEROP_ISSUER": base_url, "INTEROP_CLIENT_ID": client["client_id"],
        "INTEROP_REDIRECT_URI": REDIRECT_URI, "INTEROP_SCOPE": PATIENT_SCOPES,
        "INTEROP_AUD": FHIR_BASE, **env})
    try:
        start = proc.read()
        assert "authorization_url" in start, start
        location = _sign_in_and_consent(base_url, client, start["authorization_url"])
        proc.send(tamper(location) if tamper else location)
        return start, proc.read()
    finally:
        proc.close()


def _assert_full_launch(base_url: str, client: dict, start: dict, result: dict) -> None:
    assert result["ok"] is True, result
    # The library found our issuer and saw the RFC 9207 capability in discovery.
    assert start["issuer"] == base_url
    assert start["iss_parameter_supported"] is True
    sent = query_of(start["authorization_url"])
    assert sent["code_challenge_method"] == "S256" and sent["code_challenge"]
    assert sent["aud"] == FHIR_BASE and sent["nonce"] and sent["state"]

    claims = result["id_token_claims"]
    assert claims["iss"] == base_url
    assert claims["aud"] in (client["client_id"], [client["client_id"]])
    assert claims["at_hash"] and claims["nonce"] == sent["nonce"]
    assert claims["fhirUser"].endswith("Patient/p1")

    tokens = result["token_response"]
    assert tokens["token_type"].lower() == "bearer"
    assert tokens["patient"] == "p1" and tokens["has_refresh_token"] is True
    assert "patient/*.rs" in tokens["scope"].split()
    access = verify_jwt(base_url, result["access_token"], audience=FHIR_BASE,
                        typ="at+jwt")
    assert access["client_id"] == client["client_id"] and access["sub"] == claims["sub"]

    refreshed = result["refreshed"]
    again = verify_jwt(base_url, refreshed["access_token"],
                       audience=FHIR_BASE, typ="at+jwt")
    assert again["jti"] != access["jti"] and again["sub"] == claims["sub"]
    assert refreshed["patient"] == "p1" and refreshed["rotated_refresh_token"] is True
    assert set(refreshed["scope"].split()) == set(tokens["scope"].split())
    if refreshed["id_token_claims"] is not None:  # OIDC Core §12.2; the library checked too
        assert refreshed["id_token_claims"]["sub"] == claims["sub"]
        assert refreshed["id_token_claims"]["iss"] == base_url
        assert refreshed["id_token_claims"]["aud"] == claims["aud"]

    # fetchUserInfo checked sub == the id_token's sub itself; fhirUser as in the id_token.
    assert result["userinfo"]["sub"] == claims["sub"]
    assert result["userinfo"]["fhirUser"] == claims["fhirUser"]

    # The rotated refresh token, presented again, is refused (and the library reads why).
    replay = result["replay_error"]
    assert replay is not None, "the rotated refresh token was accepted again"
    assert replay["status"] == 400 and replay["error"] == "invalid_grant", replay


def test_openid_client_public_client_completes_launch_refresh_and_userinfo(
        node: str, live: dict) -> None:
    make_user(live["app"])
    client = make_client(live["app"])
    start, result = _run_openid_client(node, live["url"], client, INTEROP_AUTH="none")
    _assert_full_launch(live["url"], client, start, result)


def test_openid_client_callback_from_other_issuer_refused(node: str, live: dict) -> None:
    """The harness sees the library's refusals: a redirect whose RFC 9207 ``iss`` is not our
    issuer (a mix-up) stops the library before any token request."""
    make_user(live["app"])
    client = make_client(live["app"])
    other = "http://127.0.0.1:1"
    _start, result = _run_openid_client(
        node, live["url"], client, INTEROP_AUTH="none",
        tamper=lambda loc: loc.replace(f"iss={quote(live['url'], safe='')}",
                                       f"iss={quote(other, safe='')}"))
    assert result["ok"] is False and result["stage"] == "authorization_code_grant", result
    assert result["error"]["code"] == "OAUTH_INVALID_RESPONSE", result
    assert '"iss"' in result["error"]["cause"]


def test_openid_client_client_secret_basic_completes_launch(node: str, live: dict) -> None:
    make_user(live["app"])
    client = make_client(live["app"], auth_method="client_secret_basic")
    assert client["client_secret"]
    start, result = _run_openid_client(node, live["url"], client,
                                       INTEROP_AUTH="client_secret_basic",
                                       INTEROP_CLIENT_SECRET=client["client_secret"])
    _assert_full_launch(live["url"], client, start, result)


def test_openid_client_client_secret_basic_wrong_secret_refused(node: str, live: dict) -> None:
    make_user(live["app"])
    client = make_client(live["app"], auth_method="client_secret_basic")
    _start, result = _run_openid_client(node, live["url"], client,
                                        INTEROP_AUTH="client_secret_basic",
                                        INTEROP_CLIENT_SECRET="not-the-secret")
    assert result["ok"] is False and result["stage"] == "authorization_code_grant", result
    error = result["error"]
    # RFC 6749 §5.2: 401 with a WWW-Authenticate challenge for the scheme the client used;
    # the library surfaces it as a WWWAuthenticateChallengeError with the JSON body too.
    assert error["status"] == 401 and error["code"] == "OAUTH_WWW_AUTHENTICATE_CHALLENGE"
    assert error["challenges"][0]["scheme"] == "basic"
    assert error["challenges"][0]["parameters"]["error"] == "invalid_client"
    assert error["body"]["error"] == "invalid_client"


def _key_pair(alg: str) -> tuple[dict, dict]:
    """(private JWK for the Node client, public JWKS to register) for ES384 or RS384."""
    from joserfc.jwk import ECKey, RSAKey

    params = {"kid": f"interop-{alg.lower()}", "alg": alg}
    key = (ECKey.generate_key("P-384", parameters=params) if alg == "ES384"
           else RSAKey.generate_key(2048, parameters=params))
    return key.as_dict(private=True), {"keys": [key.as_dict(private=False)]}


@pytest.mark.parametrize("alg", ["ES384", "RS384"])
def test_openid_client_private_key_jwt_completes_launch(node: str, live: dict, alg: str) -> None:
    """With ``modifyAssertion`` setting SMART's header ``typ: JWT`` and ``aud`` = token URL."""
    make_user(live["app"])
    private, jwks = _key_pair(alg)
    client = make_client(live["app"], auth_method="private_key_jwt", jwks=jwks)
    start, result = _run_openid_client(node, live["url"], client, INTEROP_AUTH="private_key_jwt",
                                       INTEROP_PRIVATE_JWK=json.dumps(private),
                                       INTEROP_ASSERTION="smart")
    assert start["token_endpoint"] == live["url"] + "/token"
    _assert_full_launch(live["url"], client, start, result)


def test_openid_client_assertion_with_typ_and_issuer_aud_completes_launch(
        node: str, live: dict) -> None:
    """The library's assertion with only ``typ: JWT`` added keeps ``aud`` = the issuer,
    which draft-ietf-oauth-rfc7523bis recommends and this server accepts."""
    make_user(live["app"])
    private, jwks = _key_pair("ES384")
    client = make_client(live["app"], auth_method="private_key_jwt", jwks=jwks)
    start, result = _run_openid_client(node, live["url"], client, INTEROP_AUTH="private_key_jwt",
                                       INTEROP_PRIVATE_JWK=json.dumps(private),
                                       INTEROP_ASSERTION="typ")
    _assert_full_launch(live["url"], client, start, result)


@pytest.mark.parametrize(("mode", "description"), [
    ("library", "assertion header 'typ' must be 'JWT'"),
])
def test_openid_client_default_assertion_refused_invalid_client(
        node: str, live: dict, mode: str, description: str) -> None:
    """The library's own assertion has no ``typ`` header, which SMART requires (``aud`` =
    the issuer is accepted, per draft-ietf-oauth-rfc7523bis): refused with
    ``invalid_client`` naming the rule."""
    make_user(live["app"])
    private, jwks = _key_pair("ES384")
    client = make_client(live["app"], auth_method="private_key_jwt", jwks=jwks)
    _start, result = _run_openid_client(node, live["url"], client,
                                        INTEROP_AUTH="private_key_jwt",
                                        INTEROP_PRIVATE_JWK=json.dumps(private),
                                        INTEROP_ASSERTION=mode)
    assert result["ok"] is False and result["stage"] == "authorization_code_grant", result
    error = result["error"]
    assert error["status"] == 400 and error["error"] == "invalid_client", error
    assert error["error_description"] == description


# ---- fhirclient (Python, SMART on FHIR) -------------------------------------------------

@pytest.fixture
def fhir_server() -> Iterator[dict]:
    """A socket bound now (its port names the FHIR base); the demo app is set later."""
    target: dict = {}

    def dispatch(environ, start_response):
        return target["app"](environ, start_response)

    server = make_server("127.0.0.1", 0, dispatch, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield {"base": f"http://127.0.0.1:{server.server_port}/fhir", "target": target}
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def live_config(fhir_server: dict) -> dict:
    """The authorization server accepts ``aud`` = the in-process FHIR server's base (and the
    usual test base, which the openid-client tests send)."""
    return {"FHIR_BASE_URL": f"{fhir_server['base']},{FHIR_BASE}"}


@pytest.fixture
def smart_stack(live: dict, fhir_server: dict) -> dict:
    from authserver.demo.fhir import create_fhir_app

    fhir_server["target"]["app"] = create_fhir_app(live["url"], fhir_server["base"])
    return {"issuer": live["url"], "fhir": fhir_server["base"], "app": live["app"]}


def _fhirclient(settings: dict):
    from fhirclient import client as fc

    saved: list[dict] = []
    return fc.FHIRClient(settings=settings, save_func=saved.append)


def test_fhirclient_standalone_launch_reads_patient_and_refreshes(smart_stack: dict) -> None:
    from fhirclient.models.patient import Patient

    make_user(smart_stack["app"])
    client = make_client(smart_stack["app"])
    smart = _fhirclient({"app_id": client["client_id"], "api_base": smart_stack["fhir"],
                         "redirect_uri": REDIRECT_URI,
                         "scope": "openid fhirUser offline_access patient/*.rs"})
    assert smart.prepare() is False  # CapabilityStatement fetched, no token yet

    url = smart.authorize_url
    assert url.startswith(smart_stack["issuer"] + "/authorize?")  # from oauth-uris
    sent = query_of(url)
    assert sent["aud"] == smart_stack["fhir"]
    assert sent["code_challenge_method"] == "S256" and sent["code_challenge"]
    assert sent["scope"].split()[0] == "launch/patient"  # fhirclient adds it itself

    smart.handle_callback(_sign_in_and_consent(smart_stack["issuer"], client, url))
    assert smart.ready and smart.patient_id == "p1"
    context = smart.launch_context
    assert "patient/*.rs" in context["scope"].split() and context["id_token"]

    patient = smart.patient
    assert isinstance(patient, Patient) and patient.id == "p1"
    assert smart.human_name(patient.name[0]).endswith("Example")

    first = smart.server.auth.access_token
    first_refresh = smart.server.auth.refresh_token
    assert smart.reauthorize() is True
    assert smart.server.auth.access_token != first
    assert smart.server.auth.refresh_token and smart.server.auth.refresh_token != first_refresh
    again = Patient.read("p1", smart.server)
    assert again.id == "p1"


def test_fhirclient_other_patient_not_readable(smart_stack: dict) -> None:
    """The token fhirclient got reaches only the patient in context: p2 is a 404."""
    from fhirclient.server import FHIRNotFoundException

    make_user(smart_stack["app"])
    client = make_client(smart_stack["app"])
    smart = _fhirclient({"app_id": client["client_id"], "api_base": smart_stack["fhir"],
                         "redirect_uri": REDIRECT_URI, "scope": "openid patient/*.rs"})
    smart.prepare()
    url = smart.authorize_url
    smart.handle_callback(_sign_in_and_consent(smart_stack["issuer"], client, url))
    from fhirclient.models.patient import Patient

    assert Patient.read("p1", smart.server).id == "p1"
    with pytest.raises(FHIRNotFoundException):
        Patient.read("p2", smart.server)
