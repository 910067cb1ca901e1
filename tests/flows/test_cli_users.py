"""`authserver user ...` and `authserver invite` as an operator uses them: each prints one
JSON object or one error line. Commands that must show an effect on tokens or sign-in run
against a live server's database (the `live` fixture), in process."""

from __future__ import annotations

import re

import pytest

from tests.flows.test_cli import fails, ok_json, run
from tests.flows.test_cli import instance as _module_instance
from tests.helpers import PASSWORD, OAuthFlow, add_patients, make_client, make_user
from tests.smtp_sink import delivered, smtp_config, smtp_server

NEW_PASSWORD = "a brand new passphrase"
#: test_cli's fixture: one initialized instance for this module's commands.
instance = _module_instance


def on(app, **extra: str) -> dict:
    """What :func:`run` needs to run a command against ``app``'s database and settings."""
    conf = app.config
    return {"overrides": {
        "AUTHSERVER_INSTANCE_PATH": conf["INSTANCE_PATH"],
        "AUTHSERVER_DATABASE_URL": conf["DATABASE_URL"], "AUTHSERVER_ISSUER": conf["ISSUER"],
        "AUTHSERVER_FHIR_BASE_URL": ",".join(conf["FHIR_BASE_URLS"]),
        "AUTHSERVER_KEY_ENCRYPTION_KEY": conf["KEY_ENCRYPTION_KEY"],
        "AUTHSERVER_SECRET_KEY": conf["SECRET_KEY"], **extra}}


def _create(inst, username: str, role: str = "developer", *more: str) -> dict:
    return ok_json(run(inst, "user", "create", username, "--role", role, "--password-stdin",
                       *more, stdin=PASSWORD + "\n"))


# ---- list and show ------------------------------------------------------------------

def test_list_pages_by_id_without_repeats_and_filters(instance):
    made = [_create(instance, f"page{i}")["id"] for i in range(5)]
    seen, after, pages = [], str(made[0] - 1), 0
    while True:
        body = ok_json(run(instance, "user", "list", "--limit", "2", "--after", after))
        seen += [u["id"] for u in body["users"]]
        pages += 1
        if body["next"] is None:
            break
        assert body["next"] == body["users"][-1]["id"]
        after = str(body["next"])
    assert seen == sorted(set(seen)) and set(made) <= set(seen)  # in order, no repeats
    assert pages >= 3
    ok_json(run(instance, "user", "disable", "page3"))
    off = ok_json(run(instance, "user", "list", "--disabled", "--limit", "500"))["users"]
    assert [u["username"] for u in off] == ["page3"] and off[0]["disabled"] is True
    on_ = ok_json(run(instance, "user", "list", "--enabled", "--limit", "500"))["users"]
    assert "page3" not in {u["username"] for u in on_}
    _create(instance, "cl1", "clinician")
    assert {u["role"] for u in ok_json(run(instance, "user", "list", "--role", "clinician")
                                      )["users"]} == {"clinician"}
    fails(run(instance, "user", "list", "--limit", "0"), "--limit")


def test_show_says_what_an_operator_asks_and_no_secret(instance):
    _create(instance, "shown", "clinician", "--email", "shown@example.org", "--name", "S Hown")
    ok_json(run(instance, "user", "totp", "shown"))
    body = ok_json(run(instance, "user", "show", "shown"))
    assert body["username"] == "shown" and body["role"] == "clinician"
    assert body["email"] == "shown@example.org" and body["name"] == "S Hown"
    assert body["two_step"] == "on" and body["recovery_codes_left"] == 0
    assert body["live_sessions"] == 0 and body["connected_apps"] == 0
    assert body["disabled"] is False and isinstance(body["created_at"], int)
    assert not {"password_hash", "totp_secret_enc", "secret"} & set(body)
    fails(run(instance, "user", "show", "nobody"), "no user 'nobody'")


# ---- refusals of create, totp, patient add and launch ---------------------------------

