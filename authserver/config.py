"""Configuration: defaults -> instance ``authserver.toml`` -> ``AUTHSERVER_*`` env -> test config.

Every key below is documented where it is defined. :func:`validate` fails fast with a
:class:`ConfigError` whose one-line message names the environment variable at fault.
Secrets that are absent (session secret, key-encryption key) are generated once into the
instance folder with mode 0600 and reused on every later start.
"""

from __future__ import annotations

import os
import re
import secrets
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["ConfigError", "DEFAULTS", "load_config", "validate", "env_name"]


class ConfigError(Exception):
    """A configuration value is wrong; ``str(err)`` is one line naming the variable."""


#: key -> default. Every key may be set as ``AUTHSERVER_<KEY>`` or in authserver.toml.
DEFAULTS: dict[str, Any] = {
    # Public base URL; every endpoint URL and the `iss` claim derive from it.
    "ISSUER": "http://127.0.0.1:8000",
    # FHIR base URL(s) accepted as `aud`, comma separated; the first is the default.
    "FHIR_BASE_URL": "http://127.0.0.1:8001/fhir",
    # SQLAlchemy URL; empty means SQLite in the instance folder.
    "DATABASE_URL": "",
    # Where the SQLite file, generated secrets and authserver.toml live.
    "INSTANCE_PATH": "./instance",
    # Session/CSRF secret; generated into the instance folder when absent.
    "SECRET_KEY": "",
    # Wraps private signing keys at rest (32 bytes, base64url); generated when absent.
    "KEY_ENCRYPTION_KEY": "",
    # Algorithm of access tokens (RS256, RS384, ES256, ES384). id_tokens are always RS256.
    "SIGNING_ALG": "RS256",
    # Lifetimes in seconds.
    "ACCESS_TOKEN_LIFETIME": 3600,  # SMART: access tokens *should* live <= 1 h
    "CLIENT_CREDENTIALS_TOKEN_LIFETIME": 300,  # Backend Services: *should* be <= 5 min
    "ID_TOKEN_LIFETIME": 3600,
    "AUTHORIZATION_CODE_LIFETIME": 60,
    "OFFLINE_REFRESH_LIFETIME": 90 * 24 * 3600,  # ONC (g)(10): at least 3 months, sliding
    "LAUNCH_LIFETIME": 300,  # EHR launch contexts
    "PENDING_AUTHORIZATION_LIFETIME": 1800,  # a request parked while the user signs in
    "SESSION_LIFETIME": 12 * 3600,
    "INVITATION_LIFETIME": 7 * 24 * 3600,  # an e-mailed invitation link (single use)
    # A forgotten-password link (single use; OWASP: short lived): 60 s to 24 h.
    "PASSWORD_RESET_LIFETIME": 1800,
    # Outgoing e-mail (invitations). An empty SMTP_HOST disables mail: invitations then fail
    # with a clear error. SMTP_STARTTLS is 0 or 1; SMTP_USERNAME/PASSWORD are optional.
    "SMTP_HOST": "",
    "SMTP_PORT": 25,
    "SMTP_FROM": "authserver@localhost",
    "SMTP_STARTTLS": 0,
    # 1: a client's jwks_uri may resolve to private, loopback or link-local addresses
    # (on-premises deployments, development). 0 (default) refuses them before connecting
    # (SSRF, e.g. cloud metadata).
    "JWKS_ALLOW_PRIVATE_NETWORKS": 0,
    "SMTP_USERNAME": "",
    "SMTP_PASSWORD": "",
    # Seconds a client's jwks_uri fetch may take in all (connect, redirects refused, body).
    "JWKS_FETCH_TIMEOUT": 2,
    # Seconds a failed jwks_uri fetch is remembered (no new fetch meanwhile); doubles with
    # each failure in a row, up to 20 times this.
    "JWKS_FAILURE_CACHE": 30,
    # 1: POST /register needs no initial access token (RFC 7591 §3 open registration).
    # 0 (default): an administrator issues one with `authserver registration-token create`.
    "OPEN_REGISTRATION": 0,
    # Rate limits (Flask-Limiter syntax). LOGIN_RATE_LIMIT counts sign-in attempts per
    # client address; LOGIN_ACCOUNT_RATE_LIMIT counts wrong passwords per account (so many
    # addresses cannot guess one password: each attempt is counted per username, known or
    # not, before its password is checked, and a right password starts the count over);
    # REGISTRATION_RATE_LIMIT counts POST /register per address.
    "LOGIN_RATE_LIMIT": "20 per minute",
    "LOGIN_ACCOUNT_RATE_LIMIT": "10 per 15 minutes",
    "REGISTRATION_RATE_LIMIT": "10 per minute",
    # Where the counters live: empty (default) = the database, shared by every worker and
    # instance; or a limits storage URI such as redis://host:6379 (or memory:// for one
    # process only).
    "RATELIMIT_STORAGE_URI": "",
    # TOTP brute force, per account and across sign-ins: this many wrong codes within
    # TOTP_LOCKOUT_WINDOW seconds lock the second step for TOTP_LOCKOUT_SECONDS, doubling
    # with each lockout in a row (recorded in the audit log).
    "TOTP_LOCKOUT_FAILURES": 10,
    "TOTP_LOCKOUT_WINDOW": 900,
    "TOTP_LOCKOUT_SECONDS": 900,
    # How many reverse proxies set X-Forwarded-For/-Proto/-Host in front of us (0 = none).
    "TRUST_PROXY": 0,
    # The name authenticator apps show next to a TOTP code.
    "TOTP_ISSUER": "authserver",
    # The pages' brand: the name in every page's header and title, and a logo beside it
    # (an https URL or a path on this server; empty: none). Colours: STYLE_* below.
    "BRAND_NAME": "authserver",
    "BRAND_LOGO_URL": "",
    # Cookies are Secure when the issuer is https.
    "SESSION_COOKIE_NAME": "authserver_session",
    # Port of the demo FHIR server `authserver demo` starts.
    "DEMO_FHIR_PORT": 8001,
    # SMART style document served at /smart-style.json.
    "STYLE_COLOR_BACKGROUND": "#f6f7f9",
    "STYLE_COLOR_HIGHLIGHT": "#0b5fff",
    "STYLE_COLOR_TEXT": "#1c1e21",
    "STYLE_FONT_FAMILY": "system-ui, sans-serif",
}

