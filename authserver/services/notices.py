"""Notices by e-mail of a change to how a person signs in: what changed, when, and what to
do if it was not them. They go to the user's e-mail address (none: nothing is sent), in the
language of the page that made the change, through :func:`authserver.services.mail.send_later`
(nothing when mail is not configured). A notice never holds a code, a secret or a link
that signs anyone in.

The password's notices come from :mod:`authserver.services.passwords`; two-step sign-in's
(turned on, authenticator replaced, turned off, new recovery codes, a recovery code used to
sign in) and the account page's other changes (the other sign-ins ended, an app's access
narrowed or revoked) from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import current_app

from authserver import clock, store
from authserver.i18n import format_when, gettext, lazy_gettext, ngettext
from authserver.services import mail

if TYPE_CHECKING:
    from authserver.models import User

__all__ = ["hello", "send", "two_step_changed", "recovery_code_used", "access_changed"]


def hello(user: User) -> str:
    name = " ".join((user.name or "").split())
    return gettext("Hello %(name)s,", name=name) if name else gettext("Hello,")


def send(user: User, subject: str, changed: str, advice: list[str], what: str) -> None:
    """Mail ``user`` a notice: ``changed`` is its first sentence, a template of ``service``,
    ``username``, ``issuer`` and ``when`` (now); ``advice`` the lines after "if this was
    you"; ``what`` names it in a log line."""
    if not user.email:
        return
    conf = current_app.config
    t = clock.now()
    lines = [hello(user), "",
             changed % {"service": conf["TOTP_ISSUER"], "username": user.username,
                        "issuer": conf["ISSUER"], "when": format_when(t)}, "",
             gettext("If this was you, there is nothing more to do."), "", *advice]
    mail.send_later(mail.message(str(user.email), subject, lines, t), what)


def _urls() -> dict[str, str]:
    issuer = current_app.config["ISSUER"]
    return {"url": f"{issuer}/forgot", "account": f"{issuer}/account"}


#: (subject, first sentence) of each change made on the account page.
_CHANGED = {
    "on": (lazy_gettext("Two-step sign-in was turned on"),
           lazy_gettext("Two-step sign-in was turned on for your %(service)s account "
                        "\"%(username)s\" (%(issuer)s) on %(when)s, on your account page. "
                        "Signing in now also asks for a code from an authenticator app.")),
    "replaced": (lazy_gettext("Your authenticator app was replaced"),
                 lazy_gettext("The authenticator app of your %(service)s account "
                              "\"%(username)s\" (%(issuer)s) was replaced on %(when)s, on "
                              "your account page. Codes from the old app no longer work.")),
    "off": (lazy_gettext("Two-step sign-in was turned off"),
            lazy_gettext("Two-step sign-in was turned off for your %(service)s account "
                         "\"%(username)s\" (%(issuer)s) on %(when)s, on your account page. "
                         "Signing in now asks only for your password, and your recovery "
                         "codes no longer work.")),
    "codes": (lazy_gettext("New recovery codes were made"),
              lazy_gettext("New recovery codes were made for your %(service)s account "
                           "\"%(username)s\" (%(issuer)s) on %(when)s, on your account page. "
                           "The old ones no longer work.")),
}


def two_step_changed(user: User, which: str) -> None:
    """The notice of a change on the account page: ``which`` is a key of ``_CHANGED``."""
    subject, changed = _CHANGED[which]
    send(user, str(subject), str(changed), [gettext(
        "If it was not you, someone else has signed in with your password: choose a new "
        "password at once at %(url)s, check two-step sign-in on your account page "
        "(%(account)s), and tell your administrator.", **_urls())], "two-step notice")


def recovery_code_used(user: User) -> None:
    """The notice that a recovery code signed the user in, with how many are left."""
    left = store.recovery_codes.remaining(user.id)
    send(user, gettext("A recovery code was used to sign in"),
         gettext("A recovery code was used to sign in to your %(service)s account "
                 "\"%(username)s\" (%(issuer)s) on %(when)s. Each code works once."),
         [ngettext("You have %(num)s unused recovery code left.",
                   "You have %(num)s unused recovery codes left.", left), "",
          gettext("If it was not you, someone else has your password and one of your "
                  "recovery codes: choose a new password at once at %(url)s, make new "
                  "recovery codes on your account page (%(account)s), and tell your "
                  "administrator.", **_urls())], "recovery code notice")


#: (subject, first sentence) of a change to who may use the account, made on its page.
_ACCESS = {
    "others": (lazy_gettext("Your other sign-ins were ended"),
               lazy_gettext("Every other sign-in of your %(service)s account \"%(username)s\" "
                            "(%(issuer)s) was ended on %(when)s, from your account page.")),
    "narrowed": (lazy_gettext("You changed what an app may see"),
                 lazy_gettext("What the app %(app)s may see through your %(service)s account "
                              "\"%(username)s\" (%(issuer)s) was narrowed on %(when)s, on "
                              "your account page.")),
    "revoked": (lazy_gettext("An app can no longer use your data"),
                lazy_gettext("The access of the app %(app)s to your %(service)s account "
                             "\"%(username)s\" (%(issuer)s) was revoked on %(when)s, on "
                             "your account page.")),
}


def access_changed(user_id: int, which: str, app: str | None = None) -> None:
    """The notice of a change on the account page to who may use the account: ``which`` is
    a key of ``_ACCESS``; ``app`` the app's name (quoted into the sentence as text)."""
    user = store.accounts.get_user(user_id)
    if user is None:
        return
    subject, changed = _ACCESS[which]
    sentence = str(changed).replace("%(app)s", (app or "").replace("%", "%%"))
    send(user, str(subject), sentence, [gettext(
        "If it was not you, someone else has signed in with your password: choose a new "
        "password at once at %(url)s, look at your account page (%(account)s), and tell "
        "your administrator.", **_urls())], "account notice")
