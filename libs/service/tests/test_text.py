"""Text hygiene: NUL and lone surrogates go, everything else stays."""

from __future__ import annotations

import json

import pytest

from sous_service.text import clean_json, clean_text, has_refused

pytestmark = pytest.mark.unit


def test_nul_and_lone_surrogates_are_removed() -> None:
    assert clean_text("a\x00b\ud800c\udfffd") == "abcd"
    assert not has_refused(clean_text("\x00\ud83d"))


def test_other_text_is_kept() -> None:
    text = "tab\tnew\nline é 漢字 😀 \x01\x1f"
    assert clean_text(text) == text


def test_nested_values_and_keys_are_cleaned() -> None:
    raw = json.loads('{"k\\u0000": ["x\\u0000y", {"z": "\\ud800ok"}], "n": 1, "b": true, "none": null}')
    assert clean_json(raw) == {"k": ["xy", {"z": "ok"}], "n": 1, "b": True, "none": None}


def test_clean_values_come_back_unchanged() -> None:
    value = {"a": ["b", {"c": "d"}], "e": 2}
    assert clean_json(value) is value
