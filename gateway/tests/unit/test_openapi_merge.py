from __future__ import annotations

import pytest

from sous_gateway.routing.openapi_merge import merge_documents
from sous_gateway.routing.table import default_table

pytestmark = pytest.mark.unit


def _ok(ref: str) -> dict:
    return {"responses": {"200": {"description": "ok", "content": {"application/json": {"schema": {"$ref": ref}}}}}}


def test_components_are_shared_when_equal_and_namespaced_when_not():
    shared = {"type": "object", "properties": {"detail": {"type": "string"}}}
    catalog = {
        "paths": {"/api/agents": {"get": _ok("#/components/schemas/Page")}, "/healthz": {"get": {}}},
        "components": {
            "schemas": {
                "Page": {"type": "object", "properties": {"a": {"$ref": "#/components/schemas/Item"}}},
                "Item": {"type": "string"},
                "Err": shared,
            }
        },
    }
    executor = {
        "paths": {"/api/tools": {"get": _ok("#/components/schemas/Page")}},
        # Page is textually equal but its Item differs, so both must be renamed
        "components": {
            "schemas": {
                "Page": {"type": "object", "properties": {"a": {"$ref": "#/components/schemas/Item"}}},
                "Item": {"type": "integer"},
                "Err": shared,
            }
        },
    }
    merged = merge_documents(
        {"openapi": "3.1.0", "info": {"title": "t", "version": "1"}},
        {"catalog": catalog, "executor": executor},
        default_table(),
    )
    schemas = merged["components"]["schemas"]
    assert set(schemas) >= {"Page", "Item", "Err", "executor_Page", "executor_Item"}
    assert "executor_Err" not in schemas
    assert schemas["executor_Page"]["properties"]["a"]["$ref"] == "#/components/schemas/executor_Item"
    tools = merged["paths"]["/api/tools"]["get"]
    assert (
        tools["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        == "#/components/schemas/executor_Page"
    )
    assert {"401", "403", "429"} <= set(tools["responses"])
    assert any(p["name"] == "X-Workspace-ID" for p in tools["parameters"])
    assert "/healthz" not in merged["paths"]
    assert merged["security"] == [{"bearerAuth": []}, {"apiKey": []}]