_INT_KEYS = {k for k, v in DEFAULTS.items() if isinstance(v, int)}
#: Whole-number keys for which 0 is meaningful (everything else must be positive).
_ZERO_OK = {"TRUST_PROXY", "SMTP_STARTTLS", "JWKS_ALLOW_PRIVATE_NETWORKS", "OPEN_REGISTRATION"}
_SIGNING_ALGS = ("RS256", "RS384", "ES256", "ES384")
#: Keys holding a Flask-Limiter rate ("20 per minute"); the account limit is a single rate.
_RATE_KEYS = ("LOGIN_RATE_LIMIT", "LOGIN_ACCOUNT_RATE_LIMIT", "REGISTRATION_RATE_LIMIT")


def env_name(key: str) -> str:
    return f"AUTHSERVER_{key}"


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc.__class__.__name__})") from None
    out = {}
    for key, value in raw.items():
        upper = key.upper()
        if upper not in DEFAULTS:
            raise ConfigError(f"{path}: unknown key {key!r}")
        out[upper] = value
    return out


def _secret_file(instance: Path, name: str, make: Any) -> str:
    """Return the secret stored in ``instance/name``, creating it (0600) when absent."""
    path = instance / name
    if path.is_file():
        return path.read_text().strip()
    _make_instance(instance)
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value


def _make_instance(instance: Path) -> None:
    """The instance folder holds secrets and the SQLite file: created 0700 (owner only)."""
    if not instance.is_dir():
        instance.mkdir(parents=True, mode=0o700, exist_ok=True)
        os.chmod(instance, 0o700)  # mkdir's mode is masked by the umask


def _make_sqlite_file(path: Path) -> None:
    """Create the SQLite file 0600 before SQLite does (it would follow the umask); its
    -wal and -shm companions take the same mode from it."""
    _make_instance(path.parent)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)


