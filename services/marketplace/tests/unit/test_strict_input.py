"""Submit and reject bodies refuse unknown fields (422 naming the field) instead of ignoring them."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from sous_marketplace.entrypoints.api import RejectBody, SubmitBody
from sous_service.errors import field_path

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("model", "body", "field"),
    [
        (SubmitBody, {"recipe_id": "r1", "categroy": "News"}, "categroy"),
        (RejectBody, {"reason": "spam", "notify": True}, "notify"),
    ],
)
def test_an_unknown_field_is_refused_by_its_name(model: type[BaseModel], body: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body)
    assert [(field_path(e["loc"]), e["type"]) for e in caught.value.errors()] == [(field, "extra_forbidden")]


def test_the_origin_clients_submit_body_is_accepted() -> None:
    body = SubmitBody.model_validate({"recipe_id": "r1", "category": "News", "icon": "chef"})
    assert (body.template_id, body.category, body.icon) == ("r1", "News", "chef")


def test_the_submit_body_names_the_recipe_by_its_template_id() -> None:
    body = SubmitBody.model_validate({"template_id": "r1"})
    assert body.template_id == "r1"
    assert "template_id" in SubmitBody.model_json_schema()["properties"]


@pytest.mark.parametrize("template_id", ["\x1f", "r\x001", "r1\x7f"])
def test_a_template_id_with_a_control_character_is_refused_by_its_field(template_id: str) -> None:
    # It would go into the catalog's URL as it is: refused here (422), never an error there (500).
    with pytest.raises(ValidationError) as raised:
        SubmitBody.model_validate({"template_id": template_id})
    assert raised.value.errors()[0]["loc"] == ("template_id",)
