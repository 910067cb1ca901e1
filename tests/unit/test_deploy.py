"""deploy/: one trusted proxy hop, and the nginx in front of the app is that hop."""

from __future__ import annotations

import re
from pathlib import Path

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _env_example() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in (DEPLOY / "authserver.env.example").read_text()
             .splitlines() if line and not line.startswith("#"))
    return {k: v for k, v in pairs}


def test_deploy_env_trusts_exactly_one_proxy_hop():
    env = _env_example()
    assert env["AUTHSERVER_TRUST_PROXY"] == "1"
    # Rate-limit counters: the database unless the operator opts into Redis.
    assert "AUTHSERVER_RATELIMIT_STORAGE_URI" not in env


def test_deploy_env_example_is_a_valid_configuration(tmp_path):
    from authserver.config import load_config

    env = {**_env_example(), "AUTHSERVER_INSTANCE_PATH": str(tmp_path)}
    assert load_config(environ=env)["TRUST_PROXY"] == 1


def test_deploy_nginx_replaces_forwarded_for_and_sets_proto_and_host():
    conf = (DEPLOY / "nginx.conf").read_text()
    code = "\n".join(line.split("#", 1)[0] for line in conf.splitlines())
    assert re.search(r"proxy_set_header\s+X-Forwarded-For\s+\$remote_addr;", code)
    assert "$proxy_add_x_forwarded_for" not in code  # appending keeps what the client sent
    assert re.search(r"proxy_set_header\s+X-Forwarded-Proto\s+\$scheme;", code)
    assert re.search(r"proxy_set_header\s+X-Forwarded-Host\s+\$host;", code)
    # Every location inherits them: none sets headers of its own.
    for block in re.findall(r"location [^{]+\{([^}]*)\}", code):
        assert "proxy_set_header" not in block
    # ...and the app behind it is reachable through nginx only.
    unit = (DEPLOY / "authserver.service").read_text()
    assert "--host 127.0.0.1" in unit
