"""Configuration: defaults, environment, instance TOML, and one-line errors naming the variable."""

import os
import stat

import pytest

from authserver.config import ConfigError, load_config


def _load(tmp_path, **env):
    environ = {"AUTHSERVER_INSTANCE_PATH": str(tmp_path)}
    environ.update({f"AUTHSERVER_{k}": v for k, v in env.items()})
    return load_config(environ=environ)


def test_defaults_use_sqlite_in_instance_folder(tmp_path):
    conf = _load(tmp_path)
    assert conf["ISSUER"] == "http://127.0.0.1:8000"
    assert conf["FHIR_BASE_URLS"] == ["http://127.0.0.1:8001/fhir"]
    assert conf["DATABASE_URL"] == f"sqlite:///{tmp_path.resolve() / 'authserver.sqlite3'}"


def test_generated_secrets_are_private_and_reused(tmp_path):
    first = _load(tmp_path)
    for name in ("secret_key", "key_encryption_key"):
        mode = stat.S_IMODE(os.stat(tmp_path / name).st_mode)
        assert mode == 0o600, name
    second = _load(tmp_path)
    assert first["SECRET_KEY"] == second["SECRET_KEY"]
    assert first["KEY_ENCRYPTION_KEY"] == second["KEY_ENCRYPTION_KEY"]


def test_fhir_base_urls_are_split_and_normalized(tmp_path):
    conf = _load(tmp_path, FHIR_BASE_URL="https://a.example/fhir/, https://b.example/r4")
    assert conf["FHIR_BASE_URLS"] == ["https://a.example/fhir", "https://b.example/r4"]
    assert conf["FHIR_BASE_URL"] == "https://a.example/fhir"


def test_instance_toml_is_read_and_env_wins(tmp_path):
    (tmp_path / "authserver.toml").write_text('issuer = "https://toml.example"\n'
                                              'access_token_lifetime = 600\n')
    conf = _load(tmp_path)
    assert conf["ISSUER"] == "https://toml.example"
    assert conf["ACCESS_TOKEN_LIFETIME"] == 600
    conf = _load(tmp_path, ISSUER="https://env.example")
    assert conf["ISSUER"] == "https://env.example"


def test_postgres_url_gets_psycopg_driver(tmp_path):
    conf = _load(tmp_path, DATABASE_URL="postgresql://u@db.example/auth")
    assert conf["DATABASE_URL"].startswith("postgresql+psycopg://u@db.example/auth")


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"ISSUER": "not a url"}, "AUTHSERVER_ISSUER"),
        ({"ISSUER": "ftp://x.example"}, "AUTHSERVER_ISSUER"),
        ({"ISSUER": "https://x.example/"}, "AUTHSERVER_ISSUER"),
        ({"ISSUER": "https://x.example?a=1"}, "AUTHSERVER_ISSUER"),
        ({"FHIR_BASE_URL": "fhir.example"}, "AUTHSERVER_FHIR_BASE_URL"),
        ({"FHIR_BASE_URL": " , "}, "AUTHSERVER_FHIR_BASE_URL"),
        ({"DATABASE_URL": "nonsense"}, "AUTHSERVER_DATABASE_URL"),
        ({"DATABASE_URL": "mysql://u@h/db"}, "AUTHSERVER_DATABASE_URL"),
        ({"ACCESS_TOKEN_LIFETIME": "soon"}, "AUTHSERVER_ACCESS_TOKEN_LIFETIME"),
        ({"ACCESS_TOKEN_LIFETIME": "-5"}, "AUTHSERVER_ACCESS_TOKEN_LIFETIME"),
        ({"SIGNING_ALG": "HS256"}, "AUTHSERVER_SIGNING_ALG"),
        ({"KEY_ENCRYPTION_KEY": "too-short"}, "AUTHSERVER_KEY_ENCRYPTION_KEY"),
    ],
)
def test_bad_value_stops_with_one_line_naming_the_variable(tmp_path, env, variable):
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, **env)
    message = str(err.value)
    assert message.startswith(variable)
    assert "\n" not in message


