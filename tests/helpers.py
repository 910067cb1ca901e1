"""Test helpers: seed data through the admin functions, drive flows over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

PASSWORD = "correct horse battery"
REDIRECT_URI = "http://127.0.0.1:9999/callback"
FHIR_BASE = "http://127.0.0.1:8001/fhir"
PATIENT_SCOPES = "openid fhirUser launch/patient offline_access patient/*.rs"

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(page: str) -> str:
    m = _CSRF.search(page)
    assert m, "no CSRF token in page"
    return html.unescape(m.group(1))


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def make_user(app, username: str = "alice", role: str = "patient",
              fhir_user: str | None = "Patient/p1", **kw: Any) -> dict:
    from authserver.services import accounts

    with app.app_context():
        return accounts.create_user(username, role, password=PASSWORD, fhir_user=fhir_user,
                                    name=kw.pop("name", "Alice Example"), **kw)


def make_client(app, *, scope: str = PATIENT_SCOPES + " patient/*.read patient/*.cruds",
                redirect_uris: list[str] | None = None, auth_method: str = "none",
                grant_types: list[str] | None = None, **kw: Any) -> dict:
    from authserver.services import admin_console

    with app.app_context():
        return admin_console.create_client(
            name=kw.pop("name", "Test App"), redirect_uris=redirect_uris or [REDIRECT_URI],
            scope=scope, auth_method=auth_method,
            grant_types=grant_types or ["authorization_code", "refresh_token"], **kw)


@dataclass
class OAuthFlow:
    """One authorization-code launch, step by step, through real HTTP."""

    base_url: str
    client: dict
    http: requests.Session = field(default_factory=requests.Session)
    scope: str = PATIENT_SCOPES
    aud: str = FHIR_BASE
    redirect_uri: str = REDIRECT_URI
    state: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    nonce: str | None = field(default_factory=lambda: secrets.token_urlsafe(12))
    verifier: str = ""
    challenge: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    last: requests.Response | None = None

    def __post_init__(self) -> None:
        self.verifier, self.challenge = pkce_pair()

    def params(self, **override: Any) -> dict[str, str]:
        p = {"response_type": "code", "client_id": self.client["client_id"],
             "redirect_uri": self.redirect_uri, "scope": self.scope, "state": self.state,
             "aud": self.aud, "code_challenge": self.challenge,
             "code_challenge_method": "S256"}
        if self.nonce:
            p["nonce"] = self.nonce
        p.update(self.extra)
        p.update(override)
        return {k: v for k, v in p.items() if v is not None}

    def authorize(self, method: str = "GET", **override: Any) -> requests.Response:
        url = self.base_url + "/authorize"
        if method == "GET":
            self.last = self.http.get(url + "?" + urlencode(self.params(**override)),
                                      allow_redirects=False)
        else:
            self.last = self.http.post(url, data=self.params(**override), allow_redirects=False)
        return self.last

    def follow(self, resp: requests.Response | None = None) -> requests.Response:
        """Follow redirects on our own server; stop at the app's redirect_uri."""
        resp = resp or self.last
        while resp.status_code in (302, 303) and not resp.headers["Location"].startswith(
                self.redirect_uri.split("?")[0]):
            loc = resp.headers["Location"]
            if loc.startswith("/"):
                loc = self.base_url + loc
            resp = self.http.get(loc, allow_redirects=False)
        self.last = resp
        return resp

    def login(self, username: str = "alice", password: str = PASSWORD) -> requests.Response:
        page = self.last
        assert page.status_code == 200 and 'name="password"' in page.text, page.text[:500]
        nxt = re.search(r'name="next" value="([^"]*)"', page.text).group(1)
        resp = self.http.post(self.base_url + "/login", data={
            "csrf_token": csrf_of(page.text), "username": username, "password": password,
            "next": html.unescape(nxt)}, allow_redirects=False)
        self.last = resp
        return self.follow(resp) if resp.status_code == 303 else resp

    def totp(self, code: str) -> requests.Response:
        page = self.last
        nxt = re.search(r'name="next" value="([^"]*)"', page.text).group(1)
        resp = self.http.post(self.base_url + "/login/totp", data={
            "csrf_token": csrf_of(page.text), "code": code, "next": html.unescape(nxt)},
            allow_redirects=False)
        self.last = resp
        return self.follow(resp) if resp.status_code == 303 else resp

    def consent_values(self) -> list[str]:
        return [html.unescape(v) for v in
                re.findall(r'name="scope" value="([^"]*)"', self.last.text)]

    def consent(self, decision: str = "allow", scopes: list[str] | None = None
                ) -> requests.Response:
        page = self.last
        assert 'name="decision"' in page.text, page.text[:500]
        req = re.search(r'name="req" value="([^"]*)"', page.text).group(1)
        chosen = self.consent_values() if scopes is None else scopes
        data = [("csrf_token", csrf_of(page.text)), ("req", html.unescape(req)),
                ("decision", decision)] + [("scope", s) for s in chosen]
        resp = self.http.post(self.base_url + "/authorize/continue", data=data,
                              allow_redirects=False)
        self.last = resp
        return self.follow(resp)

    def code(self) -> str:
        loc = self.last.headers["Location"]
        q = query_of(loc)
        assert "code" in q, loc
        assert q["state"] == self.state
        return q["code"]

    def token(self, code: str, **override: Any) -> requests.Response:
        data = {"grant_type": "authorization_code", "code": code,
                "redirect_uri": self.redirect_uri, "code_verifier": self.verifier,
                "client_id": self.client["client_id"]}
        auth = None
        if self.client.get("client_secret"):
            if self.client.get("token_endpoint_auth_method") == "client_secret_post":
                data["client_secret"] = self.client["client_secret"]
            else:
                auth = (self.client["client_id"], self.client["client_secret"])
                data.pop("client_id")
        data.update(override)
        data = {k: v for k, v in data.items() if v is not None}
        return requests.post(self.base_url + "/token", data=data, auth=auth)

    def run(self, username: str = "alice", scopes: list[str] | None = None,
            totp: str | None = None) -> dict:
        """The whole launch (password, then ``totp`` when given, then consent); returns the
        token response JSON."""
        self.authorize()
        self.follow()
        self.login(username)
        if totp is not None:
            self.totp(totp)
        if self.last.status_code == 200 and 'name="decision"' in self.last.text:
            self.consent("allow", scopes)
        resp = self.token(self.code())
        assert resp.status_code == 200, resp.text
        return resp.json()

    def refresh(self, refresh_token: str, **extra: Any) -> requests.Response:
        data = {"grant_type": "refresh_token", "refresh_token": refresh_token,
                "client_id": self.client["client_id"], **extra}
        auth = None
        if self.client.get("client_secret"):
            auth = (self.client["client_id"], self.client["client_secret"])
            data.pop("client_id")
        return requests.post(self.base_url + "/token", data=data, auth=auth)


