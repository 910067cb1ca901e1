"""PKCE, S256 only, for every client (RFC 7636 as profiled by SMART App Launch 2.2).

SMART: "Authorization servers SHALL ensure that the code_verifier is present and valid
when the code is exchanged for an access token" and "SHALL NOT support the plain method".
https://hl7.org/fhir/smart-app-launch/app-launch.html#considerations-for-pkce-support

Authlib's :class:`CodeChallenge` allows ``plain``, defaults a missing method to ``plain``
and forces a challenge only on public clients: this subclass closes all three.
"""

from __future__ import annotations

from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc7636 import CodeChallenge

from authserver.smart.configuration import Features

__all__ = ["S256CodeChallenge"]


class S256CodeChallenge(CodeChallenge):
    FEATURES = Features(code_challenge_methods={"S256"})
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def __init__(self) -> None:
        super().__init__(required=True)

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        # SMART: code_challenge and code_challenge_method are REQUIRED of every client.
        if not data.get("code_challenge"):
            raise InvalidRequestError("Missing 'code_challenge'")
        method = data.get("code_challenge_method")
        if not method:
            raise InvalidRequestError("Missing 'code_challenge_method'")
        if method != "S256":
            raise InvalidRequestError("Unsupported 'code_challenge_method': only 'S256'")
        return super().validate_code_challenge(grant, redirect_uri)

    def validate_code_verifier(self, grant, result):
        # Every code was issued with a challenge, so every redemption needs its verifier,
        # whatever the client's authentication.
        if not grant.request.form.get("code_verifier"):
            raise InvalidRequestError("Missing 'code_verifier'")
        return super().validate_code_verifier(grant, result)
