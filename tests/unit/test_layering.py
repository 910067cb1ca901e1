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
