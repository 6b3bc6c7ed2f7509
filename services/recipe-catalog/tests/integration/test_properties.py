"""Property-based: no create/update payload yields a 5xx, and every rejection names its field."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.integration

BASE = "/api/workflow-recipes"
FIELDS = (
    "template_id",
    "name",
    "description",
    "tags",
    "template_definition",
    "steps",
    "inputs",
    "outputs",
    "execution_config",
    "schedule_config",
    "recommended_agents",
    "required_tools",
    "is_public",
    "is_featured",
    "is_system",
    "preview_image",
    "documentation_url",
    "version",
    "changelog",
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["", "\x00", "\ud800", "* * * * *", "61 * * * *", "stop", "retry", "cron", "webhook", "parallel"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=8,
)


def steps_strategy(agent_ids):
    step = st.fixed_dictionaries(
        {
            "step_id": st.one_of(st.sampled_from(["a", "b", "c"]), json_values),
            "order": st.one_of(st.integers(-2, 5), json_values),
            "agent_id": st.one_of(st.sampled_from(agent_ids), json_values),
        },
        optional={
            "error_handling": st.one_of(st.sampled_from(["stop", "continue", "retry", "skip", "boom"]), json_values),
            "depends_on": st.one_of(st.lists(st.sampled_from(["a", "b", "c", "zz"]), max_size=3), json_values),
            "max_retries": json_values,
            "timeout": json_values,
            "prompt_template": json_values,
        },
    )
    return st.one_of(st.lists(step, max_size=4), json_values)


def config_strategy():
    return st.one_of(
        json_values,
        st.fixed_dictionaries(
            {},
            optional={
                "mode": st.one_of(st.sampled_from(["sequential", "parallel", "x"]), json_values),
                "retry_delay": st.one_of(st.floats(), st.integers(-5, 5)),
                "total_timeout": json_values,
                "type": st.one_of(st.sampled_from(["manual", "cron", "trigger", "webhook", "y"]), json_values),
                "cron_expression": st.one_of(st.sampled_from(["*/5 * * * *", "bad", "* * * * * *"]), json_values),
                "trigger_config": json_values,
                "timezone": st.one_of(st.sampled_from(["UTC", "Nope/Zone", "../etc"]), json_values),
            },
        ),
    )


def payloads(agent_ids):
    """Mostly valid bodies with one to three fields replaced, so the rules behind the shapes are reached too."""
    per_field = {
        **dict.fromkeys(FIELDS, json_values),
        "steps": steps_strategy(agent_ids),
        "execution_config": config_strategy(),
        "schedule_config": config_strategy(),
        "description": st.one_of(st.text(max_size=8), st.sampled_from(["\x00", "a\ud800"])),
        "template_definition": st.dictionaries(st.text(max_size=4), json_values, max_size=3),
        "tags": st.lists(st.one_of(st.text(max_size=5), st.sampled_from(["\x00", " "])), max_size=3),
    }
    replaced = st.lists(st.sampled_from(sorted(per_field)), min_size=1, max_size=3, unique=True).flatmap(
        lambda names: st.fixed_dictionaries({name: per_field[name] for name in names})
    )
    return st.one_of(replaced, replaced, replaced, json_values)


def assert_well_refused(response):
    assert response.status_code < 500, response.text
    if response.status_code == 422:
        body = response.json()
        assert body["code"] == "validation_error"
        assert body["errors"], body
        for error in body["errors"]:
            assert error["field"], body
            assert error["message"], body


JSON = {"content-type": "application/json"}


def encode(body):
    """Python's JSON (NaN, Infinity and lone surrogates included), as a careless client would send it."""
    return json.dumps(body, allow_nan=True)


@pytest.fixture
async def known_agents(catalog):
    return catalog, [(await catalog.agent())["id"]]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
async def test_no_create_or_update_payload_yields_a_5xx(known_agents, data):
    catalog, agent_ids = known_agents
    base = catalog.body(agent_ids[0])
    change = data.draw(payloads([*agent_ids, "ghost"]))
    body = {**base, **change} if isinstance(change, dict) else change
    response = await catalog.request("POST", BASE, content=encode(body), headers=JSON)
    assert_well_refused(response)
    if isinstance(change, dict):
        target = body.get("template_id") if response.status_code == 201 else None
        if target is None:
            target = (await catalog.recipe(agent_id=agent_ids[0]))["template_id"]
        update = data.draw(payloads([*agent_ids, "ghost"]))
        response = await catalog.request("PUT", f"{BASE}/{target}", content=encode(update), headers=JSON)
        assert_well_refused(response)
