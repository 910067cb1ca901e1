"""authserver: a SMART-on-FHIR OAuth 2.0 / OpenID Connect authorization server."""

from __future__ import annotations

from typing import Any

__all__ = ["__version__", "create_app"]
__version__ = "0.1.0"


def create_app(test_config: dict[str, Any] | None = None):  # Flask imported lazily
    """Build the Flask application (see :mod:`authserver.app`)."""
    from authserver.app import create_app as _create_app

    return _create_app(test_config)
