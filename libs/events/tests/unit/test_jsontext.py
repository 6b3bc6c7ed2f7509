"""Unit tests: the fast JSON codec writes what the standard library does, values orjson refuses included."""

from __future__ import annotations

import json

import pytest

from sous_events import jsontext

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "value",
    [
        {"text": "naïve ✓", "nested": [1, 2.5, None, True, {"k": "v"}]},
        {"big": 2**70},  # beyond 64 bits: orjson refuses, the standard library writes it
        {1: "a", 2: "b"},  # keys that are not strings
        [],
    ],
)
def test_what_is_written_reads_as_what_the_standard_library_writes(value: object) -> None:
    text = jsontext.dumps(value)
    assert json.loads(text) == json.loads(json.dumps(value))
