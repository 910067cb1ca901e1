"""A message made where no reader's language is known, translated where it is shown.

Pure modules (``auth/passwords.py``, ``smart/ceiling.py``) and services that the command
line calls too (``services/accounts.py``) cannot ask Flask-Babel for the reader's language.
They say what went wrong as :class:`Words`: a ``str`` (the English text, so logs, the
command line and ``str(exc)`` are unchanged) that also keeps its message template, marked
with :func:`N_` for the catalogues, and the values put in it. A page shows
``words.translated(gettext)`` (see :func:`authserver.i18n.translate`).

This module is pure: standard library only (and the ``N_`` marker of its package).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from authserver.smart.wording import N_

__all__ = ["N_", "Words"]


class Words(str):
    """``Words(N_("No user '{name}'"), name=name)``: the English text, with its template
    (``str.format`` placeholders) and values kept for translation. A value that is itself
    :class:`Words` is translated with it."""

    template: str
    values: dict[str, Any]

    def __new__(cls, template: str, **values: Any) -> Words:
        made = super().__new__(cls, template.format(**values) if values else template)
        made.template, made.values = template, values
        return made

    def translated(self, gettext: Callable[[str], str]) -> str:
        values = {k: v.translated(gettext) if isinstance(v, Words) else v
                  for k, v in self.values.items()}
        text = gettext(self.template)
        return text.format(**values) if values else text
