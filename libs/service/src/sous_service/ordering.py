"""Orderings shared by every list: names sort as people read them (`alpha, Bravo, Charlie`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func


def by_name(name: ColumnElement[Any], *tiebreak: ColumnElement[Any]) -> tuple[ColumnElement[Any], ...]:
    """Case-insensitive name order, then the exact name and `tiebreak` (an id), so pages never shuffle."""
    return (func.lower(name).asc(), name.asc(), *tiebreak)