# ---- issue 3 (patient standalone launch) helpers ----------------------------------------

def location_query(resp: requests.Response) -> dict[str, str]:
    """The query of a redirect's Location (asserts it is a redirect)."""
    assert resp.status_code in (302, 303), (resp.status_code, resp.text[:300])
    return query_of(resp.headers["Location"])


def fetch_jwks(base_url: str) -> dict:
    resp = requests.get(base_url + "/.well-known/jwks.json", timeout=10)
    assert resp.status_code == 200
    return resp.json()


def verify_jwt(base_url: str, token: str, *, audience: str, typ: str | None = None) -> dict:
    """Validate a JWT with PyJWT against the server's published JWKS; returns its claims."""
    import jwt

    header = jwt.get_unverified_header(token)
    if typ is not None:
        assert header.get("typ") == typ, header
    keyset = jwt.PyJWKSet.from_dict(fetch_jwks(base_url))
    key = next(k for k in keyset.keys if k.key_id == header["kid"])
    return jwt.decode(token, key.key, algorithms=[header["alg"]], audience=audience,
                      issuer=base_url, options={"require": ["exp", "iat", "iss", "aud", "sub"]})


# ---- issue 4 (clinicians, TOTP, picker, EHR launch) helpers -------------------------------

CLINICIAN_SCOPES = "launch/patient openid fhirUser patient/*.rs"
EHR_SCOPES = "launch openid fhirUser user/*.rs patient/*.rs"


