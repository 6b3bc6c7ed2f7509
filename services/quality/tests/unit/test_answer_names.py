"""Quality answers name the recipe `template_id`, keeping `recipe_id` (deprecated) for older clients."""

from __future__ import annotations

import pytest

from sous_quality.schemas import SuggestionsResponse

pytestmark = pytest.mark.unit

ANSWER = {
    "quality_score": None,
    "suggestions": [],
    "patterns": [],
    "performance_metrics": {},
    "last_analyzed_at": None,
    "analysis_count": 0,
}


@pytest.mark.parametrize("given", ["template_id", "recipe_id"])
def test_an_answer_carries_both_names_of_the_template_id(given: str) -> None:
    answer = SuggestionsResponse.model_validate({**ANSWER, given: "menu"}).model_dump(mode="json")
    assert (answer["template_id"], answer["recipe_id"]) == ("menu", "menu")


def test_the_old_name_is_marked_deprecated_in_the_schema() -> None:
    properties = SuggestionsResponse.model_json_schema()["properties"]
    assert properties["recipe_id"].get("deprecated") is True
    assert "deprecated" not in properties["template_id"]
