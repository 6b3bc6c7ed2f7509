"""The column builders store an id, a workspace, a template id, a document, a time and a version one way."""

from __future__ import annotations

import pytest
from sqlalchemy import DateTime, Integer, String
from sqlalchemy.dialects.postgresql import JSONB

from sous_service.tables import id_column, json_column, template_column, time_column, version_column, workspace_column

pytestmark = pytest.mark.unit


def test_each_builder_has_its_type_and_is_required_unless_told() -> None:
    built = [
        id_column(),
        workspace_column(),
        template_column(),
        json_column("doc"),
        time_column("at"),
        version_column(),
    ]
    assert [c.name for c in built] == ["id", "workspace_id", "template_id", "doc", "at", "version"]
    kinds = [type(c.type) for c in built]
    assert kinds == [String, String, String, JSONB, DateTime, Integer]
    assert [getattr(c.type, "length", None) for c in built[:3]] == [64, 100, 200]
    assert built[4].type.timezone is True  # type: ignore[attr-defined]
    assert not any(c.nullable for c in built)


def test_options_pass_through_to_the_column() -> None:
    key = id_column("execution_id", primary_key=True)
    assert key.primary_key and not key.nullable
    optional = time_column("finished_at", nullable=True, index=True)
    assert optional.nullable and optional.index
    assert json_column("tags", server_default="[]").server_default is not None
    assert workspace_column(primary_key=True).primary_key
