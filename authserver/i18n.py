"""The pages' language: English and Spanish, with Flask-Babel.

The language is, in order: the ``lang`` query parameter (a link of the switcher every page
shows; remembered in the ``lang`` cookie for a year), that cookie, the browser's
``Accept-Language``, English. Catalogues are ``translations/<lang>/LC_MESSAGES/messages.po``
at the top of the repository (compiled ``.mo`` beside them; ``make translations`` extracts,
updates and compiles them, and a test fails when a ``.mo`` is older than its ``.po``).

Pure modules (``smart/consent.py``) mark their wording with a no-op ``N_`` and take a
``gettext`` function, so the scope sentences are translated too without importing Flask;
others say what went wrong as :class:`~authserver.smart.words.Words`, which a page shows through
:func:`translate`. Outside a request (the command line) everything is English.

Dates are written by :func:`format_when` and :func:`format_day` (the ``when`` and ``day``
template filters) in the reader's language, in UTC; ``static/local-time.js`` moves the
``<time>`` ones to the browser's zone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

from babel.dates import format_date, format_datetime
from flask import Flask, has_request_context, request
from flask_babel import Babel, get_locale, gettext, lazy_gettext, ngettext

from authserver.paths import data_dir
from authserver.smart.words import N_, Words

__all__ = ["LANGUAGES", "init_app", "current_language", "gettext", "ngettext", "lazy_gettext",
           "translate", "said", "format_when", "format_day", "as_role"]

#: Language code -> its name in that language (what the switcher shows).
LANGUAGES = {"en": "English", "es": "Español"}
_COOKIE = "lang"
_YEAR = 365 * 24 * 3600


def _asked() -> str | None:
    value = request.args.get(_COOKIE)
    return value if value in LANGUAGES else None


def select_locale() -> str:
    if not has_request_context():  # the command line, a mail thread: English
        return "en"
    return (_asked() or (request.cookies.get(_COOKIE) if request.cookies.get(_COOKIE)
                         in LANGUAGES else None)
            or request.accept_languages.best_match(LANGUAGES) or "en")


def current_language() -> str:
    return str(get_locale() or "en")


def translate(text: str) -> str:
    """``text`` in the reader's language when it is :class:`~authserver.smart.words.Words`
    (a message made where the language was not known); any other text as it is."""
    return text.translated(gettext) if isinstance(text, Words) else text


def said(exc: BaseException) -> str:
    """What an exception says, for a page: :func:`translate` of its message."""
    message = exc.args[0] if exc.args else None
    return translate(message) if isinstance(message, str) else str(exc)


#: A person's role in a sentence: "invited you as a clinician" (the ``as_role`` filter).
_AS_ROLE = {"patient": N_("as a patient"), "clinician": N_("as a clinician"),
            "admin": N_("as an administrator"), "developer": N_("as a developer")}


def as_role(role: object) -> str:
    """"as a clinician", in the reader's language (an unknown role as it is)."""
    words = _AS_ROLE.get(str(role))
    return gettext(words) if words else f"as {role}"


#: CLDR patterns of a time and of a day, per language (others: the locale's "long" date).
#: English keeps ISO 8601's numbers ("2026-12-03 10:55 UTC"), as the server always wrote it.
_WHEN = {"en": "yyyy-MM-dd HH:mm", "es": "d MMM y, HH:mm"}
_DAY = {"en": "d MMMM y"}


def _utc(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def format_when(ts: int | None) -> str:
    """A moment in UTC, month names in the reader's language: "3 dic 2026, 10:55 UTC"."""
    if not ts:
        return "—"
    code = current_language()
    return format_datetime(_utc(ts), _WHEN.get(code, "medium"), tzinfo=UTC,
                           locale=code) + " UTC"


def format_day(ts: int | None) -> str:
    """A date as people write it, in UTC: "3 December 2026", "3 de diciembre de 2026"."""
    if not ts:
        return "—"
    code = current_language()
    return format_date(_utc(ts).date(), _DAY.get(code, "long"), locale=code)


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
    app.add_template_filter(as_role, "as_role")
    app.context_processor(lambda: {"languages": LANGUAGES, "lang_url": _switch_url,
                                   "current_language": current_language})
