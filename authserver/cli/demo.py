"""``authserver demo`` and ``authserver fhir-demo``: the demo, run from the authorization
server's side.

``authserver demo``: init, seed (:mod:`authserver.cli.seed`), then serve everything a person
needs to click through. Three servers: the authorization server under gunicorn
(``authserver serve``, a child process), the demo FHIR server (``authserver fhir-demo``, a
child process, when the FHIR base is on this machine and the command exists) and the demo app
(:mod:`authserver.demo.app`, served by this process on the auth server's port + 2). Ctrl-C (or
SIGTERM) stops all three.

``authserver fhir-demo``: the demo FHIR server (:mod:`authserver.demo.fhir`) on its own.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click

from authserver.cli._shared import CliError, load_app
from authserver.urls import is_loopback_host

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["demo", "fhir_demo", "run_demo", "DEMO_APP_PORT_OFFSET", "STARTUP_SECONDS"]

#: The demo app listens on the authorization server's port + this.
DEMO_APP_PORT_OFFSET = 2
#: How long to wait for the authorization server to answer /health.
STARTUP_SECONDS = 30.0


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="The address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int,
              help="The authorization server's port (the demo app listens on this + 2).")
@click.pass_context
def demo(ctx: click.Context, host: str, port: int) -> None:
    """init + seed demo users, apps and patients + serve (with the demo FHIR server)."""
    root = ctx.find_root().command
    with_fhir = isinstance(root, click.Group) and root.get_command(ctx, "fhir-demo") is not None
    app = load_app()
    run_demo(app, host, port, fhir_demo=with_fhir)


@click.command("fhir-demo")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="The address to listen on.")
@click.option("--port", default=8001, show_default=True, type=int,
              help="The port to listen on.")
@click.option("--issuer", envvar="AUTHSERVER_ISSUER", default="http://127.0.0.1:8000",
              show_default=True, help="The authorization server whose tokens are accepted.")
@click.option("--fhir-base", default=None,
              help="This server's public FHIR base URL (the tokens' aud) "
                   "[default: http://HOST:PORT/fhir]")
@click.option("--introspect-client-id", envvar="AUTHSERVER_FHIR_DEMO_CLIENT_ID", default=None,
              help="Resource-server credentials: check every token at /introspect.")
@click.option("--introspect-client-secret", envvar="AUTHSERVER_FHIR_DEMO_CLIENT_SECRET",
              default=None, help="(prefer the AUTHSERVER_FHIR_DEMO_CLIENT_SECRET variable)")
def fhir_demo(host: str, port: int, issuer: str, fhir_base: str | None,
              introspect_client_id: str | None, introspect_client_secret: str | None) -> None:
    """Serve the demo FHIR server (synthetic patients p1, p2, p3) on its own."""
    import logging

    from authserver.demo.fhir import serve

    if bool(introspect_client_id) != bool(introspect_client_secret):
        raise CliError("introspection needs both a client id and a client secret")
    introspection = None
    if introspect_client_id:
        introspection = {"client_id": introspect_client_id,
                         "client_secret": introspect_client_secret}
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    serve(host, port, issuer, fhir_base or f"http://{host}:{port}/fhir", introspection)


def _child(args: list[str]) -> subprocess.Popen:
    """``authserver ARGS...`` as a child process (same interpreter, same environment)."""
    return subprocess.Popen([sys.executable, "-m", "authserver.cli", *args])


def _wait_healthy(url: str, child: subprocess.Popen) -> bool:
    import requests

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


def _fhir_server(issuer: str, fhir_base: str, available: bool) -> tuple[list[str] | None, str]:
    """The ``fhir-demo`` arguments to start, or None, and a line saying what was done."""
    parts = urlsplit(fhir_base)
    if not is_loopback_host(parts.hostname):
        return None, f"FHIR server:           {fhir_base} (yours: not started by the demo)"
    if not available:
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


def _seed_instance(app: Flask, demo_url: str) -> tuple[dict[str, Any], str]:
    """init + seed inside ``app``: what the banner prints, and a fresh EHR launch link."""
    from authserver.cli.seed import ehr_launch_link, seed
    from authserver.services import admin_console

    with app.app_context():
        try:
            admin_console.init_instance()
            info = seed(demo_url)
            return info, ehr_launch_link(info["client"]["client_id"], demo_url)
        except admin_console.AdminError as exc:
            raise click.ClickException(str(exc)) from None


def _demo_app_server(app: Flask, host: str, port: int, client_id: str, demo_url: str) -> Any:
    """The demo app's WSGI server, bound (not yet serving) on ``host:port``."""
    from werkzeug.serving import make_server

    from authserver.demo.app import create_demo_app

    demo_app = create_demo_app(issuer=app.config["ISSUER"], fhir_base=app.config["FHIR_BASE_URL"],
                               client_id=client_id, base_url=demo_url)
    try:
        return make_server(host, port, demo_app, threaded=True)
    except OSError as exc:
        raise click.ClickException(f"demo app: cannot listen on {host}:{port} "
                                   f"({exc.strerror})") from None


def _terminate(signum: int, frame: Any) -> None:  # SIGTERM: stop like Ctrl-C
    raise KeyboardInterrupt


def run_demo(app: Flask, host: str, port: int, fhir_demo: bool = True) -> None:
    """Initialise and seed the instance, start the three servers, print where to click.

    ``fhir_demo``: whether the ``authserver fhir-demo`` command is there to start."""
    issuer, fhir_base = app.config["ISSUER"], app.config["FHIR_BASE_URL"]
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if urlsplit(issuer).port != port:
        click.echo(f"warning: AUTHSERVER_ISSUER is {issuer} but the server listens on port "
                   f"{port}; set AUTHSERVER_ISSUER=http://{local}:{port}", err=True)
    demo_port = port + DEMO_APP_PORT_OFFSET
    demo_url = f"http://{local}:{demo_port}"
    info, ehr_link = _seed_instance(app, demo_url)
    demo_server = _demo_app_server(app, host, demo_port, info["client"]["client_id"], demo_url)
    children: list[subprocess.Popen] = []
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        auth = _child(["serve", "--host", host, "--port", str(port)])
        children.append(auth)
        fhir_args, fhir_line = _fhir_server(issuer, fhir_base, fhir_demo)
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