def totp_code(secret: str, ahead: int = 0) -> str:
    """The TOTP code of now (``ahead`` steps later: a second sign-in in the same test must
    use the next step, the previous one is refused as a replay)."""
    import time

    import pyotp

    return pyotp.TOTP(secret).at(time.time() + 30 * ahead)


def make_clinician(app, username: str = "drsmith", *, totp: bool = True,
                   fhir_user: str | None = "Practitioner/pr1", role: str = "clinician") -> dict:
    """A clinician (or admin); with ``totp`` its TOTP secret is in the result as "secret"."""
    from authserver.services import accounts

    user = make_user(app, username, role, fhir_user=fhir_user, name="Dr Smith")
    if totp:
        with app.app_context():
            user["secret"] = accounts.enrol_totp(username)["secret"]
    return user


def add_patients(app, *rows: tuple[str, str, str | None]) -> None:
    """Fill the picker's registry (what `authserver patient add` does)."""
    from authserver.services import admin_console

    with app.app_context():
        for pid, name, born in rows:
            admin_console.add_patient(pid, name, born)


def make_launch(app, **kw: Any) -> dict:
    """An EHR launch context, as `authserver launch create` makes it."""
    from authserver.services import launches

    kw.setdefault("patient", "p9")
    with app.app_context():
        return launches.create_launch(**kw)


def picker_patients(page: str) -> list[str]:
    """The patient ids a picker page offers."""
    return [html.unescape(v) for v in re.findall(r'name="patient" value="([^"]*)"', page)]


def pick_patient(flow: OAuthFlow, patient_id: str) -> requests.Response:
    """Choose ``patient_id`` on the picker page ``flow.last``; follows to the next page."""
    page = flow.last
    assert 'name="patient"' in page.text, page.text[:500]
    req = re.search(r'name="req" value="([^"]*)"', page.text).group(1)
    resp = flow.http.post(flow.base_url + "/authorize/patient", data={
        "csrf_token": csrf_of(page.text), "req": html.unescape(req), "patient": patient_id},
        allow_redirects=False)
    flow.last = resp
    return flow.follow(resp) if resp.status_code == 303 else resp


def sign_out(base_url: str, http: requests.Session) -> requests.Response:
    """Sign out through the /logout form (GET the page for its CSRF token, then POST)."""
    page = http.get(base_url + "/logout")
    assert page.status_code == 200, page.text[:300]
    return http.post(base_url + "/logout", data={"csrf_token": csrf_of(page.text)},
                     allow_redirects=False)


def sign_in_admin(app, base_url: str, username: str = "root", name: str = "Root Admin"
                  ) -> requests.Session:
    """A session signed in (password + TOTP) as a new admin, landed on /admin."""
    make_user(app, username, role="admin", fhir_user=None, name=name)
    from authserver.services import accounts

    with app.app_context():
        secret = accounts.enrol_totp(username)["secret"]
    s = requests.Session()
    page = s.get(base_url + "/login?next=/admin")
    resp = s.post(base_url + "/login", data={"csrf_token": csrf_of(page.text),
                                             "username": username, "password": PASSWORD,
                                             "next": "/admin"})
    resp = s.post(base_url + "/login/totp", data={
        "csrf_token": csrf_of(resp.text), "code": totp_code(secret), "next": "/admin"})
    assert resp.status_code == 200 and "Administration" in resp.text, resp.text[:300]
    return s
