"""The `authserver` command: one JSON object on stdout per create/add, one-line errors.

Most commands run in process through Click's ``CliRunner`` (the same group, arguments and
environment as the executable; a process start costs 2-3 s of imports). A few run the
real ``authserver`` executable, for what only a process shows: the console script itself
(``init``), ``--version``, the exit code of a configuration error and ``--password-stdin``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import traceback
from importlib.metadata import version
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import PG_URL

EXE = str(Path(sys.executable).with_name("authserver"))


@pytest.fixture(scope="module")
def instance(tmp_path_factory):
    """One initialized instance shared by this module's commands (SQLite, or a PG schema),
    made by the real executable."""
    path = tmp_path_factory.mktemp("cli-instance")
    overrides = {"AUTHSERVER_INSTANCE_PATH": str(path), "AUTHSERVER_DATABASE_URL": None}
    if PG_URL:
        # Keep the CLI's tables apart from the per-test database the other tests empty.
        from sqlalchemy import create_engine, text

        engine = create_engine(PG_URL.rsplit("/", 1)[0] + "/postgres",
                               isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("DROP DATABASE IF EXISTS authserver_cli_test"))
            conn.execute(text("CREATE DATABASE authserver_cli_test"))
        engine.dispose()
        overrides["AUTHSERVER_DATABASE_URL"] = (PG_URL.rsplit("/", 1)[0]
                                                + "/authserver_cli_test")
    env = {k: v for k, v in {**os.environ, **overrides}.items() if v is not None}
    out = subprocess.run([EXE, "init"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return {"path": path, "env": env, "overrides": overrides}


def run_exe(instance, *args, stdin: str | None = None, **env: str):
    """The real ``authserver`` executable, in a process of its own."""
    return subprocess.run([EXE, *args], env={**instance["env"], **env}, capture_output=True,
                          text=True, input=stdin, timeout=120)


def run(instance, *args, stdin: str | None = None) -> subprocess.CompletedProcess:
    """The command in process (Click's CliRunner, the executable's environment), answered
    like :func:`run_exe`: an exception that escapes is a traceback on stderr and exit 1."""
    from flask import appcontext_popped

    from authserver.cli import cli

    apps = []
    with appcontext_popped.connected_to(lambda app, **_: apps.append(app)):
        result = CliRunner().invoke(cli, list(args), input=stdin, prog_name="authserver",
                                    env={**instance["overrides"], "AUTHSERVER_CLI": "1"})
    for app in set(apps):  # what the process's exit would close
        _dispose(app)
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "".join(traceback.format_exception(result.exception))
    return subprocess.CompletedProcess(["authserver", *args], result.exit_code,
                                       result.stdout, stderr)


def _dispose(app) -> None:
    with app.app_context():
        from authserver.extensions import db

        db.session.remove()
        db.engine.dispose()


def ok_json(result) -> dict:
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout  # exactly one JSON object on stdout
    return json.loads(lines[0])


def fails(result, fragment: str) -> None:
    assert result.returncode != 0
    assert result.stdout == ""
    err = result.stderr.strip().splitlines()
    assert len(err) == 1, result.stderr
    assert fragment in err[0]


def test_init_is_idempotent(instance):
    body = ok_json(run(instance, "init"))
    assert body["database"] == "ready" and body["new_keys"] == []


def test_user_create_prints_id_username_fhir_user(instance):
    body = ok_json(run_exe(instance, "user", "create", "pat1", "--role", "patient",
                           "--password-stdin", "--fhir-user", "Patient/p1", "--name",
                           "Pat One", stdin="long enough password\n"))
    assert body["username"] == "pat1" and body["fhirUser"] == "Patient/p1"
    assert isinstance(body["id"], int)


def test_user_create_duplicate_username_fails(instance):
    ok_json(run(instance, "user", "create", "dup", "--role", "developer", "--password",
                "a long enough password"))
    fails(run(instance, "user", "create", "dup", "--role", "developer", "--password",
              "a long enough password"), "already exists")


def test_user_create_unknown_role_fails(instance):
    result = run(instance, "user", "create", "x1", "--role", "wizard")
    assert result.returncode != 0 and result.stdout == ""
    assert "wizard" in result.stderr


def test_user_create_password_breaking_a_rule_fails(instance):
    fails(run(instance, "user", "create", "x2", "--role", "patient", "--password",
              "eleven char"), "at least 12 characters")
    fails(run(instance, "user", "create", "x2", "--role", "patient", "--password",
              "Qwerty123456"), "most common passwords")
    fails(run(instance, "user", "create", "carol", "--role", "patient", "--password",
              "i-am-carol-here"), "must not contain your username")


def test_user_totp_prints_secret_and_uri(instance):
    ok_json(run(instance, "user", "create", "doc1", "--role", "clinician", "--password-stdin",
                stdin="a long enough password\n"))
    body = ok_json(run(instance, "user", "totp", "doc1"))
    assert len(body["secret"]) >= 32
    assert body["otpauth_uri"].startswith("otpauth://totp/")


def test_user_totp_unknown_user_fails(instance):
    fails(run(instance, "user", "totp", "nobody"), "nobody")


def test_client_create_public(instance):
    body = ok_json(run(instance, "client", "create", "--name", "App", "--redirect-uri",
                       "https://app.example/cb", "--scope", "openid patient/*.rs"))
    assert body["token_endpoint_auth_method"] == "none"
    assert "client_secret" not in body
    assert body["redirect_uris"] == ["https://app.example/cb"]


def test_client_create_confidential_shows_secret_once(instance):
    body = ok_json(run(instance, "client", "create", "--name", "Conf", "--redirect-uri",
                       "https://app.example/cb", "--auth-method", "client_secret_basic"))
    assert len(body["client_secret"]) >= 43  # 256 bits, base64url
    assert body["client_secret_expires_at"] == 0


def test_client_create_bad_redirect_uri_fails(instance):
    fails(run(instance, "client", "create", "--name", "Bad", "--redirect-uri",
              "http://evil.example/cb"), "invalid_redirect_uri")


def test_client_create_bad_jwks_file_fails(instance, tmp_path):
    bad = tmp_path / "jwks.json"
    bad.write_text('{"keys": [{"kty": "RSA", "kid": "k1", "n": "AQAB", "e": "AQAB", "d": "x"}]}')
    fails(run(instance, "client", "create", "--name", "Jwt", "--auth-method", "private_key_jwt",
              "--grant-type", "client_credentials", "--jwks-file", str(bad)), "public keys only")
    notjson = tmp_path / "nope.json"
    notjson.write_text("{not json")
    fails(run(instance, "client", "create", "--name", "Jwt", "--jwks-file", str(notjson)),
          "--jwks-file")


def test_resource_server_create(instance):
    body = ok_json(run(instance, "resource-server", "create", "--name", "FHIR"))
    assert body["client_id"] and body["client_secret"]


def test_patient_add_and_bad_input(instance):
    body = ok_json(run(instance, "patient", "add", "p9", "--name", "Doe, Jane",
                       "--birth-date", "1980-02-03"))
    assert body == {"id": "p9", "name": "Doe, Jane", "birthDate": "1980-02-03"}
    fails(run(instance, "patient", "add", "bad id!", "--name", "X, Y"), "patient id")
    fails(run(instance, "patient", "add", "p10", "--name", "X", "--birth-date", "3 May"),
          "--birth-date")


def test_launch_create(instance):
    body = ok_json(run(instance, "launch", "create", "--patient", "p9", "--encounter", "e1",
                       "--need-patient-banner"))
    assert len(body["launch"]) >= 32 and body["iss"] == "http://127.0.0.1:8001/fhir"
    fails(run(instance, "launch", "create", "--patient", "p9", "--fhir-context", "{oops"),
          "--fhir-context")


def test_keys_list_and_rotate(instance):
    before = ok_json(run(instance, "keys", "list"))["keys"]
    rotated = ok_json(run(instance, "keys", "rotate"))
    after = rotated["keys"]
    old = {k["kid"] for k in before if k["active"]}
    assert set(rotated["active"]).isdisjoint(old)
    # earlier keys are retired but stay published while their tokens may live
    for k in after:
        if k["kid"] in old:
            assert not k["active"] and k["published"]
    assert all("d" not in k and "private" not in json.dumps(k) for k in after)


def test_config_error_is_one_line(instance):
    result = run_exe(instance, "keys", "list", AUTHSERVER_ISSUER="nope")
    fails(result, "AUTHSERVER_ISSUER")
    assert result.returncode == 1


def test_version_names_the_package_version(instance):
    result = run_exe(instance, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"authserver, version {version('smart-authserver')}\n"


def _instance_app(instance):
    from authserver.app import create_app

    conf = {"INSTANCE_PATH": str(instance["path"]), "TESTING": True}
    if instance["env"].get("AUTHSERVER_DATABASE_URL"):
        conf["DATABASE_URL"] = instance["env"]["AUTHSERVER_DATABASE_URL"]
    return create_app(conf)


def test_registration_token_create_prints_one_object_and_registers(instance):
    body = ok_json(run(instance, "registration-token", "create", "--uses", "2",
                       "--lifetime", "600", "--note", "partner onboarding"))
    assert set(body) == {"registration_token", "expires_at", "uses", "id"}
    assert body["uses"] == 2 and len(body["registration_token"]) >= 43
    import time

    assert 590 <= body["expires_at"] - time.time() <= 600
    app = _instance_app(instance)
    http = app.test_client()
    meta = {"client_name": "Partner", "redirect_uris": ["https://partner.example/cb"],
            "token_endpoint_auth_method": "none"}
    auth = {"Authorization": "Bearer " + body["registration_token"]}
    assert http.post("/register", json=meta, headers=auth).status_code == 201
    assert http.post("/register", json=meta, headers=auth).status_code == 201
    resp = http.post("/register", json=meta, headers=auth)
    assert resp.status_code == 401 and resp.get_json()["error"] == "invalid_token"
    # Revoked: refused from its next use.
    other = ok_json(run(instance, "registration-token", "create"))
    assert other["uses"] == 1
    assert ok_json(run(instance, "registration-token", "revoke", str(other["id"]))) == {
        "id": other["id"], "revoked": True}
    resp = http.post("/register", json=meta,
                     headers={"Authorization": "Bearer " + other["registration_token"]})
    assert resp.status_code == 401
    _dispose(app)


def test_registration_token_bad_input_fails(instance):
    fails(run(instance, "registration-token", "create", "--uses", "0"), "--uses")
    fails(run(instance, "registration-token", "create", "--lifetime", "0"), "--lifetime")
    fails(run(instance, "registration-token", "create", "--note", "n" * 256), "--note")
    fails(run(instance, "registration-token", "revoke", "999999"), "no registration token")


def test_a_client_id_that_looks_like_an_option_goes_after_double_dash(instance, monkeypatch):
    """New ids never begin with ``-``; one made before that rule still works after ``--``,
    as the README says."""
    from authserver import digests

    monkeypatch.setattr(digests, "new_identifier", lambda nbytes=18: "-Xy" + "a" * 21)
    body = ok_json(run(instance, "client", "create", "--name", "Old id", "--redirect-uri",
                       "https://old.example/cb", "--auth-method", "client_secret_basic"))
    assert body["client_id"] == "-Xy" + "a" * 21
    assert run(instance, "client", "permissions", "--introspect", body["client_id"]
               ).returncode != 0  # read as an option, as click does
    assert ok_json(run(instance, "client", "permissions", "--introspect", "--",
                       body["client_id"])) == {"client_id": body["client_id"],
                                               "can_introspect": True}


def test_client_create_can_introspect_and_permissions(instance):
    body = ok_json(run(instance, "client", "create", "--name", "Auditor", "--redirect-uri",
                       "https://auditor.example/cb", "--auth-method", "client_secret_basic",
                       "--scope", "openid introspect", "--can-introspect"))
    assert body["can_introspect"] is True
    cid = body["client_id"]
    assert ok_json(run(instance, "client", "permissions", cid, "--no-introspect")) == {
        "client_id": cid, "can_introspect": False}
    assert ok_json(run(instance, "client", "permissions", cid, "--introspect")) == {
        "client_id": cid, "can_introspect": True}
    fails(run(instance, "client", "permissions", "no-such-client", "--introspect"),
          "no app")
    plain = ok_json(run(instance, "client", "create", "--name", "Plain", "--redirect-uri",
                        "https://plain.example/cb"))
    assert "can_introspect" not in plain
    app = _instance_app(instance)
    with app.app_context():
        from authserver import store
        from authserver.extensions import db
        # Made by an administrator: verified.
        assert store.clients.find_client(plain["client_id"]).verified is True
        assert store.clients.find_client(plain["client_id"]).can_introspect is False
        db.session.remove()
        db.engine.dispose()


_NO_INSTANCE = {"AUTHSERVER_INSTANCE_PATH": None, "AUTHSERVER_DATABASE_URL": None,
                "AUTHSERVER_SECRET_KEY": None, "AUTHSERVER_KEY_ENCRYPTION_KEY": None}


def test_no_instance_here_is_refused_not_made(tmp_path, monkeypatch):
    """Without AUTHSERVER_INSTANCE_PATH and ./instance, a command says which path it would
    use and makes nothing; `init` makes the instance, and then commands run."""
    monkeypatch.chdir(tmp_path)
    here = {"overrides": _NO_INSTANCE}
    for args in (("user", "list"), ("client", "list"), ("keys", "list")):
        result = run(here, *args)
        fails(result, f"no instance at {tmp_path / 'instance'}")
        assert "authserver init" in result.stderr and "AUTHSERVER_INSTANCE_PATH" in result.stderr
    assert not (tmp_path / "instance").exists()
    assert ok_json(run(here, "init"))["database"] == "ready"
    assert (tmp_path / "instance").is_dir()
    assert ok_json(run(here, "user", "list")) == {"users": [], "next": None}


def _commands(command, path=()):
    import click

    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _commands(sub, (*path, name))


def test_every_option_has_help_and_every_group_an_example():
    import click

    from authserver.cli import cli

    for path, command in _commands(cli):
        if isinstance(command, click.Group):
            assert "Example" in (command.help or ""), path
        for param in command.params:
            if not isinstance(param, click.Option) or param.name in ("help", "version"):
                continue
            assert param.help, (path, param.name)
            shown = param.show_default or "[default:" in param.help
            default = param.to_info_dict()["default"]  # None when there is none
            if default not in (None, False, ()) and not param.is_flag:
                assert shown, (path, param.name)
