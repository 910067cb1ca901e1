"""The ``authserver`` command. Every create/add command prints one JSON object on stdout;
errors are one line on stderr and a non-zero exit.

This package owns the click group and :func:`main` (the ``authserver`` console script);
each command group lives in a module of its own: :mod:`~authserver.cli.serve` (init, serve,
export-well-known), :mod:`~authserver.cli.users`, :mod:`~authserver.cli.clients` (client,
resource-server, registration-token), :mod:`~authserver.cli.launch` (launch, patient),
:mod:`~authserver.cli.keys`, :mod:`~authserver.cli.policy` and :mod:`~authserver.cli.demo`
(demo, fhir-demo; its demo data is :mod:`~authserver.cli.seed`).
"""

from __future__ import annotations

import os

import click

from authserver.cli import clients, demo, keys, launch, policy, serve, users

__all__ = ["main", "cli"]


@click.group()
@click.version_option(package_name="smart-authserver")
def cli() -> None:
    """SMART-on-FHIR authorization server.

    The instance (database, secrets, authserver.toml) is AUTHSERVER_INSTANCE_PATH, else
    ./instance; commands other than init, serve and demo refuse to make a new one.

    \b
    Examples:
      authserver init
      authserver user create alice --role patient --password-stdin < password.txt
      authserver client list
      authserver COMMAND --help
    """


#: Every command and group, by module (``authserver --help`` lists them by name).
COMMANDS: tuple[click.Command, ...] = (
    serve.init, serve.serve, serve.export_well_known,
    demo.demo, demo.fhir_demo,
    users.user, users.invite,
    clients.client, clients.resource_server, clients.registration_token,
    launch.launch, launch.patient,
    keys.keys,
    policy.policy,
)
for _command in COMMANDS:
    cli.add_command(_command)


def main() -> None:
    os.environ.setdefault("AUTHSERVER_CLI", "1")
    cli(prog_name="authserver")
