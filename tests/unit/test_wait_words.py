"""When a throttled person may try again, in words (the 429 pages and the paused sign-in)."""

from __future__ import annotations

import pytest

from authserver.web import wait_words


@pytest.mark.parametrize(("seconds", "words"), [
    (0, "Try again in a few seconds"),
    (9.5, "Try again in a few seconds"),
    (36, "Try again in about a minute"),
    (89, "Try again in about a minute"),
    (120.6, "Try again in about 2 minutes"),
    (899.2, "Try again in about 15 minutes"),
    (3600, "Try again in about an hour"),
    (3540, "Try again in about 59 minutes"),
    (4000, "Try again in about an hour"),
    (86400, "Try again in about 24 hours"),
])
def test_wait_words_rounds_to_what_a_person_reads(seconds, words):
    assert wait_words(seconds) == words
