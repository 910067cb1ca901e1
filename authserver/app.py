"""The application factory: configuration, then one ``init_app`` per feature, in order."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from flask import Flask

from authserver.config import load_config
from authserver.paths import data_dir

__all__ = ["create_app"]


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app. Raises :class:`authserver.config.ConfigError` on bad configuration."""
    conf = load_config(test_config=test_config)
    app = _flask_app(conf)
    # Authlib's grants log whole token dicts at DEBUG: keep them above it (DESIGN.md, style 7),
    # and redact the dicts should a logging configuration bring DEBUG back.
    logging.getLogger("authlib").setLevel(max(logging.INFO, logging.getLogger().level))
    _redact_authlib_tokens()
    if conf["TRUST_PROXY"]:
        _trust_proxy(app, conf["TRUST_PROXY"])
    for init_app in _features():
        init_app(app)
    return app


_TOKEN_KEYS = frozenset({"access_token", "refresh_token", "id_token", "code"})


class _RedactTokens(logging.Filter):
    """Replaces a token dict among a record's arguments ("Issue token %r to %r")."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(
                isinstance(a, dict) and _TOKEN_KEYS & a.keys() for a in record.args):
            record.args = tuple("<token redacted>" if isinstance(a, dict)
                                and _TOKEN_KEYS & a.keys() else a for a in record.args)
        return True


def _redact_authlib_tokens() -> None:
    """Put :class:`_RedactTokens` on every Authlib logger (a logger's filters see only its
    own records); create_app has imported the grants by the time it runs this."""
    from authserver.oauth import server  # noqa: F401 - Authlib's grant modules, imported

    names = [n for n in logging.root.manager.loggerDict if n.split(".")[0] == "authlib"]
    for name in names:
        log = logging.getLogger(name)
        if not any(isinstance(f, _RedactTokens) for f in log.filters):
            log.addFilter(_RedactTokens())


def _features() -> tuple[Callable[[Flask], None], ...]:
    """Every feature's ``init_app``, in the order they run."""
    from authserver import audit, i18n, ratelimit, web
    from authserver.extensions import csrf
    from authserver.oauth import keystore, server
    from authserver.views import init_app as init_views

    return (
        _init_database,  # the handle, the unit of work's guard, SQLite pragmas, migrations
        csrf.init_app,
        ratelimit.init_app,  # counters shared by every worker: the database unless configured
        web.init_app,  # security headers, error pages, template helpers
        i18n.init_app,  # the pages' language (English, Spanish)
        keystore.init_app,
        server.init_app,
        audit.init_app,
        init_views,
    )


def _flask_app(conf: dict[str, Any]) -> Flask:
    """The Flask object with the configuration and the settings derived from it."""
    app = Flask(
        "authserver",
        instance_path=conf["INSTANCE_PATH"],
        template_folder=str(data_dir("templates")),
        static_folder=str(data_dir("static")),
    )
    app.config.update(conf)
    app.config.update(
        SQLALCHEMY_DATABASE_URI=conf["DATABASE_URL"],
        SQLALCHEMY_ENGINE_OPTIONS=_engine_options(conf["DATABASE_URL"]),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=conf["ISSUER"].startswith("https://"),
        PERMANENT_SESSION_LIFETIME=conf["SESSION_LIFETIME"],
        WTF_CSRF_TIME_LIMIT=None,  # the token is bound to the session, which expires itself
        MAX_CONTENT_LENGTH=256 * 1024,
        JSON_SORT_KEYS=False,
    )
    return app


def _trust_proxy(app: Flask, hops: int) -> None:
    """Believe ``hops`` proxies' X-Forwarded-For, -Proto and -Host."""
    from werkzeug.middleware.proxy_fix import ProxyFix

    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]


def _init_database(app: Flask) -> None:
    from authserver import store
    from authserver.extensions import db, migrate

    db.init_app(app)
    store.init_app(app)  # the unit of work's guard
    if app.config["DATABASE_URL"].startswith("sqlite"):
        with app.app_context():
            _sqlite_pragmas(db.engine)
    migrate.init_app(app, db, directory=str(data_dir("migrations")))


def _sqlite_pragmas(engine: Any) -> None:
    """WAL lets readers run beside the one writer (several gunicorn workers share the file);
    synchronous=NORMAL is durable across application crashes in WAL mode, and is what
    makes the per-request jti INSERT of private_key_jwt affordable."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()


def _engine_options(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        # Several gunicorn workers share one file: wait for the write lock instead of
        # failing with "database is locked".
        return {"connect_args": {"timeout": 30}}
    return {"pool_pre_ping": True, "pool_size": 5, "max_overflow": 10}
