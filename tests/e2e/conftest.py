"""What the browser tests share: Debian's Chromium driven by Playwright (skipped with a
reason where it is missing), and WSGI apps served on 127.0.0.1 for it to visit."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu",
                 "--disable-component-update", "--no-first-run"]


class Served:
    """A WSGI app on 127.0.0.1 (ephemeral port); the app is made once the URL is known."""

    def __init__(self) -> None:
        self.app: Callable | None = None
        self.server = make_server("127.0.0.1", 0, self, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)

    def start(self, app: Callable) -> Served:
        self.app = app
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def browser() -> Iterator:
    if not CHROMIUM.exists():
        pytest.skip(f"no browser: Debian chromium is not installed at {CHROMIUM} "
                    "(.ci/install-browser installs it)")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="the playwright package is not installed")
    with sync_api.sync_playwright() as pw:
        try:
            chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                          headless=True)
        except sync_api.Error as exc:
            pytest.skip(f"no browser: {CHROMIUM} does not start ({str(exc)[:200]})")
        try:
            yield chromium
        finally:
            chromium.close()
