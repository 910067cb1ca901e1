"""A short description of a browser from its User-Agent ("Chrome on Linux", "Safari on
iPhone"): what the account page says of each signed-in session.

Pure (standard library only). A handful of ordered substring rules for the browsers and
systems people sign in with, not a User-Agent database: the page names a browser and a
system, never a version, and ua-parser's ~1 MB of rules would buy nothing it shows. The
User-Agent is the browser's own claim and anyone can send any: the description is a hint
for the person ("is that me?"), never evidence, and the raw text is never shown.
"""

from __future__ import annotations

from authserver.smart.words import N_, Words

__all__ = ["describe_device", "UNKNOWN"]

#: What an empty or unrecognised User-Agent reads as (a page translates the description).
UNKNOWN = Words(N_("Unknown device"))

#: (marker, browser), first match wins. The order matters: Edge, Opera and Samsung
#: Internet also say "Chrome/", Chrome says "Safari/", and the iOS browsers are all
#: Safari inside but name themselves (CriOS, FxiOS, EdgiOS).
_BROWSERS: tuple[tuple[str, str], ...] = (
    ("Edg/", "Edge"), ("EdgA/", "Edge"), ("EdgiOS/", "Edge"),
    ("OPR/", "Opera"), ("OPiOS/", "Opera"), ("Opera/", "Opera"),
    ("SamsungBrowser/", "Samsung Internet"),
    ("Firefox/", "Firefox"), ("FxiOS/", "Firefox"),
    ("CriOS/", "Chrome"), ("HeadlessChrome/", "Chrome"), ("Chromium/", "Chromium"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
)

#: (marker, system), first match wins: iPhones say "like Mac OS X", Android says "Linux".
_SYSTEMS: tuple[tuple[str, str], ...] = (
    ("iPhone", "iPhone"), ("iPad", "iPad"), ("iPod", "iPod"),
    ("Android", "Android"), ("CrOS", "ChromeOS"),
    ("Windows", "Windows"), ("Macintosh", "macOS"), ("Mac OS X", "macOS"),
    ("Linux", "Linux"),
)


def _first(user_agent: str, rules: tuple[tuple[str, str], ...]) -> str | None:
    return next((name for marker, name in rules if marker in user_agent), None)


def describe_device(user_agent: str | None) -> str:
    """"<browser> on <system>", "<browser>", "A browser on <system>", or :data:`UNKNOWN`
    (:class:`~authserver.smart.words.Words` but for the bare browser's name)."""
    if not isinstance(user_agent, str) or not user_agent.strip():
        return UNKNOWN
    browser, system = _first(user_agent, _BROWSERS), _first(user_agent, _SYSTEMS)
    if browser and system:
        return Words(N_("{browser} on {system}"), browser=browser, system=system)
    if browser:
        return browser
    return Words(N_("A browser on {system}"), system=system) if system else UNKNOWN