def test_create_refuses_what_could_never_work(instance):
    fails(run(instance, "user", "create", "nopw", "--role", "patient"), "could never sign in")
    fails(run(instance, "user", "create", "both", "--role", "patient", "--password",
              PASSWORD, "--password-stdin", stdin=PASSWORD + "\n"), "one of --password")
    fails(run(instance, "user", "create", "empty", "--role", "patient", "--password-stdin",
              stdin="\n"), "held no password")
    fails(run(instance, "user", "create", "mail1", "--role", "patient", "--password", PASSWORD,
              "--email", "not-an-email"), "--email")
    ok_json(run(instance, "patient", "add", "reg1", "--name", "Reg, One"))
    fails(run(instance, "user", "create", "p999", "--role", "patient", "--password", PASSWORD,
              "--fhir-user", "Patient/p999"), "no patient 'p999'")
    body = _create(instance, "reg1user", "patient", "--fhir-user", "Patient/reg1")
    assert body["fhirUser"] == "Patient/reg1"


def test_a_patient_not_in_an_empty_registry_is_taken(app):
    """An empty registry: the patients live elsewhere (the EHR), any Patient/ID is taken."""
    body = _create(on(app), "elsewhere", "patient", "--fhir-user", "Patient/x1")
    assert body["fhirUser"] == "Patient/x1"


def test_totp_over_an_authenticator_needs_replace(instance):
    _create(instance, "twice", "clinician")
    first = ok_json(run(instance, "user", "totp", "twice"))
    fails(run(instance, "user", "totp", "twice"), "--replace")
    second = ok_json(run(instance, "user", "totp", "twice", "--replace"))
    assert second["secret"] != first["secret"]


def test_patient_birth_date_must_be_real_and_launch_patient_known(instance):
    fails(run(instance, "patient", "add", "p13", "--name", "Doe, J", "--birth-date",
              "1999-13-40"), "not a real date")
    fails(run(instance, "patient", "add", "p13", "--name", "Doe, J", "--birth-date",
              "2001-02-29"), "not a real date")
    ok_json(run(instance, "patient", "add", "p13", "--name", "Doe, J", "--birth-date",
                "2000-02-29"))
    fails(run(instance, "launch", "create", "--patient", "nope"), "no patient 'nope'")
    assert ok_json(run(instance, "launch", "create", "--patient", "p13"))["launch"]


# ---- disable, enable, set-role: their effect on tokens --------------------------------

@pytest.fixture
def granted(app, base_url):
    """alice (a patient) with a refresh token of a public app."""
    make_user(app)
    add_patients(app, ("p1", "Example, Alice", None))
    flow = OAuthFlow(base_url, make_client(app))
    return {"flow": flow, "token": flow.run()}


def test_disabled_users_refresh_token_is_refused_also_after_enable(app, granted):
    inst = on(app)
    body = ok_json(run(inst, "user", "disable", "alice"))
    assert body == {"username": "alice", "disabled": True, "sessions_ended": 1}
    flow, token = granted["flow"], granted["token"]
    resp = flow.refresh(token["refresh_token"])
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"
    assert ok_json(run(inst, "user", "enable", "alice")) == {"username": "alice",
                                                             "disabled": False}
    assert flow.refresh(token["refresh_token"]).json()["error"] == "invalid_grant"
    shown = ok_json(run(inst, "user", "show", "alice"))
    assert shown["live_sessions"] == 0 and shown["connected_apps"] == 0


def test_set_role_keeps_the_rules_and_a_change_revokes_grants(app, granted):
    inst = on(app)
    fails(run(inst, "user", "set-role", "alice", "patient", "--fhir-user", "Practitioner/d1"),
          "Patient/ID")
    fails(run(inst, "user", "set-role", "alice", "patient", "--fhir-user", "Patient/p404"),
          "no patient 'p404'")
    same = ok_json(run(inst, "user", "set-role", "alice", "patient"))
    assert same["changed"] is False
    token = granted["token"]
    assert granted["flow"].refresh(token["refresh_token"]).status_code == 200  # unchanged
    body = ok_json(run(inst, "user", "set-role", "alice", "clinician", "--fhir-user",
                       "Practitioner/d1"))
    assert body == {"username": "alice", "role": "clinician", "fhir_user": "Practitioner/d1",
                    "changed": True}
    assert ok_json(run(inst, "user", "show", "alice"))["connected_apps"] == 0


# ---- reset-password and reset-totp ----------------------------------------------------

def _password_ok(app, username: str, password: str) -> bool:
    from authserver import store
    from authserver.auth import passwords

    with app.app_context():
        return passwords.verify_password(
            store.accounts.find_username(username).password_hash, password)[0]


