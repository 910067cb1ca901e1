"""The yardstick: a bare Flask + Flask-SQLAlchemy + Authlib client_credentials server, written
the way Authlib's documentation shows it (ORM client lookup, ``ClientCredentialsGrant``,
RFC 9068 ``JWTBearerTokenGenerator`` signing RS256 with a key loaded once per process).

bench/run.py serves it with gunicorn (2 sync workers, like ``authserver serve``) and drives
it with the same load generator, so "are we ahead of bare Flask + Authlib" is answered on
the same machine in the same minute. Configured by environment:
REFERENCE_DATABASE_URL, REFERENCE_JWKS (a private JWK Set file), REFERENCE_ISSUER.
"""

from __future__ import annotations

import json
import os

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.integrations.sqla_oauth2 import OAuth2ClientMixin
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from joserfc.jwk import KeySet

db = SQLAlchemy()


class Client(db.Model, OAuth2ClientMixin):
    __tablename__ = "oauth2_client"
    id = db.Column(db.Integer, primary_key=True)


class TokenGenerator(JWTBearerTokenGenerator):
    def __init__(self, issuer: str, jwks: dict) -> None:
        super().__init__(issuer=issuer, alg="RS256")
        self._jwks = KeySet.import_key_set(jwks)  # parsed once per process

    def get_jwks(self) -> KeySet:
        return self._jwks


def create_app() -> Flask:
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["REFERENCE_DATABASE_URL"]
    db.init_app(app)
    with open(os.environ["REFERENCE_JWKS"]) as fh:
        jwks = json.load(fh)
    server = AuthorizationServer(
        app, query_client=lambda cid: Client.query.filter_by(client_id=cid).first(),
        save_token=lambda token, request: None)
    server.register_grant(grants.ClientCredentialsGrant)
    server.register_token_generator(
        "default", TokenGenerator(os.environ.get("REFERENCE_ISSUER", "http://127.0.0.1"), jwks))

    @app.post("/token")
    def token():
        return server.create_token_response()

    return app


def setup(database_url: str) -> tuple[str, str]:
    """Create the table and one client_credentials client; returns (client_id, secret)."""
    import secrets

    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = database_url
    db.init_app(app)
    with app.app_context():
        db.create_all()
        client = Client(client_id=secrets.token_urlsafe(18),
                        client_secret=secrets.token_urlsafe(32))
        client.set_client_metadata({"grant_types": ["client_credentials"], "scope": "system/*.rs",
                                    "token_endpoint_auth_method": "client_secret_basic"})
        db.session.add(client)
        db.session.commit()
        return client.client_id, client.client_secret


if os.environ.get("REFERENCE_DATABASE_URL"):
    app = create_app()