def load_config(
    environ: dict[str, str] | None = None, test_config: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Merge the configuration sources and validate; raises :class:`ConfigError`."""
    environ = dict(os.environ if environ is None else environ)
    test_config = dict(test_config or {})
    instance_raw = (
        test_config.get("INSTANCE_PATH")
        or environ.get(env_name("INSTANCE_PATH"))
        or DEFAULTS["INSTANCE_PATH"]
    )
    instance = Path(instance_raw).expanduser().resolve()
    conf = dict(DEFAULTS)
    conf.update(_read_toml(instance / "authserver.toml"))
    for key in DEFAULTS:
        if env_name(key) in environ:
            conf[key] = environ[env_name(key)]
    conf.update({k: v for k, v in test_config.items() if k in DEFAULTS})
    conf["INSTANCE_PATH"] = str(instance)
    extra = {k: v for k, v in test_config.items() if k not in DEFAULTS}
    validate(conf)
    if not conf["SECRET_KEY"]:
        conf["SECRET_KEY"] = _secret_file(instance, "secret_key", lambda: secrets.token_urlsafe(48))
    if not conf["KEY_ENCRYPTION_KEY"]:
        from authserver.keys import new_kek

        conf["KEY_ENCRYPTION_KEY"] = _secret_file(instance, "key_encryption_key", new_kek)
    _validate_kek(conf["KEY_ENCRYPTION_KEY"])
    if not conf["DATABASE_URL"]:
        conf["DATABASE_URL"] = f"sqlite:///{instance / 'authserver.sqlite3'}"
        _make_sqlite_file(instance / "authserver.sqlite3")
    conf.update(extra)
    return conf


def _validate_kek(value: str) -> None:
    from authserver.keys import KeyConfigError, load_kek

    try:
        load_kek(value)
    except KeyConfigError:
        raise ConfigError(
            f"{env_name('KEY_ENCRYPTION_KEY')}: must be 32 bytes, base64url encoded"
        ) from None


def _check_url(key: str, value: str, *, allow_path: bool = True) -> str:
    value = str(value).strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{env_name(key)}: {value!r} is not an absolute http(s) URL")
    if parts.query or parts.fragment:
        raise ConfigError(f"{env_name(key)}: must not have a query or fragment")
    if not allow_path and parts.path not in ("", "/"):
        raise ConfigError(f"{env_name(key)}: must not have a path")
    return value


def _check_rates(conf: dict[str, Any]) -> None:
    import limits

    for key in _RATE_KEYS:
        value = str(conf[key]).strip()
        try:
            rates = limits.parse_many(value)
        except ValueError:
            rates = []
        if not rates or any(r.amount < 1 for r in rates) or (
                key == "LOGIN_ACCOUNT_RATE_LIMIT" and len(rates) != 1):
            raise ConfigError(f"{env_name(key)}: {value!r} is not a rate such as '20 per minute'")
        conf[key] = value


def validate(conf: dict[str, Any]) -> None:
    """Normalize ``conf`` in place; raise :class:`ConfigError` naming the first bad variable."""
    _check_issuer(conf)
    _check_fhir_bases(conf)
    _check_whole_numbers(conf)
    _check_switches(conf)
    _check_smtp_port(conf)
    _check_password_reset_lifetime(conf)
    _check_rates(conf)
    _check_signing_alg(conf)
    _check_database_url(conf)
    _check_brand(conf)


def _check_issuer(conf: dict[str, Any]) -> None:
    issuer = _check_url("ISSUER", conf["ISSUER"])
    if issuer.endswith("/"):
        # The `iss` claim must be byte-identical to the discovery `issuer`; a trailing slash
        # makes "{issuer}/.well-known/..." ambiguous, so we refuse it instead of guessing.
        raise ConfigError(f"{env_name('ISSUER')}: must not end with '/'")
    conf["ISSUER"] = issuer


def _check_fhir_bases(conf: dict[str, Any]) -> None:
    """FHIR_BASE_URL (comma separated, or a list) -> FHIR_BASE_URLS; the first is the default."""
    bases = conf["FHIR_BASE_URL"]
    if isinstance(bases, str):
        bases = [b for b in (p.strip() for p in bases.split(",")) if b]
    if not bases:
        raise ConfigError(f"{env_name('FHIR_BASE_URL')}: at least one FHIR base URL is required")
    conf["FHIR_BASE_URLS"] = [_check_url("FHIR_BASE_URL", b).rstrip("/") for b in bases]
    conf["FHIR_BASE_URL"] = conf["FHIR_BASE_URLS"][0]


def _check_whole_numbers(conf: dict[str, Any]) -> None:
    for key in _INT_KEYS:
        try:
            value = int(conf[key])
        except (TypeError, ValueError):
            raise ConfigError(f"{env_name(key)}: must be a whole number") from None
        if value < 0 or (value == 0 and key not in _ZERO_OK):
            raise ConfigError(f"{env_name(key)}: must be positive")
        conf[key] = value


def _check_switches(conf: dict[str, Any]) -> None:
    for key in ("JWKS_ALLOW_PRIVATE_NETWORKS", "OPEN_REGISTRATION", "SMTP_STARTTLS"):
        if conf[key] not in (0, 1):
            raise ConfigError(f"{env_name(key)}: must be 0 or 1")


def _check_smtp_port(conf: dict[str, Any]) -> None:
    if conf["SMTP_PORT"] > 65535:
        raise ConfigError(f"{env_name('SMTP_PORT')}: must be a port number (1-65535)")


#: The bounds of PASSWORD_RESET_LIFETIME: time to open the mail, yet no long-lived link.
_RESET_LIFETIME_RANGE = (60, 24 * 3600)


def _check_password_reset_lifetime(conf: dict[str, Any]) -> None:
    low, high = _RESET_LIFETIME_RANGE
    if not low <= conf["PASSWORD_RESET_LIFETIME"] <= high:
        raise ConfigError(f"{env_name('PASSWORD_RESET_LIFETIME')}: must be {low} to {high} "
                          "seconds")


def _check_signing_alg(conf: dict[str, Any]) -> None:
    alg = str(conf["SIGNING_ALG"]).upper()
    if alg not in _SIGNING_ALGS:
        raise ConfigError(f"{env_name('SIGNING_ALG')}: must be one of {', '.join(_SIGNING_ALGS)}")
    conf["SIGNING_ALG"] = alg


def _check_database_url(conf: dict[str, Any]) -> None:
    """sqlite or postgresql only; a bare postgresql:// URL gets the psycopg 3 driver."""
    url = str(conf["DATABASE_URL"] or "")
    if not url:
        return
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"{env_name('DATABASE_URL')}: not a SQLAlchemy database URL") from None
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(f"{env_name('DATABASE_URL')}: only sqlite and postgresql are supported")
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        # psycopg 3 is the driver we ship in the `postgres` extra.
        conf["DATABASE_URL"] = parsed.set(drivername="postgresql+psycopg").render_as_string(
            hide_password=False
        )


