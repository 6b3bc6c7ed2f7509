"""Assess and learn bodies refuse unknown fields (422 naming the field) instead of ignoring them."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from sous_quality.schemas import AssessRequest, LearnRequest
from sous_service.errors import field_path

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("model", [AssessRequest, LearnRequest])
def test_an_unknown_field_is_refused_by_its_name(model: type[BaseModel]) -> None:
    with pytest.raises(ValidationError) as caught:
        model.model_validate({"execution_id": "e1", "executionId": "e2"})
    assert [(field_path(e["loc"]), e["type"]) for e in caught.value.errors()] == [("executionId", "extra_forbidden")]
    assert model.model_validate({"execution_id": "e1"}).model_dump()["execution_id"] == "e1"