def test_reset_password_without_mail_needs_stdin(app, granted):
    inst = on(app)
    fails(run(inst, "user", "reset-password", "alice"), "--password-stdin")
    fails(run(inst, "user", "reset-password", "alice", "--password-stdin", stdin="short\n"),
          "password:")
    body = ok_json(run(inst, "user", "reset-password", "alice", "--password-stdin",
                       stdin=NEW_PASSWORD + "\n"))
    assert body == {"username": "alice", "reset": "password_set"}
    assert _password_ok(app, "alice", NEW_PASSWORD) and not _password_ok(app, "alice", PASSWORD)
    assert ok_json(run(inst, "user", "show", "alice"))["live_sessions"] == 0


def test_reset_password_mails_a_link_once_a_minute(app):
    make_user(app, "mailed", email="mailed@example.org", fhir_user=None)
    with smtp_server() as inbox:
        conf = smtp_config(inbox)
        inst = on(app, AUTHSERVER_SMTP_HOST=conf["SMTP_HOST"],
                  AUTHSERVER_SMTP_PORT=str(conf["SMTP_PORT"]),
                  AUTHSERVER_SMTP_FROM=conf["SMTP_FROM"])
        body = ok_json(run(inst, "user", "reset-password", "mailed"))
        assert body["reset"] == "link_sent" and body["email"] == "mailed@example.org"
        (msg,) = delivered(inbox)
        assert msg["To"] == "mailed@example.org"
        link = re.search(r"/reset/([A-Za-z0-9_-]{32,})", msg.get_content())
        assert link and link.group(1) not in str(body)
        fails(run(inst, "user", "reset-password", "mailed"), "less than 60 seconds ago")
    assert _password_ok(app, "mailed", PASSWORD)  # unchanged until the link is followed


def test_reset_password_when_the_mail_server_is_down_says_so(app):
    make_user(app, "unlucky", email="unlucky@example.org", fhir_user=None)
    with smtp_server() as inbox:
        port = str(inbox.port)
    inst = on(app, AUTHSERVER_SMTP_HOST="127.0.0.1", AUTHSERVER_SMTP_PORT=port)
    fails(run(inst, "user", "reset-password", "unlucky"), "could not be sent")


def test_reset_totp_removes_authenticator_and_codes(app, base_url):
    from authserver.auth import session as auth

    make_user(app, "drno", "clinician", fhir_user="Practitioner/pr1")
    inst = on(app)
    ok_json(run(inst, "user", "totp", "drno"))
    with app.app_context():
        from authserver import store

        with store.transaction():
            auth.issue_recovery_codes(store.accounts.find_username("drno").id, "test.codes")
    assert ok_json(run(inst, "user", "show", "drno"))["recovery_codes_left"] == 10
    body = ok_json(run(inst, "user", "reset-totp", "drno"))
    assert body["had_authenticator"] is True and body["recovery_codes_removed"] == 10
    assert body["enrols_at_next_sign_in"] is True
    shown = ok_json(run(inst, "user", "show", "drno"))
    assert shown["two_step"] == "off" and shown["recovery_codes_left"] == 0
    with app.app_context():
        from authserver import store

        events = [e.event for e in store.audit.recent(5)]
    assert "user.totp_reset" in events
    # The next sign-in asks for a new authenticator (the clinician's role requires one).
    flow = OAuthFlow(base_url, make_client(app, scope="openid fhirUser launch user/*.rs"))
    flow.authorize()
    flow.follow()
    flow.login("drno")
    assert flow.last.status_code == 200 and "/login/enrol" in flow.last.url


# ---- invite ----------------------------------------------------------------------------

def test_invite_mails_a_link_and_prints_no_token(app):
    with smtp_server() as inbox:
        conf = smtp_config(inbox)
        inst = on(app, AUTHSERVER_SMTP_HOST=conf["SMTP_HOST"],
                  AUTHSERVER_SMTP_PORT=str(conf["SMTP_PORT"]))
        body = ok_json(run(inst, "invite", "--email", "dana@example.org", "--role",
                           "clinician", "--name", "Dana Jones"))
        assert set(body) == {"id", "email", "role", "fhirUser", "expires_at"}
        (msg,) = inbox.messages()
    text = msg.get_content()
    token = re.search(r"/invite/([A-Za-z0-9_-]{32,})", text).group(1)
    assert token not in str(body) and "An administrator has invited you" in text
    fails(run(inst, "invite", "--email", "nope", "--role", "patient"), "e-mail address")
    fails(run(on(app), "invite", "--email", "x@example.org", "--role", "patient"),
          "AUTHSERVER_SMTP_HOST")
