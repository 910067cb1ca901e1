"""Dependency direction (DESIGN.md): pure leaves import no Flask/SQLAlchemy; views do no
persistence or crypto; models know nothing of flows."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "authserver"

PURE = ["smart", "keys.py", "jose.py", "access_tokens.py", "auth/passwords.py", "auth/totp.py",
        "auth/devices.py", "auth/recovery_codes.py", "resource", "urls.py", "oauth/wire.py"]
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


#: demo/ holds programs that talk to the authorization server over HTTP only (DESIGN.md):
#: from authserver they use the resource-server kit, the SMART grammar and the JOSE helpers
#: (keys, or jose once the JOSE module has its own name), and paths for the shared templates.
DEMO_MAY_IMPORT = ("authserver.demo", "authserver.resource", "authserver.smart",
                   "authserver.keys", "authserver.jose", "authserver.paths")


def _is_within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_demo_talks_to_the_server_over_http_only():
    for path in _files("demo"):
        bad = {n for n in _imports(path, top_level_only=False)
               if n.startswith("authserver.") and not _is_within(n, DEMO_MAY_IMPORT)}
        bad |= {f"authserver.{a.name}" for node in ast.walk(ast.parse(path.read_text()))
                if isinstance(node, ast.ImportFrom) and node.module == "authserver"
                for a in node.names if not _is_within(f"authserver.{a.name}", DEMO_MAY_IMPORT)}
        assert not bad, f"{path.relative_to(PKG)} imports {sorted(bad)}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _module_level(body: list[ast.stmt]) -> list[ast.Import | ast.ImportFrom]:
    """The imports a module runs when it is imported: not those in functions, nor under
    ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            found += _module_level(node.orelse)
        else:
            for field in ("body", "orelse", "finalbody", "handlers"):
                found += _module_level(getattr(node, field, None) or [])
    return found


def _import_graph() -> dict[str, set[str]]:
    """module -> the authserver modules it imports at module level. ``from authserver.x
    import y`` is an edge to authserver.x, and to authserver.x.y when that is a module."""
    paths = {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in _module_level(ast.parse(path.read_text()).body):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
                continue
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0]
                base = f"{anchor}.{base}" if base else anchor
            targets |= {base} | {f"{base}.{a.name}" for a in node.names}
        graph[name] = {t for t in targets if t in paths and t != name}
    return graph


def _cycle_through(graph: dict[str, set[str]], start: str) -> list[str] | None:
    """The shortest import path from ``start`` back to itself, or None."""
    paths: dict[str, list[str]] = {start: [start]}
    queue = [start]
    while queue:
        here = queue.pop(0)
        for there in sorted(graph[here]):
            if there == start:
                return paths[here] + [start]
            if there not in paths:
                paths[there] = paths[here] + [there]
                queue.append(there)
    return None


def test_no_import_cycles():
    """Module-level imports among authserver modules form no cycle (a lazy import in a
    function is not counted: it runs after both modules are loaded)."""
    graph = _import_graph()
    cycles = set()
    for module in sorted(graph):
        if cycle := _cycle_through(graph, module):
            first = cycle.index(min(cycle[:-1]))  # one rotation per cycle
            cycles.add(tuple(cycle[first:-1] + cycle[:first + 1]))
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in sorted(cycles))


def test_the_cycle_check_sees_a_cycle(tmp_path, monkeypatch):
    """The check itself: two modules importing each other are reported, naming both."""
    pkg = tmp_path / "authserver"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from authserver.sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "b.py").write_text("import typing\nif typing.TYPE_CHECKING:\n    pass\n"
                                      "from .. import a\n")
    monkeypatch.setitem(globals(), "PKG", pkg)
    graph = _import_graph()
    assert graph["authserver.a"] == {"authserver.sub", "authserver.sub.b"}
    assert _cycle_through(graph, "authserver.a") == [
        "authserver.a", "authserver.sub.b", "authserver.a"]


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


#: Modules outside store/ and models/ that import ``authserver.models`` at run time, each
#: with its reason. ratelimit.py is Flask-Limiter's storage backend (``limits``' Storage
#: API), not a store verb: one atomic upsert per hit on its own table, on its own
#: autocommit connection outside every unit of work (it is DB glue for the same reason).
MODELS_AT_RUN_TIME = {"ratelimit.py": "the shared rate-limit counters' table (DatabaseStorage)"}


def _runtime_nodes(body: list[ast.stmt]) -> list[ast.AST]:
    """Every node of ``body`` (functions included) except those under ``if TYPE_CHECKING:``."""
    found: list[ast.AST] = []
    for node in body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            found += _runtime_nodes(node.orelse)
            continue
        found.append(node)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt):
                found += _runtime_nodes([child])
            else:
                found += list(ast.walk(child))
    return found


def _imports_models_at_run_time(path: Path) -> set[str]:
    """The imports of ``path`` outside ``if TYPE_CHECKING:`` that name ``authserver.models``
    or a module in it: absolute, ``from authserver import models``, or relative."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text()).body):
        if isinstance(node, ast.Import):
            names = {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0]
                base = f"{anchor}.{base}" if base else anchor
            names = {base} | {f"{base}.{a.name}" for a in node.names}
        else:
            continue
        found |= {n for n in names if _is_within(n, ("authserver.models",))}
    return found


def test_only_the_store_imports_the_models():
    """Persistence has one owner (issue 13): outside store/ and models/ the table classes
    are type hints only (under ``if TYPE_CHECKING:``); a row is made or queried by a store
    verb. The allowances are :data:`MODELS_AT_RUN_TIME`."""
    offenders = {}
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG).as_posix()
        if rel.startswith(("store/", "models/")) or rel in MODELS_AT_RUN_TIME:
            continue
        if found := _imports_models_at_run_time(path):
            offenders[rel] = sorted(found)
    assert not offenders, f"import authserver.models at run time: {offenders}"
    for rel in MODELS_AT_RUN_TIME:  # an allowance no longer needed is removed
        assert _imports_models_at_run_time(PKG / rel), f"{rel} no longer needs its allowance"


def test_the_models_check_sees_every_spelling(tmp_path, monkeypatch):
    """The check itself: absolute, ``from authserver import models``, relative and lazy
    imports are seen; one under ``if TYPE_CHECKING:`` is not."""
    pkg = tmp_path / "authserver"
    (pkg / "sub").mkdir(parents=True)
    for name in ("__init__.py", "sub/__init__.py", "models.py"):
        (pkg / name).write_text("")
    cases = {"a.py": "from authserver.models import User\n",
             "b.py": "from authserver import models\n",
             "sub/c.py": "def f():\n    from ..models import User\n",
             "d.py": "import authserver.models.users\n",
             "e.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                     "    from authserver.models import User\n"}
    for name, text in cases.items():
        (pkg / name).write_text(text)
    monkeypatch.setitem(globals(), "PKG", pkg)
    seen = {name for name in cases if _imports_models_at_run_time(pkg / name)}
    assert seen == {"a.py", "b.py", "sub/c.py", "d.py"}
