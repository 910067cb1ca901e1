"""The pages' language: Accept-Language chooses, the switcher on every page changes it and
the choice is remembered (authserver/i18n.py); the consent page's scope sentences and
times are translated too, and so are the sign-in, error, account and password pages, the
messages the code puts on them, and the e-mails a Spanish page causes (through a real SMTP
server, tests/smtp_sink.py)."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

import pytest
import requests

from tests.helpers import (
    PASSWORD,
    OAuthFlow,
    csrf_of,
    make_client,
    make_clinician,
    make_user,
    sign_in_admin,
    totp_code,
)
from tests.smtp_sink import delivered, smtp_config, smtp_server

SPANISH = {"Accept-Language": "es-ES,es;q=0.9"}
#: CLDR's abbreviated Spanish month names, as the pages write them.
MESES = ["ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sept", "oct", "nov", "dic"]

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


# ---- the sign-in, error, account and password pages, in Spanish ------------------------

@pytest.fixture
def inbox():
    with smtp_server() as box:
        yield box


@pytest.fixture
def live_config(inbox):
    """Mail goes to a real SMTP server, so /forgot offers its form and links are mailed."""
    return smtp_config(inbox)


def _spanish() -> requests.Session:
    http = requests.Session()
    http.headers.update(SPANISH)
    return http


def _sign_in(base_url: str, http: requests.Session, password: str = PASSWORD,
             nxt: str = "/account") -> requests.Response:
    page = http.get(base_url + f"/login?next={nxt}")
    return http.post(base_url + "/login", data={"csrf_token": csrf_of(page.text),
                                                "username": "alice", "password": password,
                                                "next": nxt})


def test_the_sign_in_page_and_its_wrong_password_error_in_spanish(app, base_url):
    make_user(app)
    http = _spanish()
    page = http.get(base_url + "/login")
    assert '<html lang="es">' in page.text
    text = _words(page.text)
    for spanish in ("Iniciar sesión ·", "Nombre de usuario", "Contraseña",
                    "Mostrar la contraseña", "¿Olvidó su contraseña?"):
        assert spanish in text, spanish
    wrong = _sign_in(base_url, http, password="not the password")
    assert wrong.status_code == 401
    error = re.search(r'<p class="error field-error" role="alert" id="login-error">([^<]+)<',
                      wrong.text)
    assert error and error.group(1) == "Nombre de usuario o contraseña incorrectos."
    assert 'aria-invalid="true" aria-describedby="login-error"' in wrong.text
    assert 'name="username"' in wrong.text and 'name="password"' in wrong.text  # the contract's


def test_an_error_page_in_spanish_and_the_same_page_in_english(base_url):
    page = requests.get(base_url + "/no/such/page", headers=SPANISH)
    assert page.status_code == 404 and '<html lang="es">' in page.text
    text = _words(page.text)
    assert "Página no encontrada" in text and "No hay ninguna página en esta dirección." in text
    assert re.search(r'<a href="/login">Iniciar sesión</a>', page.text)
    english = requests.get(base_url + "/no/such/page", headers={"Accept-Language": "en"})
    assert "Page not found" in english.text and "Página" not in english.text


def test_the_account_page_in_spanish_with_its_notice_and_dates(app, base_url):
    make_user(app)
    http = _spanish()
    account = _sign_in(base_url, http)
    assert account.url.endswith("/account") and '<html lang="es">' in account.text
    text = _words(account.text)
    for spanish in ("Su cuenta", "Sesión iniciada como Alice Example.",
                    "La verificación en dos pasos está desactivada.", "Aplicaciones conectadas",
                    "Ninguna aplicación tiene acceso a sus datos.", "Este dispositivo",
                    "Dónde tiene la sesión iniciada", "Dispositivo desconocido",
                    "Solo tiene la sesión iniciada en este dispositivo.", "Cambiar la contraseña"):
        assert spanish in text, spanish
    # The server's own date text, month names in Spanish (UTC), as in its datetime attribute.
    iso, shown = re.search(r'<time datetime="([^"]+)">([^<]+)</time>', account.text).groups()
    at = datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert shown == f"{at.day} {MESES[at.month - 1]} {at.year}, {at:%H:%M} UTC"
    # A notice the code flashes, in the language of the request that made it.
    _sign_in(base_url, _spanish())
    again = http.get(base_url + "/account")
    assert "Cerrar sesión en todos los demás sitios" in _words(again.text)
    ended = http.post(base_url + "/account/sessions/end-others",
                      data={"csrf_token": csrf_of(again.text)})
    assert "Se ha cerrado 1 sesión más." in _words(ended.text)


def test_the_password_change_page_and_its_errors_in_spanish(app, base_url):
    make_user(app)
    http = _spanish()
    _sign_in(base_url, http)
    page = http.get(base_url + "/account/password")
    text = _words(page.text)
    for spanish in ("Cambiar la contraseña", "Contraseña actual", "Contraseña nueva",
                    "Repita la contraseña nueva", "Al menos 12 caracteres."):
        assert spanish in text, spanish

    def change(current: str, new: str) -> requests.Response:
        return http.post(base_url + "/account/password", data={
            "csrf_token": csrf_of(page.text), "current_password": current,
            "new_password": new, "new_password_confirm": new})

    wrong = change("not the password", "a brand new sentence 7")
    assert wrong.status_code == 400 and "Esa no es su contraseña actual." in wrong.text
    short = change(PASSWORD, "too short")  # a rule of the pure password policy
    assert short.status_code == 400
    assert re.search(r'id="new_password-error" role="alert">La contraseña debe tener al menos '
                     r'12 caracteres\.<', short.text)
    # The rules hint is made for each page: the English page right after is all English.
    english = http.get(base_url + "/account/password?lang=en")
    assert "At least 12 characters." in english.text and "Al menos" not in english.text


def test_the_forgotten_password_page_and_its_mail_in_spanish(app, base_url, inbox):
    make_user(app, email="alice@example.test")
    http = _spanish()
    page = http.get(base_url + "/forgot")
    text = _words(page.text)
    assert "¿Olvidó su contraseña?" in text and "Envíenme un enlace" in text
    empty = http.post(base_url + "/forgot", data={"csrf_token": csrf_of(page.text),
                                                  "username": ""})
    assert empty.status_code == 400 and "Introduzca su nombre de usuario." in empty.text
    sent = http.post(base_url + "/forgot", data={"csrf_token": csrf_of(page.text),
                                                 "username": "alice"})
    assert "Revise su correo electrónico" in _words(sent.text)
    [mail] = delivered(inbox)
    assert mail["Subject"].startswith("Restablezca su contraseña de ")
    body = mail.get_content()
    assert body.startswith("Hola, Alice Example:")
    assert "Alguien ha pedido restablecer la contraseña de la cuenta" in body
    assert re.search(r"caduca el \d{1,2} (" + "|".join(MESES) + r") \d{4}, \d\d:\d\d UTC "
                     r"\(30 minutos", body), body
    link = re.search(r"(http://127\.0\.0\.1:\d+/reset/[A-Za-z0-9_-]+)", body).group(1)
    reset = http.get(link)
    assert "Elija una contraseña nueva" in _words(reset.text)


def test_an_invitation_sent_from_a_spanish_page_is_written_in_spanish(app, base_url, inbox):
    http = sign_in_admin(app, base_url)
    http.headers.update(SPANISH)
    page = http.get(base_url + "/admin")
    assert "Invitar a un usuario" in _words(page.text)
    # The role's option values stay the form's; only what a person reads is translated.
    assert '<option value="clinician">profesional clínico</option>' in page.text
    resp = http.post(base_url + "/admin/invite", data={
        "csrf_token": csrf_of(page.text), "email": "dr.new@clinic.test", "role": "clinician",
        "name": "Dra. Nueva"})
    assert resp.status_code == 200 and "Invitación enviada a dr.new@clinic.test" in _words(
        resp.text)
    [mail] = delivered(inbox)
    assert mail["Subject"].startswith("Su invitación a ")
    body = mail.get_content()
    assert body.startswith("Hola, Dra. Nueva:")
    assert "Root Admin (root) le ha invitado a" in body and "como profesional clínico." in body
    assert "configurará la verificación en dos pasos" in body
    bad = http.post(base_url + "/admin/invite", data={
        "csrf_token": csrf_of(page.text), "email": "not an address", "role": "patient"})
    assert bad.status_code == 400
    assert "Introduzca una dirección de correo electrónico válida" in bad.text


# ---- two-step sign-in, in Spanish ---------------------------------------------------------

def _post_code(base_url: str, http: requests.Session, path: str, code: str,
               **form: str) -> requests.Response:
    page = http.get(base_url + path)
    return http.post(base_url + path, data={"csrf_token": csrf_of(page.text), "code": code,
                                            "next": "/account", **form})


def _error_of(page: str, field: str) -> str:
    assert re.search(rf'id="{field}"[^>]*aria-invalid="true" aria-describedby="{field}-error"',
                     page), field
    return re.search(rf'<p class="error" id="{field}-error" role="alert">([^<]+)<', page).group(1)


def test_the_totp_step_and_its_wrong_code_errors_in_spanish(app, base_url):
    user = make_clinician(app, "alice")
    http = _spanish()
    step = _sign_in(base_url, http)
    assert "/login/totp" in step.url and '<html lang="es">' in step.text
    text = _words(step.text)
    for spanish in ("Escriba su código de verificación", "Iniciando sesión como alice.",
                    "Abra su aplicación de autenticación y escriba el código de 6 dígitos",
                    "¿Perdió su teléfono? Use un código de recuperación",
                    "Usar código de recuperación", "¿No es usted? Empezar de nuevo"):
        assert spanish in text, spanish
    assert ">Verificar</button>" in step.text and 'name="code"' in step.text
    wrong = _post_code(base_url, http, "/login/totp", totp_code(user["secret"], ahead=20))
    assert wrong.status_code == 401
    assert _error_of(wrong.text, "code") == "Ese código no es correcto."
    wrong = _post_code(base_url, http, "/login/totp", "aaaaa-bbbbb")
    assert wrong.status_code == 401 and _error_of(wrong.text, "recovery-code") == (
        "Ese código de recuperación no es correcto o ya se ha usado. Cada código funciona una "
        "sola vez.")


def test_the_enrolment_page_and_the_recovery_codes_in_spanish(app, base_url):
    make_clinician(app, "alice", totp=False)
    http = _spanish()
    page = _sign_in(base_url, http)
    assert "/login/enrol" in page.url
    text = _words(page.text)
    for spanish in ("Configurar la verificación en dos pasos", "Iniciando sesión como alice.",
                    "Su cuenta necesita un segundo paso al iniciar sesión",
                    "Instale una aplicación de autenticación si no tiene ninguna",
                    "¿No puede escanearlo?", "Código de la aplicación"):
        assert spanish in text, spanish
    assert "<dt>Periodo</dt><dd>30 segundos</dd>" in page.text
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page.text).group(1)
    wrong = _post_code(base_url, http, "/login/enrol", totp_code(secret, ahead=20))
    assert wrong.status_code == 401
    assert _error_of(wrong.text, "code") == "Ese código no es correcto. Pruebe con el actual."
    codes = _post_code(base_url, http, "/login/enrol", totp_code(secret))
    text = _words(codes.text)
    assert "Guarde sus códigos de recuperación" in text
    assert "Es la única vez que se muestran." in text
    assert "Ya los he guardado: continuar" in text


def test_the_account_pages_two_step_section_in_spanish(app, base_url):
    make_user(app)
    http = _spanish()
    text = _words(_sign_in(base_url, http).text)
    assert ("Verificación en dos pasos La verificación en dos pasos está desactivada. "
            "Actívela") in text
    setup = http.get(base_url + "/account/two-step/setup")
    assert "Activar la verificación en dos pasos" in _words(setup.text)
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', setup.text).group(1)
    wrong = _post_code(base_url, http, "/account/two-step/setup", totp_code(secret),
                       current_password="not it")
    assert wrong.status_code == 401
    assert _error_of(wrong.text, "current_password") == "Esa contraseña no es correcta."
    assert _post_code(base_url, http, "/account/two-step/setup", totp_code(secret),
                      current_password=PASSWORD).status_code == 200
    text = _words(http.get(base_url + "/account").text)
    for spanish in ("La verificación en dos pasos está activada: al iniciar sesión se le pide",
                    "Tiene 10 códigos de recuperación sin usar.",
                    "Generar códigos de recuperación nuevos",
                    "Sustituir su aplicación de autenticación",
                    "Desactivar la verificación en dos pasos"):
        assert spanish in text, spanish
    remove = http.get(base_url + "/account/two-step/remove")
    assert "Entonces, al iniciar sesión solo se le pedirá su contraseña" in _words(remove.text)
    done = http.post(base_url + "/account/two-step/remove", data={
        "csrf_token": csrf_of(remove.text), "current_password": PASSWORD})
    assert "La verificación en dos pasos está desactivada." in _words(done.text)
