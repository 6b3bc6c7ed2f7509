from __future__ import annotations

import pytest

from sous_events.events import ListingApproved, ListingRejected, ListingSubmitted
from sous_events.registry import make_event
from sous_marketplace.domain.install import installed_template_id, plan_install
from sous_marketplace.domain.listing import InvalidReason, InvalidTransition, Listing, choose_category
from sous_marketplace.domain.quality_gate import QualityGate, QualityStanding
from sous_marketplace.domain.snapshot import composio_tools, public_agent, public_recipe, step_agent_ids
from sous_marketplace.domain.trust import is_trusted

pytestmark = pytest.mark.unit

OPEN_GATE = QualityGate(min_score=0.0, min_runs=0)
UNASSESSED = QualityStanding()


def submitted(auto: bool = False) -> Listing:
    payload = ListingSubmitted(
        listing_id="L1",
        name="Digest",
        category="News",
        creator_id="u1",
        source_workspace_id="wa",
        template_id="digest",
        auto_approved=auto,
    )
    event = make_event(payload, producer="t", workspace_id="wa", aggregate_id="L1", aggregate_version=1)
    return Listing.from_events("L1", [event])


def advance(listing: Listing, payload: ListingApproved | ListingRejected) -> None:
    listing.apply(
        make_event(payload, producer="t", workspace_id="wa", aggregate_id="L1", aggregate_version=listing.version + 1)
    )


def test_submission_is_pending_and_approval_moves_it_to_approved() -> None:
    listing = submitted()
    assert (listing.status, listing.version, listing.creator_id) == ("pending", 1, "u1")
    approved = listing.approve("mod", OPEN_GATE, UNASSESSED)
    assert (approved.creator_id, approved.moderator_id) == ("u1", "mod")
    advance(listing, approved)
    assert (listing.status, listing.version) == ("approved", 2)


def test_approve_or_reject_only_from_pending() -> None:
    listing = submitted()
    advance(listing, listing.approve("mod", OPEN_GATE, UNASSESSED))
    with pytest.raises(InvalidTransition):
        listing.approve("mod", OPEN_GATE, UNASSESSED)
    with pytest.raises(InvalidTransition):
        listing.reject("mod", "late")
    rejected = submitted()
    advance(rejected, rejected.reject("mod", "  spam  "))
    assert (rejected.status, rejected.rejection_reason) == ("rejected", "spam")
    with pytest.raises(InvalidTransition):
        rejected.approve("mod", OPEN_GATE, UNASSESSED)


def test_auto_approved_submission_starts_approved_and_cannot_be_approved_again() -> None:
    listing = submitted(auto=True)
    assert listing.status == "approved"
    with pytest.raises(InvalidTransition):
        listing.approve("mod", OPEN_GATE, UNASSESSED)


def test_reject_needs_a_reason() -> None:
    with pytest.raises(InvalidReason):
        submitted().reject("mod", "   ")


def test_unknown_listing_does_not_exist() -> None:
    assert not Listing.from_events("nope", []).exists


@pytest.mark.parametrize(
    ("given", "tags", "expected"),
    [
        ("Sales", ["ops"], "Sales"),
        (None, ["ops", "x"], "ops"),
        ("  ", ["", "  ", "research"], "research"),
        (None, [], "General"),
        (None, [3, None], "General"),
    ],
)
def test_category_choice(given: str | None, tags: list[object], expected: str) -> None:
    assert choose_category(given, tags) == expected


@pytest.mark.parametrize(
    ("approved", "threshold", "trusted"), [(4, 5, False), (5, 5, True), (6, 5, True), (0, 1, False)]
)
def test_trust_threshold(approved: int, threshold: int, trusted: bool) -> None:
    assert is_trusted(approved, threshold) is trusted


def test_agent_snapshot_keeps_the_model_choice_and_drops_secrets() -> None:
    agent = {
        "id": "a1",
        "workspace_id": "wa",
        "name": "Writer",
        "description": "writes",
        "status": "active",
        "metrics": {"runs": 3},
        "model_config": {
            "provider": "openai",
            "model_id": "gpt",
            "base_url": "https://user:pw@llm.example:8443/v1?api_key=sk-123#frag",
            "temperature": 0.2,
            "max_tokens": 500,
            "api_key_env": "OPENAI_API_KEY",
            "api_key": "sk-raw",
        },
        "skills": ["calculator", 7],
        "configuration": {"max_iterations": 3, "auth_token": "x", "nested": {"password": "p", "keep": 1}},
    }
    out = public_agent(agent)
    assert set(out) == {"id", "name", "description", "skills", "model_config", "configuration", "bind_secrets"}
    assert out["model_config"] == {
        "provider": "openai",
        "model_id": "gpt",
        "base_url": "https://llm.example:8443/v1",
        "temperature": 0.2,
        "max_tokens": 500,
    }
    assert out["bind_secrets"] == ["model_config.api_key_secret"]
    assert "OPENAI_API_KEY" not in str(out)
    assert out["skills"] == ["calculator"]
    assert out["configuration"] == {"max_iterations": 3, "nested": {"keep": 1}}
    assert "sk-" not in str(out)


