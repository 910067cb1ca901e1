"""An optional Flask decorator over :class:`TokenValidator` and the SMART scope check.

Flask is imported inside the functions, so the rest of the kit works without it::

    validator = TokenValidator(ISSUER, FHIR_BASE)

    @app.get("/fhir/<resource_type>/<rid>")
    @require_smart(validator, "r")
    def read(resource_type, rid):
        resource = store.get(resource_type, rid)
        if resource is None or not current_access().permits(resource):
            abort(404)
        ...

Without a usable token the view is not called: 401 with ``WWW-Authenticate: Bearer``
(RFC 6750 §3); with a token whose scopes do not allow the interaction on the type: 403 with
an OperationOutcome and ``error="insufficient_scope"``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from authserver.resource.access import Access
from authserver.resource.errors import (
    AuthorizationServerUnavailable,
    TokenInvalid,
    bearer_token,
    operation_outcome,
    www_authenticate,
)
from authserver.resource.validator import AccessToken, TokenValidator

__all__ = ["require_smart", "current_token", "current_access", "fhir_error"]

FHIR_JSON = "application/fhir+json"


def fhir_error(status: int, diagnostics: str, challenge: str | None = None) -> Any:
    """A Flask response: an OperationOutcome with ``status`` (and a Bearer challenge)."""
    from flask import Response

    resp = Response(json.dumps(operation_outcome(status, diagnostics)), status=status,
                    content_type=FHIR_JSON)
    if challenge:
        resp.headers["WWW-Authenticate"] = challenge
    resp.headers["Cache-Control"] = "no-store"
    return resp


def require_smart(validator: TokenValidator, interaction: str, resource_type: str | None = None,
                  *, type_arg: str = "resource_type", strict_search: bool = False,
                  realm: str | None = None) -> Callable:
    """Guard a view: a valid token whose scopes allow ``interaction`` on the resource type
    (``resource_type``, or the view argument named ``type_arg``). The view finds the token
    and the decision in :func:`current_token` / :func:`current_access`. Search parameters
    (query string and form) are passed to the decision."""

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            from flask import g, request

            try:
                token = validator.validate(bearer_token(request.headers.get("Authorization")))
            except TokenInvalid as exc:
                return fhir_error(401, exc.description,
                                  www_authenticate(realm, exc.error, exc.description))
            except AuthorizationServerUnavailable:
                return fhir_error(503, "The authorization server cannot be reached")
            rtype = resource_type or kwargs.get(type_arg)
            params = None
            if interaction in ("s", "search"):
                params = {k: request.values.getlist(k) for k in request.values}
            access = token.access(interaction, str(rtype), params, strict=strict_search)
            if not access.allowed:
                text = f"The granted scopes do not allow '{interaction}' on {rtype}"
                return fhir_error(403, text,
                                  www_authenticate(realm, "insufficient_scope", text))
            g.smart_token, g.smart_access = token, access
            return view(*args, **kwargs)

        return wrapper

    return decorator


def current_token() -> AccessToken:
    from flask import g

    return g.smart_token


def current_access() -> Access:
    from flask import g

    return g.smart_access
