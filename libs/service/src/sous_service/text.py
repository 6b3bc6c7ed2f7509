"""Text hygiene for data that enters from outside: what PostgreSQL refuses never reaches an event.

`jsonb` and `text` columns refuse NUL (U+0000) and a UTF-8 encoder refuses lone surrogates
(U+D800-U+DFFF, which JSON `\\ud800` escapes can smuggle in). One such character in a model answer or a
fetched web page would make every write of that step fail; removing them at the boundary keeps the rest
of the text.
"""

from __future__ import annotations

import re
from typing import Any

_REFUSED = re.compile("[\x00\ud800-\udfff]")


def clean_text(value: str) -> str:
    """`value` without NUL and lone surrogates (the string itself when it had none)."""
    return _REFUSED.sub("", value)


def has_refused(value: str) -> bool:
    return _REFUSED.search(value) is not None


def clean_json(value: Any) -> Any:
    """A copy of a nested JSON-like value (dict keys included) with every string cleaned.

    Values that need no change are returned as they are, so cleaning clean data allocates nothing new.
    """
    if isinstance(value, str):
        return clean_text(value) if has_refused(value) else value
    if isinstance(value, dict):
        pairs = [(k, v, clean_json(k), clean_json(v)) for k, v in value.items()]
        if all(k is ck and v is cv for k, v, ck, cv in pairs):
            return value
        return {ck: cv for _, _, ck, cv in pairs}
    if isinstance(value, list):
        items = [clean_json(v) for v in value]
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    if isinstance(value, tuple):
        return tuple(clean_json(v) for v in value)
    return value
