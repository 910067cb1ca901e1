"""RFC 6749 §5.2's error_description character set, kept in one place (oauth/wire.py)."""

from __future__ import annotations

from authlib.oauth2.base import invalid_error_characters

from authserver.oauth.wire import quote_param, safe_description

HOSTILE = 'a"b\\c\x00d\ne\u00e9f\u2603g\x7fh\tend'


def test_quoted_values_hold_only_allowed_characters_and_never_equal_another_value():
    quoted = quote_param(HOSTILE, 200)
    assert invalid_error_characters(quoted) == []
    assert quoted == "a?b?c?d?e?f?g?h?end"  # one '?' per refused character
    assert quote_param("x" * 70) == "x" * 64 + "..."


def test_messages_keep_their_words_with_single_quotes():
    text = safe_description('invalid scope "patient/Obs\\"x.rs": not allowed\u00e9')
    assert invalid_error_characters(text) == []
    assert text == "invalid scope 'patient/Obs'x.rs': not allowed"
    assert len(safe_description("y" * 1000)) == 300
