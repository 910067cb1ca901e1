"""Profile POST /token in-process: the WSGI app called directly (no sockets, no gunicorn),
under pyinstrument, so the profile shows only our code, Flask, Authlib and SQLAlchemy.

Used by bench/run.py; also runnable on its own against an instance made by run.py.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from typing import Any

__all__ = ["wsgi_caller", "profile_calls", "time_calls", "cpu_sign_rate", "by_package"]


def wsgi_caller(app: Any, path: str, body_for: Callable[[int], str],
                headers: dict[str, str]) -> Callable[[int], int]:
    """A function ``call(i)`` that runs one form POST through ``app`` and returns the status."""
    base = {
        "REQUEST_METHOD": "POST", "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1", "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "wsgi.url_scheme": "http", "wsgi.errors": io.StringIO(), "wsgi.multithread": False,
        "wsgi.multiprocess": True, "wsgi.run_once": False, "wsgi.version": (1, 0),
        "HTTP_HOST": "127.0.0.1:8000",
    }
    for name, value in headers.items():
        base["HTTP_" + name.upper().replace("-", "_")] = value

    def call(i: int) -> int:
        raw = body_for(i).encode("ascii")
        environ = dict(base, CONTENT_LENGTH=str(len(raw)), **{"wsgi.input": io.BytesIO(raw)})
        status: list[str] = []
        out = app(environ, lambda s, h, exc_info=None: status.append(s))
        try:
            for _ in out:
                pass
        finally:
            close = getattr(out, "close", None)
            if close:
                close()
        return int(status[0][:3])

    return call


def time_calls(call: Callable[[int], int], n: int) -> tuple[float, int]:
    """(calls per CPU second of this process, number of non-200 answers) for n calls on one
    thread. CPU time, not wall time: other programs on the machine do not skew it."""
    bad = 0
    start = time.process_time()
    for i in range(n):
        if call(i) != 200:
            bad += 1
    return n / (time.process_time() - start), bad


def cpu_sign_rate(sign: Callable[[], Any], seconds: float) -> float:
    """Calls of ``sign`` per CPU second of this process."""
    sign()
    n, start = 0, time.process_time()
    while time.process_time() - start < seconds:
        sign()
        n += 1
    return n / (time.process_time() - start)


def profile_calls(call: Callable[[int], int], n: int, top: int = 10_000) -> tuple[str, list]:
    """Run n calls under pyinstrument; returns (text report, [(share, function), ...])."""
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0002)
    profiler.start()
    for i in range(n):
        call(i)
    session = profiler.stop()
    text = profiler.output_text(unicode=False, color=False, show_all=False)
    totals: dict[str, float] = {}

    def walk(frame: Any) -> None:
        # Self time per function (file:function), summed over the whole call tree; the
        # synthetic "[self]" frames are already counted in their parent's total_self_time.
        if frame.is_synthetic:
            return
        key = f"{frame.function} ({_short(frame.file_path or '')}:{frame.line_no})"
        totals[key] = totals.get(key, 0.0) + frame.total_self_time
        for child in frame.children:
            walk(child)

    root = session.root_frame()
    if root is not None:
        walk(root)
    duration = session.duration or 1.0
    ranked = sorted(((t / duration, k) for k, t in totals.items()), reverse=True)[:top]
    return text, ranked


def by_package(ranked_all: list[tuple[float, str]]) -> list[tuple[float, str]]:
    """Fold (share, 'function (path:line)') rows into shares per package."""
    out: dict[str, float] = {}
    for share, name in ranked_all:
        where = name.rsplit("(", 1)[-1]
        if name.startswith("RSAPrivateKey.sign") or name.startswith("ECPrivateKey.sign"):
            pkg = "signing (cryptography)"
        elif where.startswith("<built-in>"):
            pkg = "other C code"
        elif where.startswith("authserver/"):
            pkg = "authserver"
        elif where.startswith("3.") or where.startswith("python"):
            pkg = "stdlib"
        else:
            pkg = where.split("/", 1)[0]
        out[pkg] = out.get(pkg, 0.0) + share
    return sorted(((v, k) for k, v in out.items()), reverse=True)


def _short(path: str) -> str:
    for marker in ("site-packages/", "/authserver/", "/lib/python"):
        if marker in path:
            return path.split(marker, 1)[1] if marker != "/authserver/" else (
                "authserver/" + path.split(marker, 1)[1])
    return path
