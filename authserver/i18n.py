"""The pages' language: English and Spanish, with Flask-Babel.

The language is, in order: the ``lang`` query parameter (a link of the switcher every page
shows; remembered in the ``lang`` cookie for a year), that cookie, the browser's
``Accept-Language``, English. Catalogues are ``translations/<lang>/LC_MESSAGES/messages.po``
at the top of the repository (compiled ``.mo`` beside them; ``make translations`` extracts,
updates and compiles them, and a test fails when a ``.mo`` is older than its ``.po``).

Pure modules (``smart/consent.py``) mark their wording with a no-op ``N_`` and take a
``gettext`` function, so the scope sentences are translated too without importing Flask.
"""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Flask, request
from flask_babel import Babel, get_locale, gettext

from authserver.paths import data_dir

__all__ = ["LANGUAGES", "init_app", "current_language", "gettext"]

#: Language code -> its name in that language (what the switcher shows).
LANGUAGES = {"en": "English", "es": "Español"}
_COOKIE = "lang"
_YEAR = 365 * 24 * 3600


def _asked() -> str | None:
    value = request.args.get(_COOKIE)
    return value if value in LANGUAGES else None


def select_locale() -> str:
    return (_asked() or (request.cookies.get(_COOKIE) if request.cookies.get(_COOKIE)
                         in LANGUAGES else None)
            or request.accept_languages.best_match(LANGUAGES) or "en")


def current_language() -> str:
    return str(get_locale() or "en")


def _switch_url(code: str) -> str:
    """This page in language ``code``: the same path and query, ``lang`` replaced."""
    args = [(k, v) for k, v in request.args.items(multi=True) if k != _COOKIE]
    return request.path + "?" + urlencode([*args, (_COOKIE, code)])


def _remember(response):  # a Flask after_request hook
    """Pages only (the JSON endpoints speak no language and must not touch cookies): keep
    a language chosen with the switcher, and tell caches the page depends on it."""
    if response.mimetype != "text/html":
        return response
    asked = _asked()
    if asked is not None:
        response.set_cookie(_COOKIE, asked, max_age=_YEAR, samesite="Lax",
                            secure=request.is_secure, httponly=True)
    response.vary.add("Accept-Language")
    response.vary.add("Cookie")
    return response


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES", str(data_dir("translations")))
    Babel(app, locale_selector=select_locale)
    app.after_request(_remember)
    app.context_processor(lambda: {"languages": LANGUAGES, "lang_url": _switch_url,
                                   "current_language": current_language})
