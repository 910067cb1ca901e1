"""gunicorn target: ``gunicorn authserver.wsgi:app``."""

from authserver.app import create_app

app = create_app()
