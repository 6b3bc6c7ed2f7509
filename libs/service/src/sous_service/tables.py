"""Column builders for what every service's tables store the same way: ids, workspaces, template ids,
JSON documents, times and stream versions.

A service's `adapters/tables.py` then says what its tables hold, and an id, a workspace or a timestamp has
one width and type across the services (a value copied from one service's table fits the next one's).
Options not named here (`index`, `unique`, `default`, `server_default`, ...) pass through to `Column`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime, Integer, String
from sqlalchemy.dialects.postgresql import JSONB

ID_LENGTH = 64  # ids Sous makes (UUIDv7 text) and event ids
WORKSPACE_LENGTH = 100
TEMPLATE_LENGTH = 200


def id_column(name: str = "id", *, primary_key: bool = False, nullable: bool = False, **options: Any) -> Column[str]:
    """An id Sous generates: an aggregate's, an execution's, an event's."""
    return Column(name, String(ID_LENGTH), primary_key=primary_key, nullable=nullable, **options)


def workspace_column(name: str = "workspace_id", *, primary_key: bool = False, **options: Any) -> Column[str]:
    return Column(name, String(WORKSPACE_LENGTH), primary_key=primary_key, nullable=False, **options)


def template_column(name: str = "template_id", *, primary_key: bool = False, **options: Any) -> Column[str]:
    """A recipe's template id (the name a workspace gives it, unique within the workspace)."""
    return Column(name, String(TEMPLATE_LENGTH), primary_key=primary_key, nullable=False, **options)


def json_column(name: str, *, nullable: bool = False, **options: Any) -> Column[Any]:
    return Column(name, JSONB, nullable=nullable, **options)


def time_column(name: str, *, nullable: bool = False, **options: Any) -> Column[datetime]:
    """A moment, always with its time zone."""
    return Column(name, DateTime(timezone=True), nullable=nullable, **options)


def version_column(name: str = "version", **options: Any) -> Column[int]:
    """The version of the stream (or the event) a row reflects: a newer one replaces it, an older one never."""
    return Column(name, Integer, nullable=False, **options)
