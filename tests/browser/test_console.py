"""The Sous Console, driven like a person would: sign in, recipes, live runs, cancel, rerun, marketplace."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from .conftest import Console, create_agent, create_recipe, wait_for_executor, wait_until

pytestmark = pytest.mark.browser


def slow_steps(agent_id: str, latency_ms: int = 1500, count: int = 3) -> list[dict[str, object]]:
    return [
        {
            "step_id": f"s{i}",
            "order": i,
            "agent_id": agent_id,
            "prompt_template": f"[[latency:{latency_ms}]] Step {i} about {{input.topic}}",
        }
        for i in range(1, count + 1)
    ]


def test_sign_in_with_an_api_key_and_browse_every_page(console: Console, make_api, stack):
    admin = make_api(roles=("admin", "moderator"))
    key = admin.ok(
        "POST",
        "/api/api-keys",
        201,
        json={
            "name": "console",
            "scopes": [
                "recipes:read",
                "recipes:write",
                "executions:run",
                "executions:read",
                "marketplace:submit",
                "keys:admin",
            ],
        },
    )["key"]
    agent = create_agent(admin)
    create_recipe(admin, slow_steps(agent["id"], 10), name="Browsing recipe", tags=["browse"])
    page = console.page

    console.goto()
    expect(page.get_by_role("heading", name="Sign in to Sous")).to_be_visible()
    console.screenshot("sign-in")
    page.get_by_label("API key or JWT").fill("not a credential")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Paste an API key")).to_be_visible()

    console.sign_in(key)
    expect(page.get_by_label("Workspace")).to_have_value(admin.workspace)
    expect(page.get_by_role("link", name="Browsing recipe", exact=True)).to_be_visible()
    console.screenshot("recipes")

    # Search, sort and filter are wired to the API.
    page.get_by_label("Search").fill("no-such-recipe-anywhere")
    expect(page.get_by_text("No recipe matches.")).to_be_visible()
    page.get_by_label("Search").fill("Browsing")
    expect(page.get_by_role("link", name="Browsing recipe", exact=True)).to_be_visible()
    page.get_by_label("Sort by").select_option("name")
    page.get_by_label("Visibility").select_option("false")
    expect(page.get_by_text("No recipe matches.")).to_be_visible()
    page.get_by_label("Visibility").select_option("true")
    expect(page.get_by_role("link", name="Browsing recipe", exact=True)).to_be_visible()

    # The navigation works from the keyboard alone.
    page.get_by_role("link", name="Execution Kitchen").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Execution Kitchen")).to_be_visible()
    console.screenshot("kitchen")
    page.get_by_role("link", name="Marketplace").click()
    expect(page.get_by_role("heading", name="Listings")).to_be_visible()
    console.screenshot("marketplace")
    page.get_by_role("link", name="API keys").click()
    expect(page.get_by_role("heading", name="Keys of this workspace")).to_be_visible()
    expect(page.get_by_role("cell", name="console", exact=True)).to_be_visible()
    page.get_by_label("Name").fill("from the console")
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_text("it is shown only once")).to_be_visible()
    expect(page.locator("pre.code")).to_contain_text("sous_")
    console.screenshot("keys")

    # Every control on these pages has an accessible name.
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea, button')]
            .filter((el) => !el.labels?.length && !el.getAttribute('aria-label') && !el.textContent.trim())
            .map((el) => el.outerHTML)"""
    )
    assert unlabelled == []

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to Sous")).to_be_visible()


