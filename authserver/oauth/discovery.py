"""The discovery documents of this running server (features come from ``server.py``)."""

from __future__ import annotations

from typing import Any

from flask import current_app

from authserver.oauth import keystore
from authserver.oauth import server as oauth_server
from authserver.smart import configuration

__all__ = ["smart_document", "openid_document", "jwks_document"]


def smart_document() -> dict[str, Any]:
    return configuration.smart_configuration(
        current_app.config["ISSUER"], oauth_server.current().features,
        access_token_algs=[current_app.config["SIGNING_ALG"]])


def openid_document() -> dict[str, Any]:
    return configuration.openid_configuration(
        current_app.config["ISSUER"], oauth_server.current().features,
        id_token_algs=[keystore.ID_TOKEN_ALG])


def jwks_document() -> dict[str, Any]:
    return keystore.public_jwks()
