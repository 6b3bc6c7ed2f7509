"""Execute, rerun, cancel, workflow and secret bodies refuse unknown fields (422 naming the field)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from sous_executor.entrypoints.api import CancelBody, ExecuteBody, RerunBody
from sous_executor.secrets.api import SecretBody
from sous_executor.workflows.schemas import CancelRun, ExecuteWorkflow, SaveAsRecipe, WorkflowCreate, WorkflowUpdate
from sous_service.errors import field_path

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("model", "body", "field"),
    [
        (ExecuteBody, {"input_data": {}, "inputs": {"topic": "x"}}, "inputs"),
        (RerunBody, {"from_step": "s2", "step_overrides": {"s2": {"prompt": "x"}}}, "step_overrides.s2.prompt"),
        (CancelBody, {"reason": "late", "force": True}, "force"),
        (WorkflowCreate, {"name": "W", "task_template": "t", "configuration": {"retries": 1}}, "configuration.retries"),
        (WorkflowUpdate, {"titel": "W"}, "titel"),
        (ExecuteWorkflow, {"input_data": {}, "priority": 1}, "priority"),
        (SaveAsRecipe, {"template_id": "t", "public": True}, "public"),
        (CancelRun, {"reason": "", "why": "x"}, "why"),
        (SecretBody, {"value": "s", "name": "k"}, "name"),
    ],
)
def test_an_unknown_field_is_refused_by_its_path(model: type[BaseModel], body: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body)
    assert (field, "extra_forbidden") in [(field_path(e["loc"]), e["type"]) for e in caught.value.errors()]