_COLOUR = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")
_FONTS = re.compile(r"[\w ,'\"-]{1,200}")


def _check_brand(conf: dict[str, Any]) -> None:
    """The brand and style values go into every page and a style sheet: a name of printable
    characters, a logo that is https (or a path here), colours as #rgb/#rrggbb, a font list."""
    name = str(conf["BRAND_NAME"]).strip()
    if not name or len(name) > 80 or not name.isprintable():
        raise ConfigError(f"{env_name('BRAND_NAME')}: 1 to 80 printable characters")
    conf["BRAND_NAME"] = name
    logo = str(conf["BRAND_LOGO_URL"] or "").strip()
    if logo and not logo.startswith("/"):
        logo = _check_url("BRAND_LOGO_URL", logo)
        if not logo.startswith("https://"):
            raise ConfigError(f"{env_name('BRAND_LOGO_URL')}: must be https (or a path)")
    if logo.startswith("//") or any(c in logo for c in "\"<> "):
        raise ConfigError(f"{env_name('BRAND_LOGO_URL')}: {logo!r} is not a usable URL")
    conf["BRAND_LOGO_URL"] = logo
    for key in ("STYLE_COLOR_BACKGROUND", "STYLE_COLOR_HIGHLIGHT", "STYLE_COLOR_TEXT"):
        if not _COLOUR.fullmatch(str(conf[key]).strip()):
            raise ConfigError(f"{env_name(key)}: a colour such as #0b5fff")
        conf[key] = str(conf[key]).strip()
    if not _FONTS.fullmatch(str(conf["STYLE_FONT_FAMILY"]).strip()):
        raise ConfigError(f"{env_name('STYLE_FONT_FAMILY')}: a CSS font list such as "
                          "'system-ui, sans-serif'")

