"""Dependency direction (DESIGN.md): pure leaves import no Flask/SQLAlchemy; views do no
persistence or crypto; models know nothing of flows."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "authserver"

PURE = ["smart", "keys.py", "auth/passwords.py", "auth/totp.py", "resource"]
FORBIDDEN_IN_PURE = ("flask", "sqlalchemy", "flask_sqlalchemy", "authserver.models",
                     "authserver.oauth", "authserver.extensions", "authserver.views")


def _imports(path: Path, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else ast.walk(tree)
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _files(entry: str) -> list[Path]:
    p = PKG / entry
    return sorted(p.rglob("*.py")) if p.is_dir() else ([p] if p.exists() else [])


@pytest.mark.parametrize("entry", PURE)
def test_pure_modules_import_no_framework(entry):
    for path in _files(entry):
        # resource/ may offer an optional Flask decorator importing flask lazily (in a function)
        bad = {n for n in _imports(path, top_level_only=entry == "resource")
               if n.startswith(FORBIDDEN_IN_PURE)}
        assert not bad, f"{path.relative_to(PKG)} imports {sorted(bad)}"


def test_views_do_no_persistence_or_crypto():
    for path in _files("views"):
        bad = {n for n in _imports(path, top_level_only=False)
               if n.startswith(("sqlalchemy", "cryptography", "authserver.models",
                                "authserver.extensions.db", "argon2", "pyotp"))}
        assert not bad, f"{path.relative_to(PKG)} imports {sorted(bad)}"
        assert "db.session" not in path.read_text(), path.name


def test_models_know_nothing_of_flows():
    for path in _files("models"):
        bad = {n for n in _imports(path, top_level_only=False)
               if n.startswith(("authserver.oauth", "authserver.views", "authlib", "flask"))}
        assert not bad, f"{path.relative_to(PKG)} imports {sorted(bad)}"


#: Outside store/ (and the models, which declare the tables), only the handle itself, the
#: application factory (SQLite pragmas on the engine) and the shared rate-limit storage (its
#: own table, one atomic upsert per hit on the engine) may reach the database.
DB_GLUE = {"extensions.py", "app.py", "ratelimit.py"}


def test_only_the_store_touches_the_database():
    """Persistence has one owner (issue 13): no db.session, no engine, outside store/."""
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG).as_posix()
        if rel.startswith(("store/", "models/")) or rel in DB_GLUE:
            continue
        text = path.read_text()
        assert "db.session" not in text and "db.engine" not in text, rel
        bad = {n for n in _imports(path, top_level_only=False)
               if n == "sqlalchemy.orm" or n.startswith("flask_sqlalchemy")}
        assert not bad, f"{rel} imports {sorted(bad)}"
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "authserver.extensions":
                assert "db" not in {a.name for a in node.names}, f"{rel} imports db"


def test_store_verbs_other_than_consume_never_commit():
    """The transaction rule: commits happen in store/_db.py (the unit of work and consume),
    in the two replay verdicts, which must outlive the request that found them, and in the
    revoked-jti INSERT (unique: a racing duplicate revocation is caught at its commit)."""
    allowed = {"_db.py": None, "authorization.py": 3}
    for path in sorted((PKG / "store").glob("*.py")):
        n = path.read_text().count(".commit()")
        if path.name in allowed:
            limit = allowed[path.name]
            assert limit is None or n <= limit, (path.name, n)
        else:
            assert n == 0, f"store/{path.name} commits {n} times"


def test_oauth_never_imports_views():
    for path in _files("oauth"):
        bad = {n for n in _imports(path, top_level_only=False)
               if n.startswith("authserver.views")}
        assert not bad, f"{path.relative_to(PKG)} imports {sorted(bad)}"


def _imports_package(path: Path, package: str) -> set[str]:
    """The imports of ``path`` (functions included) naming ``package`` or a module in it,
    ``from authserver import services`` counted."""
    parent, _, leaf = package.rpartition(".")
    names = {n for n in _imports(path, top_level_only=False)
             if n == package or n.startswith(package + ".")}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == parent and node.level == 0:
            names |= {f"{parent}.{a.name}" for a in node.names if a.name == leaf}
    return names


def test_oauth_never_imports_services():
    """DESIGN.md: oauth/ sits below the application services and never calls up into them."""
    for path in _files("oauth"):
        bad = _imports_package(path, "authserver.services")
        assert not bad, f"{path.relative_to(PKG)} imports {sorted(bad)}"


def test_services_never_import_views():
    """The application services serve views and the CLI; they know nothing of HTTP pages."""
    for path in _files("services"):
        bad = _imports_package(path, "authserver.views")
        assert not bad, f"{path.relative_to(PKG)} imports {sorted(bad)}"
