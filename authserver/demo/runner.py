"""``authserver demo``: init, seed, then serve everything a person needs to click through.

Three servers: the authorization server under gunicorn (``authserver serve``, a child
process), the demo FHIR server (``authserver fhir-demo``, a child process, when the FHIR base
is on this machine and the command exists) and the demo app (:mod:`authserver.demo.app`,
served by this process on the auth server's port + 2). Ctrl-C (or SIGTERM) stops all three.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import Any
from urllib.parse import urlsplit

import click
import requests
from flask import Flask

from authserver.oauth.registration import is_loopback_host

__all__ = ["run_demo", "DEMO_APP_PORT_OFFSET", "STARTUP_SECONDS"]

#: The demo app listens on the authorization server's port + this.
DEMO_APP_PORT_OFFSET = 2
#: How long to wait for the authorization server to answer /health.
STARTUP_SECONDS = 30.0


def _child(args: list[str]) -> subprocess.Popen:
    """``authserver ARGS...`` as a child process (same interpreter, same environment)."""
    return subprocess.Popen([sys.executable, "-m", "authserver.cli", *args])


def _wait_healthy(url: str, child: subprocess.Popen) -> bool:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if child.poll() is not None:
            return False
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.3)
    return False


def _stop(children: list[subprocess.Popen]) -> None:
    for child in children:
        if child.poll() is None:
            child.terminate()
    for child in children:
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()


def _fhir_server(issuer: str, fhir_base: str) -> tuple[list[str] | None, str]:
    """The ``fhir-demo`` arguments to start, or None, and a line saying what was done."""
    from authserver.cli import cli

    parts = urlsplit(fhir_base)
    if not is_loopback_host(parts.hostname):
        return None, f"FHIR server:           {fhir_base} (yours: not started by the demo)"
    if "fhir-demo" not in cli.commands:  # type: ignore[attr-defined]
        return None, ("FHIR server:           not started ('authserver fhir-demo' is not "
                      "available); the demo app shows its tokens only")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    args = ["fhir-demo", "--host", parts.hostname or "127.0.0.1", "--port", str(port),
            "--issuer", issuer, "--fhir-base", fhir_base]
    return args, f"FHIR server:           {fhir_base}  (demo data: patients p1, p2, p3)"


def _banner(info: dict[str, Any], demo_url: str, issuer: str, fhir_line: str,
            ehr_link: str, lifetime: int) -> str:
    totp = info["totp"]
    return "\n".join([
        "",
        "authserver demo is running. Open the demo app and click \"Launch\":",
        "",
        f"    {demo_url}/",
        "",
        f"  Sign in as the patient:  {info['patient']} / {info['password']}"
        "   (Patient/p1, \"Example, Alice\")",
        f"  Clinician (with TOTP):   {info['clinician']} / {info['password']}"
        "   (Practitioner/pr1)",
        f"      TOTP secret:         {totp['secret']}",
        f"      otpauth URI:         {totp['otpauth_uri']}",
        f"  EHR launch of the demo app (single use, valid {lifetime // 60} minutes):",
        f"      {ehr_link}",
        "",
        f"  Authorization server:  {issuer}   (discovery: {issuer}/.well-known/"
        "smart-configuration)",
        f"  {fhir_line}",
        f"  Demo app client_id:    {info['client']['client_id']}",
        "",
        "Stop with Ctrl-C.",
        "",
    ])


def run_demo(app: Flask, host: str, port: int) -> None:
    """Initialise and seed the instance, start the three servers, print where to click."""
    from werkzeug.serving import make_server

    from authserver.demo.app import create_demo_app
    from authserver.demo.seed import ehr_launch_link, seed
    from authserver.services import admin_console

    issuer = app.config["ISSUER"]
    fhir_base = app.config["FHIR_BASE_URL"]
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if urlsplit(issuer).port != port:
        click.echo(f"warning: AUTHSERVER_ISSUER is {issuer} but the server listens on port "
                   f"{port}; set AUTHSERVER_ISSUER=http://{local}:{port}", err=True)
    demo_port = port + DEMO_APP_PORT_OFFSET
    demo_url = f"http://{local}:{demo_port}"
    with app.app_context():
        try:
            admin_console.init_instance()
            info = seed(demo_url)
            ehr_link = ehr_launch_link(info["client"]["client_id"], demo_url)
        except admin_console.AdminError as exc:
            raise click.ClickException(str(exc)) from None
    demo_app = create_demo_app(issuer=issuer, fhir_base=fhir_base,
                               client_id=info["client"]["client_id"], base_url=demo_url)
    try:
        demo_server = make_server(host, demo_port, demo_app, threaded=True)
    except OSError as exc:
        raise click.ClickException(f"demo app: cannot listen on {host}:{demo_port} "
                                   f"({exc.strerror})") from None

    children: list[subprocess.Popen] = []

    def _terminate(signum: int, frame: Any) -> None:  # SIGTERM: stop like Ctrl-C
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        auth = _child(["serve", "--host", host, "--port", str(port)])
        children.append(auth)
        fhir_args, fhir_line = _fhir_server(issuer, fhir_base)
        if fhir_args:
            children.append(_child(fhir_args))
        if not _wait_healthy(f"http://{local}:{port}/health", auth):
            raise click.ClickException(
                f"the authorization server did not start on {host}:{port} (see above)")
        click.echo(_banner(info, demo_url, issuer, fhir_line, ehr_link,
                           app.config["LAUNCH_LIFETIME"]))
        demo_server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopping the demo", err=True)
    finally:
        signal.signal(signal.SIGTERM, previous)
        demo_server.server_close()
        _stop(children)
