"""The gettext catalogues (authserver/i18n.py): complete, compiled, and safe to format.

A Spanish string that lost a placeholder (``{noun}``, ``%(app)s``) would make the page
raise instead of render, so every translation must keep exactly its English placeholders.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from authserver.i18n import LANGUAGES
from authserver.paths import data_dir

ROOT = Path(__file__).resolve().parents[2]
TRANSLATED = sorted(code for code in LANGUAGES if code != "en")
_PLACEHOLDER = re.compile(r"\{\w+\}|%\(\w+\)s")


def _catalog(code: str):
    with open(data_dir("translations") / code / "LC_MESSAGES" / "messages.po", "rb") as f:
        return read_po(f)


def _key(value):
    return value if isinstance(value, str) else tuple(value)


def _strings(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


@pytest.mark.parametrize("code", TRANSLATED)
def test_every_marked_string_is_translated_with_its_placeholders(code):
    for message in _catalog(code):
        if not message.id:
            continue
        ids, strings = _strings(message.id), _strings(message.string)
        assert all(strings), f"{code}: no translation for {message.id!r}"
        wanted = sorted(set(_PLACEHOLDER.findall(ids[-1])))
        for text in strings:
            assert sorted(set(_PLACEHOLDER.findall(text))) == wanted, (message.id, text)


@pytest.mark.parametrize("code", TRANSLATED)
def test_the_compiled_catalog_matches_its_source(code):
    with open(data_dir("translations") / code / "LC_MESSAGES" / "messages.mo", "rb") as f:
        compiled = {_key(m.id): _key(m.string) for m in read_mo(f) if m.id}
    source = {_key(m.id): _key(m.string) for m in _catalog(code) if m.id}
    assert compiled == source, "run `make translations` (the .mo is older than the .po)"


def test_the_catalogues_hold_every_string_the_code_marks(tmp_path):
    """Extract from the sources now: a string marked since the last ``make translations``
    would be shown in English to a Spanish reader."""
    pot = tmp_path / "messages.pot"
    subprocess.run([str(Path(sys.executable).with_name("pybabel")), "extract", "-F",
                    "babel.cfg", "-k", "N_", "-k", "lazy_gettext", "--no-location", "-o",
                    str(pot), "."],
                   cwd=ROOT, capture_output=True, check=True)
    marked = {m.id if isinstance(m.id, str) else m.id[0]
              for m in read_po(io.BytesIO(pot.read_bytes())) if m.id}
    for code in TRANSLATED:
        held = {m.id if isinstance(m.id, str) else m.id[0] for m in _catalog(code) if m.id}
        assert marked <= held, f"{code}: not in the catalogue: {sorted(marked - held)[:5]}"