def test_key_references_become_a_binding_and_survive_a_second_scrub() -> None:
    out = public_agent({"name": "x", "model_config": {"provider": "openai", "api_key_secret": "team-openai"}})
    assert out["model_config"] == {"provider": "openai"} and "team-openai" not in str(out)
    assert public_agent(out)["bind_secrets"] == ["model_config.api_key_secret"]
    assert "bind_secrets" not in public_agent({"name": "y", "model_config": {"provider": "offline"}})


def test_install_asks_to_bind_secrets_for_created_agents_only() -> None:
    agents = [
        {"id": "a1", "name": "Writer", "model_config": {"provider": "openai", "api_key_env": "OPENAI_API_KEY"}},
        {
            "id": "a2",
            "name": "Mapped",
            "model_config": {"provider": "openai"},
            "bind_secrets": ["model_config.api_key_secret"],
        },
    ]
    plan = plan_install(
        recipe={"template_id": "t", "name": "T", "schedule_config": {"type": "webhook", "webhook_secret": "s"}},
        agents=agents,
        install_id="abcdef12",
        target_agents_by_name={"Mapped": "local-agent"},
        target_recipe_names=set(),
    )
    assert [(b["agent_name"], b["field"]) for b in plan.secrets_to_bind] == [("Writer", "model_config.api_key_secret")]
    assert "OPENAI_API_KEY" not in str(plan.agents) and "bind_secrets" not in str(plan.agents)
    assert plan.recipe["schedule_config"] == {"type": "manual"}


def test_recipe_snapshot_drops_workspace_private_fields() -> None:
    recipe = {
        "id": "r1",
        "workspace_id": "wa",
        "template_id": "digest",
        "name": "Digest",
        "steps": [{"step_id": "s1", "agent_id": "a1"}, {"step_id": "s2", "agent_id": "a1"}, {"step_id": "s3"}],
        "inputs": {"api_token": {"type": "string"}},
        "schedule_config": {"type": "webhook", "webhook_id": "wh", "webhook_secret_env": "HOOK_SECRET"},
        "learning_data": {"analyses": [1]},
        "use_count": 9,
        "revision": 4,
        "created_by": "u1",
    }
    out = public_recipe(recipe)
    assert set(out) == {"template_id", "name", "steps", "inputs", "schedule_config"}
    assert out["schedule_config"] == {"type": "webhook"}
    assert out["inputs"] == {"api_token": {"type": "string"}}
    assert step_agent_ids(out) == ["a1"]


def test_install_plan_makes_a_unique_template_id_and_reports_mapping_copy_and_tools() -> None:
    recipe = {
        "template_id": "digest",
        "name": "Digest",
        "required_tools": ["GITHUB_CREATE_ISSUE"],
        "schedule_config": {"type": "cron", "cron_expression": "0 * * * *"},
    }
    agents = [{"id": "a1", "name": "Writer", "skills": ["calculator"]}, {"id": "a2", "name": "Reader", "skills": []}]
    plan = plan_install(
        recipe=recipe,
        agents=agents,
        install_id="abcdef12-0000-4000-8000-000000000000",
        target_agents_by_name={"Writer": "b9"},
        target_recipe_names={"Digest"},
    )
    assert plan.recipe["template_id"] == "digest-abcdef"
    assert plan.recipe["schedule_config"] == {"type": "manual"}
    assert recipe["template_id"] == "digest"  # the listing's snapshot is not modified
    assert plan.cloned_items == [
        {"type": "recipe", "template_id": "digest-abcdef", "name": "Digest (Copy)", "source_template_id": "digest"},
        {"type": "agent", "name": "Writer", "action": "mapped", "agent_id": "b9"},
        {"type": "agent", "name": "Reader", "action": "created"},
    ]
    assert any("Writer" in w and "mapped" in w for w in plan.warnings)
    assert any("GITHUB_CREATE_ISSUE" in w and "Composio" in w for w in plan.warnings)
    assert any("(Copy)" in w for w in plan.warnings)


def test_install_plan_without_clash_has_no_warnings() -> None:
    plan = plan_install(
        recipe={"template_id": "t", "name": "T"},
        agents=[{"name": "A", "skills": ["calculator"]}],
        install_id="0123456789ab",
        target_agents_by_name={},
        target_recipe_names={"Other"},
    )
    assert plan.warnings == []
    assert plan.cloned_items[0]["name"] == "T"


def test_installed_template_ids_differ_per_install() -> None:
    assert installed_template_id("x", "aaaaaa00") != installed_template_id("x", "bbbbbb00")
    assert composio_tools({"required_tools": ["calculator", "composio:slack_send"]}, []) == ["composio:slack_send"]
