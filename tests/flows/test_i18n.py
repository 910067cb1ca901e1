"""The pages' language: Accept-Language chooses, the switcher on every page changes it and
the choice is remembered (authserver/i18n.py); the consent page's scope sentences and
times are translated too."""

from __future__ import annotations

import html
import re

import requests

from tests.helpers import OAuthFlow, make_client, make_user

SCOPES = "openid fhirUser launch/patient offline_access patient/Patient.rs patient/*.rs"


def _words(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", page)).split())


def _consent(base_url: str, client: dict, http: requests.Session) -> requests.Response:
    flow = OAuthFlow(base_url, client, http, scope=SCOPES)
    flow.authorize()
    flow.follow()
    flow.login()
    assert 'name="decision"' in flow.last.text
    return flow.last


def test_the_consent_page_in_spanish_for_a_spanish_browser(app, base_url):
    make_user(app)
    http = requests.Session()
    http.headers["Accept-Language"] = "es-MX,es;q=0.9,en;q=0.5"
    page = _consent(base_url, make_client(app, scope=SCOPES), http)
    assert '<html lang="es">' in page.text
    text = _words(page.text)
    for spanish in ("Test App solicita acceso", "Quién es usted", "La historia clínica",
                    "Conexión continua", "Leer sus datos demográficos",
                    "Leer toda su historia clínica, incluidos los tipos que se añadan más adelante",
                    "Seguir conectada cuando usted no esté usando la aplicación",
                    "Duración: La aplicación puede seguir conectada hasta 90 días",
                    "Sesión iniciada como Alice Example · ¿No es usted?"):
        assert spanish in text, spanish
    buttons = re.findall(r'name="decision" value="(\w+)"[^>]*>([^<]+)<', page.text)
    assert buttons == [("allow", "Permitir"), ("deny", "Denegar")]  # values stay the protocol's


def test_the_switcher_changes_the_language_and_it_is_remembered(app, base_url):
    make_user(app)
    http = requests.Session()
    page = _consent(base_url, make_client(app, scope=SCOPES), http)
    assert '<html lang="en">' in page.text and "wants access" in page.text
    link = re.search(r'<a href="([^"]+)" lang="es" hreflang="es">Español</a>', page.text)
    assert link is not None
    spanish = http.get(base_url + html.unescape(link.group(1)))
    assert '<html lang="es">' in spanish.text and "solicita acceso" in spanish.text
    assert http.cookies.get("lang") == "es"
    again = http.get(base_url + "/login")
    assert '<html lang="es">' in again.text  # remembered, without the parameter
    english = http.get(base_url + "/login?lang=en")
    assert '<html lang="en">' in english.text and http.cookies.get("lang") == "en"


def test_an_unknown_language_is_ignored(base_url):
    resp = requests.get(base_url + "/login?lang=xx", headers={"Accept-Language": "fr"})
    assert resp.status_code == 200 and '<html lang="en">' in resp.text
    assert "lang=" not in resp.headers.get("Set-Cookie", "")
