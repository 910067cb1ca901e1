"""Before/after of the token endpoint's hot-path changes, in one process, interleaved.

``python bench/ab_hotpath.py`` makes a throw-away SQLite instance, then times
client_credentials + client_secret_basic through the WSGI app (no sockets) in CPU time,
alternating between the code as it is ("after") and the same code with each change undone
("before"), so the machine's other load affects both alike. The changes (docs/performance.md):

- client lookup: one Core SELECT into a read-only snapshot (store.clients.find_client) instead of
  an ORM query on the session (store.clients.any_client);
- Flask-Limiter skipped on /token (a request filter);
- scope strings parsed once per process (smart.grammar.scope_set, an lru_cache).
"""

from __future__ import annotations

import base64
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hotpath import time_calls, wsgi_caller


def main() -> int:
    os.environ["AUTHSERVER_INSTANCE_PATH"] = tempfile.mkdtemp(prefix="authserver-ab-")
    os.environ.pop("AUTHSERVER_DATABASE_URL", None)
    from authserver import store
    from authserver.app import create_app
    from authserver.extensions import limiter
    from authserver.oauth.rfc6749 import client_credentials as backend
    from authserver.services import admin_console
    from authserver.smart import grammar

    app = create_app()
    with app.app_context():
        admin_console.init_instance()
        client = admin_console.create_client(name="ab", redirect_uris=[], scope="system/*.rs",
                                             auth_method="client_secret_basic",
                                             grant_types=["client_credentials"])
    basic = "Basic " + base64.b64encode(
        f"{client['client_id']}:{client['client_secret']}".encode()).decode()
    call = wsgi_caller(app, "/token", lambda i: "grant_type=client_credentials&scope=system%2F"
                       "*.rs", {"Authorization": basic})
    after = (store.clients.find_client, list(limiter._request_filters), backend.scope_set)
    before = (store.clients.any_client, [], grammar.scope_set.__wrapped__)  # uncached

    def use(variant: tuple) -> None:
        store.clients.find_client, limiter._request_filters, backend.scope_set = (
            variant[0], list(variant[1]), variant[2])

    time_calls(call, 300)
    rates: dict[str, list[float]] = {"before": [], "after": []}
    for _ in range(6):
        for name, variant in (("before", before), ("after", after)):
            use(variant)
            rates[name].append(time_calls(call, 500)[0])
    use(after)
    for name, values in rates.items():
        values.sort()
        median = values[len(values) // 2]
        print(f"{name:>6}: {median:6.1f} req per CPU second (median of {len(values)}), "
              f"{1000 / median:.2f} ms CPU per request")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
