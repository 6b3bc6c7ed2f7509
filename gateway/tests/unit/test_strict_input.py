"""The gateway's own bodies refuse unknown fields (422 naming the field)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from sous_gateway.entrypoints.schemas import CreateApiKey
from sous_service.errors import field_path

pytestmark = pytest.mark.unit


def test_an_api_key_request_with_an_unknown_field_is_refused_by_its_name() -> None:
    with pytest.raises(ValidationError) as caught:
        CreateApiKey.model_validate({"name": "ci", "scopes": ["recipes:read"], "expires": 30})
    assert [(field_path(e["loc"]), e["type"]) for e in caught.value.errors()] == [("expires", "extra_forbidden")]
