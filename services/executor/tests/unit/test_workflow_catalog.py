"""Saving a plan as a recipe: the catalog's refusals become the same domain refusals, mapped to HTTP once."""

from __future__ import annotations

import json

import pytest

from sous_executor.workflows.catalog import refusal
from sous_service.domain_errors import Conflict, Forbidden, InputInvalid, NotFound
from sous_service.errors import domain_error_response

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("status", "kind"), [(409, Conflict), (403, Forbidden), (404, NotFound), (422, InputInvalid)])
def test_the_catalogs_refusal_keeps_its_status(status: int, kind: type[Exception]) -> None:
    answer = {"detail": "template_id 'daily' already exists", "code": "duplicate_template"}
    error = refusal(status, answer, template_id="daily")
    assert isinstance(error, kind)
    response = domain_error_response(error)
    assert response.status_code == status
    body = json.loads(response.body)
    if status != 422:
        assert body == {"detail": f"the catalog refused the recipe: {answer['detail']}", "code": "duplicate_template"}


def test_the_catalogs_field_paths_reach_the_caller() -> None:
    answer = {
        "detail": "steps[0].agent_id: unknown agent",
        "code": "validation_error",
        "errors": [{"field": "steps[0].agent_id", "message": "unknown agent", "type": "value_error"}],
    }
    response = domain_error_response(refusal(422, answer, template_id="daily"))
    body = json.loads(response.body)
    assert body["code"] == "validation_error"
    assert body["errors"] == answer["errors"]
