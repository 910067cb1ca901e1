"""``authserver keys``: list and rotate the signing keys (never their private parts)."""

from __future__ import annotations

import click

from authserver.cli._shared import emit, with_app

__all__ = ["keys"]


@click.group()
def keys() -> None:
    """Signing keys.

    \b
    Examples:
      authserver keys list
      authserver keys rotate    # earlier public keys stay published while tokens live
    """


@keys.command("list")
@with_app
def keys_list() -> None:
    """List signing keys (never the private parts)."""
    from authserver.oauth import keystore

    emit({"keys": keystore.list_keys()})


@keys.command("rotate")
@with_app
def keys_rotate() -> None:
    """Make new active keys; earlier public keys stay published until their tokens expire."""
    from authserver.oauth import keystore

    emit({"active": keystore.rotate(), "keys": keystore.list_keys()})