def test_create_a_recipe_see_a_field_error_fix_it_run_it_and_watch_steps_complete_live(console: Console, make_api):
    api = make_api()
    create_agent(api, name="Console writer")
    page = console.page
    console.expect_http_error(422, r"^/api/workflow-recipes$")  # the invalid id, on purpose
    console.expect_http_error(404, r"/executions$")  # the executor has not learnt the new recipe yet
    console.sign_in(api.token)

    page.get_by_role("link", name="New recipe").click()
    template_id = f"console-{uuid.uuid4().hex[:6]}"
    page.get_by_label("Recipe id").fill("not a valid id!")
    page.get_by_label("Name").fill("Made in the console")
    page.get_by_label("Inputs (JSON)").fill('{"topic": {"type": "string", "required": true}}')
    page.get_by_label("Prompt template").fill("[[latency:2500]] Outline {input.topic}")
    page.get_by_role("button", name="Add step").click()
    page.get_by_label("Prompt template").nth(1).fill("[[latency:2500]] Draft from {previous_output}")
    page.get_by_role("button", name="Add step").click()
    page.get_by_label("Prompt template").nth(2).fill("[[latency:2500]] Polish {previous_output}")
    page.get_by_role("button", name="Create recipe").click()

    field_error = page.locator('[data-field="template_id"] .field-error')
    expect(field_error).to_be_visible()
    expect(field_error).to_contain_text(re.compile("pattern|match", re.I))
    expect(page.get_by_label("Recipe id")).to_have_attribute("aria-invalid", "true")
    console.screenshot("field-error")

    page.get_by_label("Recipe id").fill(template_id)
    page.get_by_role("button", name="Create recipe").click()
    expect(page.get_by_role("heading", name="Made in the console")).to_be_visible()
    expect(page.locator('[data-field="template_id"] .field-error')).to_have_count(0)
    console.screenshot("recipe")

    wait_for_executor(api, template_id)
    page.get_by_role("link", name="Run", exact=True).click()
    page.get_by_label("topic (required)").fill("focaccia")
    console.screenshot("run-form")
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/execute")) as execute:
        page.get_by_role("button", name="Start run").click()
    # Its retries (a lost answer) repeat the key: the run starts once.
    assert re.fullmatch(r"sous-console-[0-9a-f]{32}", execute.value.headers.get("idempotency-key", ""))

    timeline = page.locator("ol.timeline")
    # Live: the page shows the second step running before it shows it completed.
    expect(timeline.locator('[data-step="step-2"][data-status="running"]')).to_be_visible()
    console.screenshot("execution-live")
    expect(timeline.locator('[data-step="step-1"][data-status="completed"]')).to_be_visible()
    for step in ("step-1", "step-2", "step-3"):
        expect(timeline.locator(f'[data-step="{step}"][data-status="completed"]')).to_be_visible()
    expect(page.locator(".status-line")).to_have_attribute("data-status", "completed")
    expect(page.get_by_role("heading", name="Inputs and outputs")).to_be_visible()
    expect(page.locator("pre.code").first).to_contain_text("focaccia")
    console.screenshot("execution-done")

    # The version history shows a diff between revisions once the recipe is edited.
    page.get_by_role("link", name="← Recipe").click()
    page.get_by_role("link", name="Edit").click()
    page.get_by_label("Name").fill("Made in the console, edited")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("heading", name="Made in the console, edited")).to_be_visible()
    page.get_by_role("button", name="Compare").click()
    diff = page.locator(".diff table")
    expect(diff).to_contain_text("name")
    expect(diff).to_contain_text("Made in the console, edited")
    console.screenshot("history-diff")


def test_cancel_a_running_execution_from_the_kitchen(console: Console, make_api):
    api = make_api()
    agent = create_agent(api)
    recipe = create_recipe(
        api,
        [
            {"step_id": "quick", "order": 1, "agent_id": agent["id"], "prompt_template": "Quick"},
            {"step_id": "endless", "order": 2, "agent_id": agent["id"], "prompt_template": "[[latency:120000]] Slow"},
        ],
        name="Slow cooker",
    )
    wait_for_executor(api, recipe["template_id"])
    console.sign_in(api.token)
    page = console.page

    console.goto(f"#/recipes/{recipe['template_id']}/run")
    page.get_by_role("button", name="Start run").click()
    expect(page.locator('ol.timeline [data-step="endless"][data-status="running"]')).to_be_visible()

    page.get_by_role("link", name="Kitchen", exact=True).click()
    card = page.locator("article.run-card", has_text="Slow cooker")
    expect(card.locator('[data-step="quick"][data-status="completed"]')).to_be_visible()
    expect(card.locator('[data-step="endless"][data-status="running"]')).to_be_visible()
    console.screenshot("kitchen-running")
    card.get_by_role("button", name="Cancel Slow cooker").click()
    expect(card).to_have_attribute("data-status", "cancelled")
    console.screenshot("kitchen-cancelled")


def test_rerun_from_a_chosen_step_reuses_the_steps_before_it(console: Console, make_api):
    api = make_api()
    agent = create_agent(api)
    recipe = create_recipe(
        api,
        slow_steps(agent["id"], 10),
        name="Rerunnable",
        inputs={"topic": {"type": "string", "required": False, "default": "rye"}},
    )
    wait_for_executor(api, recipe["template_id"])
    console.sign_in(api.token)
    page = console.page
    console.goto(f"#/recipes/{recipe['template_id']}/run")
    page.get_by_role("button", name="Start run").click()
    expect(page.locator(".status-line")).to_have_attribute("data-status", "completed")
    first_url = page.url

    page.get_by_label("Rerun from step").select_option("s2")
    page.get_by_label("New prompt for that step (optional)").fill("Step 2, rewritten, about {input.topic}")
    page.get_by_role("button", name="Rerun").click()
    page.wait_for_url(lambda url: url != first_url and "#/executions/" in url)
    expect(page.locator(".status-line")).to_have_attribute("data-status", "completed")
    timeline = page.locator("ol.timeline")
    expect(timeline.locator('[data-step="s1"]')).to_contain_text("reused")
    expect(timeline.locator('[data-step="s2"]')).not_to_contain_text("reused")
    expect(page.locator("dl.facts")).to_contain_text("From step")
    page.locator('[data-step="s2"] summary').click()
    expect(page.locator('[data-step="s2"] pre.code')).to_contain_text("rewritten")
    console.screenshot("rerun")


