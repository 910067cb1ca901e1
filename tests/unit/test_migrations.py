"""The migrations and the models agree (an autogenerate comparison finds no difference).

Runs on SQLite and, on the PostgreSQL leg, on PostgreSQL (the template database of the
session is migrated with `authserver init`'s code path).
"""

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from authserver.extensions import db
from authserver.paths import data_dir


def test_migrations_match_models(template_db):
    engine = create_engine(template_db["url"] if template_db["url"].startswith("postgresql")
                           else f"sqlite:///{template_db['path']}")
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, db.metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_migrations_reach_head(template_db):
    engine = create_engine(template_db["url"] if template_db["url"].startswith("postgresql")
                           else f"sqlite:///{template_db['path']}")
    try:
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()
    config = Config()
    config.set_main_option("script_location", str(data_dir("migrations")))
    assert current == ScriptDirectory.from_config(config).get_current_head()
