"""Fixtures: an app on a fresh database per test, served over real HTTP when asked.

The database is SQLite (a fresh copy of a migrated template file per test) unless
AUTHSERVER_TEST_DATABASE_URL names a PostgreSQL database: then every test runs on it
(migrated once, emptied between tests) — that is the PostgreSQL leg of CI.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text
from werkzeug.serving import make_server

from authserver.keys import new_kek

PG_URL = os.environ.get("AUTHSERVER_TEST_DATABASE_URL", "").strip()
KEK = new_kek()
SECRET = "test-secret-key-" + "x" * 32


def pytest_report_header(config: pytest.Config) -> list[str]:
    if PG_URL:
        return [f"database: PostgreSQL ({PG_URL.rsplit('@', 1)[-1]})"]
    return ["database: SQLite; PostgreSQL-only tests are SKIPPED "
            "(set AUTHSERVER_TEST_DATABASE_URL to run them)"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if PG_URL:
        return
    skip = pytest.mark.skip(reason="PostgreSQL leg: AUTHSERVER_TEST_DATABASE_URL is not set")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


def base_config(instance: Path, db_url: str, issuer: str = "http://127.0.0.1:8000") -> dict:
    return {
        "INSTANCE_PATH": str(instance),
        "DATABASE_URL": db_url,
        "KEY_ENCRYPTION_KEY": KEK,
        "SECRET_KEY": SECRET,
        "ISSUER": issuer,
        "FHIR_BASE_URL": "http://127.0.0.1:8001/fhir,https://fhir.example.org/r4",
        "TESTING": True,
    }


def _make_app(config: dict):
    from authserver.app import create_app

    return create_app(config)


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Migrate a database once per session, with signing keys; tests start from copies."""
    from authserver.services import admin_console

    inst = tmp_path_factory.mktemp("template")
    if PG_URL:
        engine = create_engine(PG_URL)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        engine.dispose()
        url = PG_URL
    else:
        url = f"sqlite:///{inst / 'template.sqlite3'}"
    app = _make_app(base_config(inst, url))
    with app.app_context():
        admin_console.init_instance()
        from authserver.extensions import db
        from authserver.models import SigningKey

        keys = [dict(r._mapping) for r in db.session.execute(SigningKey.__table__.select())]
        tables = [t.name for t in db.metadata.sorted_tables]
        db.session.remove()
        db.engine.dispose()
    return {"url": url, "path": inst / "template.sqlite3", "keys": keys, "tables": tables}


def _fresh_db(template: dict, tmp_path: Path) -> str:
    if not PG_URL:
        target = tmp_path / "authserver.sqlite3"
        shutil.copyfile(template["path"], target)
        return f"sqlite:///{target}"
    engine = create_engine(PG_URL)
    with engine.begin() as conn:
        tables = ", ".join(template["tables"])
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        from authserver.models import SigningKey

        conn.execute(SigningKey.__table__.insert(), template["keys"])
    engine.dispose()
    return PG_URL


class _Dispatch:
    """A WSGI app whose target is set after the socket is bound (the port makes the issuer)."""

    def __init__(self) -> None:
        self.app = None

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


@pytest.fixture(autouse=True)
def _cheap_argon2(request: pytest.FixtureRequest) -> Iterator[None]:
    """Flow tests hash with cheap argon2id parameters (a production hash costs ~0.5 s on
    these machines and sign-ins are many); tests/unit/test_passwords.py checks the real
    defaults (RFC 9106's second recommended option) with the module's own hasher."""
    if request.node.path.name == "test_passwords.py":
        yield
        return
    from authserver.auth import passwords

    saved = passwords._default
    passwords._default = passwords.Hasher(time_cost=1, memory_cost=1024, parallelism=1)
    try:
        yield
    finally:
        passwords._default = saved


@pytest.fixture
def live_config() -> dict:
    """Extra configuration for `live` (none here); a test module overrides this fixture to
    opt in, e.g. tests/flows/test_invitations.py points SMTP_HOST/PORT at a real server."""
    return {}


@pytest.fixture
def live(template_db: dict, tmp_path: Path, live_config: dict) -> Iterator[dict]:
    """An app served over real HTTP on 127.0.0.1; yields {"url", "app"}."""

    dispatch = _Dispatch()
    server = make_server("127.0.0.1", 0, dispatch, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    app = _make_app({**base_config(tmp_path / "instance", _fresh_db(template_db, tmp_path), url),
                     **live_config})
    dispatch.app = app
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield {"url": url, "app": app}
    finally:
        server.shutdown()
        server.server_close()
        # The store's rule: every write a request made was committed by a unit of work.
        assert app.extensions["store.uncommitted"] == [], app.extensions["store.uncommitted"]
        with app.app_context():
            from authserver.extensions import db

            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def app(live: dict):
    return live["app"]


@pytest.fixture
def base_url(live: dict) -> str:
    return live["url"]


@pytest.fixture
def http() -> Iterator[requests.Session]:
    s = requests.Session()
    yield s
    s.close()


@pytest.fixture
def ctx(app):
    """An application context (for calling admin/storage functions directly)."""
    with app.app_context():
        yield app