def test_a_what_if_replay_shows_which_steps_ran_again_and_the_diff(console: Console, make_api):
    api = make_api()
    agent = create_agent(api)
    recipe = create_recipe(
        api,
        slow_steps(agent["id"], 10),
        name="Replayable",
        inputs={"topic": {"type": "string", "required": False, "default": "rye"}},
    )
    wait_for_executor(api, recipe["template_id"])
    console.sign_in(api.token)
    page = console.page
    console.goto(f"#/recipes/{recipe['template_id']}/run")
    page.get_by_role("button", name="Start run").click()
    expect(page.locator(".status-line")).to_have_attribute("data-status", "completed")
    first_url = page.url

    page.get_by_label("Step to change (optional)").select_option("s2")
    page.get_by_label("Its new prompt").fill("Step 2, shorter, about {input.topic}")
    page.get_by_role("button", name="Replay", exact=True).click()
    page.wait_for_url(lambda url: url != first_url and "#/executions/" in url)
    report = page.locator('section[aria-labelledby="replay-title"]')
    expect(report.get_by_role("heading", name="Replay report")).to_be_visible()
    expect(report.locator('[data-step="s1"]')).to_contain_text("reused")
    expect(report.locator('[data-step="s1"]')).to_have_attribute("data-changed", "false")
    expect(report.locator('[data-step="s2"]')).to_contain_text("re-run")
    expect(report.locator('[data-step="s2"]')).to_have_attribute("data-changed", "true")
    expect(report.locator('[data-step="s2"] pre.code')).to_contain_text("+Offline answer: Step 2, shorter")
    expect(report.locator('tr[data-row="delta"]')).to_be_visible()
    console.screenshot("replay")


def test_a_moderator_approves_a_listing_and_installs_it_into_a_second_workspace(console: Console, make_api, stack):
    creator = make_api()
    agent = create_agent(creator, name=f"summariser-{uuid.uuid4().hex[:4]}")
    recipe = create_recipe(
        creator,
        [{"step_id": "sum", "order": 1, "agent_id": agent["id"], "prompt_template": "Summarise {input.text}"}],
        name=f"Shared summary {uuid.uuid4().hex[:4]}",
        inputs={"text": {"type": "string", "required": False, "default": "the news"}},
        tags=["writing"],
    )
    wait_until(
        lambda: (
            creator.status("POST", "/api/workflow-recipes/submit", json={"recipe_id": recipe["template_id"]}) == 200
        ),
        "the marketplace to accept the submission",
    )
    home, second = f"ws-{uuid.uuid4().hex[:8]}", f"ws-{uuid.uuid4().hex[:8]}"
    moderator = make_api(workspaces=(home, second), roles=("moderator", "admin"))
    console.sign_in(moderator.token)
    page = console.page
    expect(page.get_by_label("Workspace")).to_have_value(home)

    page.get_by_role("link", name="Marketplace").click()
    row = page.locator("tr", has_text=recipe["name"])
    expect(row).to_be_visible()
    console.screenshot("queue")
    row.get_by_role("button", name=f"Approve {recipe['name']}").click()
    listing = page.locator("article.listing", has_text=recipe["name"])
    expect(listing).to_be_visible()

    page.get_by_label("Workspace").select_option(second)
    expect(page.get_by_text(f"Installs go into workspace {second}")).to_be_visible()
    page.locator("article.listing", has_text=recipe["name"]).get_by_role(
        "button", name=f"Install {recipe['name']}"
    ).click()
    expect(page.get_by_text(re.compile("Installing")).first).to_be_visible()
    console.screenshot("installed")

    moderator_second = make_api(workspaces=(second,), roles=("admin",))
    wait_until(
        lambda: moderator_second.ok("GET", "/api/workflow-recipes", params={"search": recipe["name"]})["total"] >= 1,
        "the clone in the second workspace",
    )
    page.get_by_role("link", name="Recipes").click()
    expect(page.get_by_role("link", name=recipe["name"], exact=True)).to_be_visible()
    console.screenshot("second-workspace")
