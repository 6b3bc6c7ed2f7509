"""A recipe's fields come from one contract (docs/adding-a-recipe-field.md): these links keep it so."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sous_catalog.domain import recipe as recipe_domain
from sous_catalog.schemas import RecipeBase, RecipeCreate, RecipePublic
from sous_events.contracts import RecipeDefinition, RecipeSnapshot, RecipeStatistics
from sous_marketplace.domain.snapshot import RECIPE_FIELDS

pytestmark = pytest.mark.unit

DEFINITION = set(RecipeDefinition.model_fields)


def test_the_api_answer_is_the_published_snapshot():
    assert issubclass(RecipePublic, RecipeSnapshot)
    assert set(RecipePublic.model_fields) == set(RecipeSnapshot.model_fields)


def test_the_domain_owns_and_updates_the_contracts_fields():
    assert set(recipe_domain.OWNED_FIELDS) == set(RecipeSnapshot.model_fields) - set(RecipeStatistics.model_fields)
    assert set(recipe_domain.UPDATABLE_FIELDS) == DEFINITION - {"template_id"} | {"is_public", "is_featured"}
    assert set(recipe_domain.STAT_DEFAULTS) == set(RecipeStatistics.model_fields)


def test_the_api_input_accepts_every_definition_field():
    assert DEFINITION - {"template_id", "name"} <= set(RecipeBase.model_fields)
    assert {"template_id", "name"} <= set(RecipeCreate.model_fields)


def test_a_listing_carries_the_whole_definition():
    assert set(RECIPE_FIELDS) == DEFINITION


def test_a_new_recipe_has_every_owned_field_and_reads_as_the_snapshot():
    snapshot = recipe_domain.new_snapshot(
        recipe_id="r1",
        workspace_id="w1",
        data={
            "template_id": "menu",
            "name": "Menu",
            "steps": [{"step_id": "b", "order": 2}, {"step_id": "a", "order": 1}],
        },
        created_by="u1",
        now=datetime(2026, 1, 1, tzinfo=UTC),
        new_webhook_id=lambda: "wh",
    )
    assert list(snapshot) == list(recipe_domain.OWNED_FIELDS)
    published = RecipeSnapshot.model_validate({**snapshot, **recipe_domain.STAT_DEFAULTS})
    assert [s.step_id for s in published.steps] == ["a", "b"]
    assert published.version == "1.0" and published.execution_config.total_timeout == 600
    assert published.as_dict() == {**snapshot, **recipe_domain.STAT_DEFAULTS}