def test_bad_toml_names_the_file(tmp_path):
    (tmp_path / "authserver.toml").write_text("issuer = \n")
    with pytest.raises(ConfigError, match="authserver.toml"):
        _load(tmp_path)


def test_unknown_toml_key_is_refused(tmp_path):
    (tmp_path / "authserver.toml").write_text('isuer = "https://typo.example"\n')
    with pytest.raises(ConfigError, match="unknown key 'isuer'"):
        _load(tmp_path)


def test_secret_values_are_not_echoed_in_errors(tmp_path):
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, KEY_ENCRYPTION_KEY="s3cr3t-value-that-is-wrong")
    assert "s3cr3t" not in str(err.value)


def test_trust_proxy_may_be_zero_but_not_negative(tmp_path):
    assert _load(tmp_path, TRUST_PROXY="0")["TRUST_PROXY"] == 0
    with pytest.raises(ConfigError, match="AUTHSERVER_TRUST_PROXY"):
        _load(tmp_path, TRUST_PROXY="-1")


def test_instance_folder_and_sqlite_file_are_private(tmp_path):
    import stat

    from authserver.config import load_config

    inst = tmp_path / "fresh" / "instance"
    conf = load_config(environ={"AUTHSERVER_INSTANCE_PATH": str(inst)})
    assert stat.S_IMODE(inst.stat().st_mode) == 0o700
    db_file = inst / "authserver.sqlite3"
    assert conf["DATABASE_URL"].endswith(str(db_file))
    assert stat.S_IMODE(db_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((inst / "secret_key").stat().st_mode) == 0o600


@pytest.mark.parametrize("key, value", [
    ("LOGIN_RATE_LIMIT", "lots"), ("LOGIN_RATE_LIMIT", ""), ("LOGIN_RATE_LIMIT", "0 per minute"),
    ("LOGIN_ACCOUNT_RATE_LIMIT", "10 per minute;100 per day"),
    ("REGISTRATION_RATE_LIMIT", "ten per minute"),
])
def test_bad_rate_limit_is_one_line_naming_the_variable(tmp_path, key, value):
    with pytest.raises(ConfigError, match=f"^AUTHSERVER_{key}: .*not a rate") as err:
        _load(tmp_path, **{key: value})
    assert "\n" not in str(err.value)


def test_rate_limits_default_to_the_documented_rates(tmp_path):
    conf = _load(tmp_path)
    assert (conf["LOGIN_RATE_LIMIT"], conf["LOGIN_ACCOUNT_RATE_LIMIT"]) == (
        "20 per minute", "10 per 15 minutes")
    assert conf["RATELIMIT_STORAGE_URI"] == ""  # the database


def test_unknown_rate_limit_storage_stops_start_up_naming_the_variable(tmp_path):
    from authserver.app import create_app

    with pytest.raises(ConfigError, match="^AUTHSERVER_RATELIMIT_STORAGE_URI: ") as err:
        create_app({"INSTANCE_PATH": str(tmp_path), "RATELIMIT_STORAGE_URI": "nosuch://x"})
    assert "\n" not in str(err.value)


def test_password_reset_lifetime_defaults_to_thirty_minutes(tmp_path):
    assert _load(tmp_path)["PASSWORD_RESET_LIFETIME"] == 1800
    assert _load(tmp_path, PASSWORD_RESET_LIFETIME="600")["PASSWORD_RESET_LIFETIME"] == 600


@pytest.mark.parametrize("value", ["soon", "0", "-5", "59", "86401"])
def test_bad_password_reset_lifetime_names_the_variable(tmp_path, value):
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, PASSWORD_RESET_LIFETIME=value)
    assert str(err.value).startswith("AUTHSERVER_PASSWORD_RESET_LIFETIME: ")
    assert "\n" not in str(err.value)
