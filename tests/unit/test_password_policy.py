"""The password rules (authserver.auth.passwords.check_password_policy), one per rule: at
least 12 characters, not one of the 10,000 most common passwords (the shipped list, compared
case-insensitively after NFKC), not the username nor containing it."""

from __future__ import annotations

import unicodedata

import pytest

from authserver.auth import passwords
from authserver.auth.passwords import check_password_policy

COMMON = "This password is one of the most common passwords, which are tried first by " \
         "attackers. Choose another."


def test_policy_refuses_eleven_characters_and_takes_twelve():
    assert check_password_policy("a7#kq2!mz9p") == "Password must be at least 12 characters long."
    assert check_password_policy("a7#kq2!mz9pX") is None


def test_policy_counts_characters_after_nfkc():
    # 'ﬁ' (one code point) is 'fi' after NFKC: six of them are twelve characters.
    assert check_password_policy("\ufb01" * 6) is None
    assert check_password_policy("\ufb01" * 5) is not None


@pytest.mark.parametrize("password", ["qwerty123456", "QWERTY123456", "LeaveMeAlone",
                                      "1qaz2wsx3edc", "ｑｗｅｒｔｙ１２３４５６"])
def test_policy_refuses_common_passwords_whatever_the_case_or_width(password):
    assert check_password_policy(password) == COMMON


def test_common_list_is_the_shipped_ten_thousand():
    lines = passwords.COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    header = [line for line in lines if line.startswith("#")]
    entries = [line for line in lines if line and not line.startswith("#")]
    assert len(entries) == 10_000 and len(set(entries)) == 10_000
    assert "zxcvbn" in header[0] and "MIT" in header[0]  # provenance and licence
    assert entries[:2] == ["123456", "password"]
    assert passwords.is_common_password("PassWord") and passwords.is_common_password("123456")
    assert not passwords.is_common_password("correct horse battery")
    assert all(unicodedata.normalize("NFKC", e).casefold() == e for e in entries)


@pytest.mark.parametrize("password", ["alice.smith-2026", "ALICE.SMITHisme",
                                      "my name is Alice.Smith", "Ａｌｉｃｅ.Ｓｍｉｔｈ!!!"])
def test_policy_refuses_a_password_containing_the_username(password):
    assert check_password_policy(password, "alice.smith") == \
        "Password must not contain your username."
    assert check_password_policy(password) is None  # the same without a username


def test_policy_refuses_the_username_itself():
    assert check_password_policy("dr.longname.99", "Dr.LongName.99") == \
        "Password must not contain your username."


def test_policy_lets_a_very_short_username_appear_inside():
    # A two-letter username would otherwise forbid every password holding those letters.
    assert check_password_policy("a jolly good sentence", "jo") is None


def test_policy_messages_never_echo_the_password():
    for password, username in (("short", None), ("qwerty123456", None),
                               ("bob-the-builder-1", "bob-the-builder")):
        message = check_password_policy(password, username)
        assert message and password not in message
