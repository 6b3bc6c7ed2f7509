"""Proposed versions and their promotion through what-if replays (an executor double answers the replays)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from sous_catalog.adapters.replay_client import ReplayClient
from sous_service.internal_context import CONTEXT_HEADER, decode_context

pytestmark = pytest.mark.integration


@dataclass
class ExecutorDouble:
    """Past executions of the recipe, replays started on request, reports with the scores a test sets."""

    executions: list[dict[str, Any]] = field(default_factory=list)
    original_quality: float = 0.95
    replay_quality: float = 0.95
    replay_cost: float = 0.001
    finished: bool = True
    started: list[dict[str, Any]] = field(default_factory=list)
    callers: set[str] = field(default_factory=set)

    def app(self, secret: str) -> FastAPI:
        app = FastAPI()
        recipes = "/api/workflow-recipes/{template_id}/executions"

        def who(request: Request) -> None:
            self.callers.add(decode_context(request.headers[CONTEXT_HEADER], secret).user_id)

        @app.get(recipes)
        async def executions(template_id: str, request: Request) -> JSONResponse:
            who(request)
            return JSONResponse({"items": self.executions, "total": len(self.executions)})

        @app.post(recipes + "/{execution_id}/replay")
        async def replay(template_id: str, execution_id: str, request: Request) -> JSONResponse:
            who(request)
            body = await request.json()
            replay_id = f"replay-{len(self.started) + 1}"
            self.started.append({"execution_id": execution_id, "revision": body["revision"], "replay": replay_id})
            return JSONResponse({"replay_execution_id": replay_id, "status": "started"}, status_code=202)

        @app.get(recipes + "/{replay_id}/replay-report")
        async def report(template_id: str, replay_id: str, request: Request) -> JSONResponse:
            who(request)
            return JSONResponse(
                {
                    "replay_execution_id": replay_id,
                    "status": "completed" if self.finished else "running",
                    "finished": self.finished,
                    "error": None,
                    "changed_steps": ["summarise"],
                    "rerun_steps": ["summarise"],
                    "changed_outputs": ["summarise"],
                    "totals": {
                        "original": {"cost_usd": 0.001, "quality_score": self.original_quality},
                        "replay": {
                            "cost_usd": self.replay_cost,
                            "quality_score": self.replay_quality if self.finished else None,
                        },
                    },
                }
            )

        return app


@pytest.fixture
def executor(catalog: Any) -> Iterator[ExecutorDouble]:
    double = ExecutorDouble(
        executions=[
            {"execution_id": "e-replayed", "status": "running", "triggered_by": "manual"},
            {"execution_id": "e-3", "status": "completed", "triggered_by": "manual"},
            {"execution_id": "r-old", "status": "completed", "triggered_by": "replay"},
            {"execution_id": "e-2", "status": "failed", "triggered_by": "manual"},
        ]
    )
    promotions = catalog.app.state.catalog.promotions
    kept = (promotions.replays, promotions.wait_s)
    promotions.replays = ReplayClient(
        "http://executor",
        "",
        catalog.settings.internal_secret,
        transport=httpx.ASGITransport(app=double.app(catalog.settings.internal_secret)),
    )
    promotions.wait_s = 2.0
    yield double
    promotions.replays, promotions.wait_s = kept


async def propose(catalog: Any, template_id: str, prompt: str) -> dict[str, Any]:
    recipe = (await catalog.request("GET", f"/api/workflow-recipes/{template_id}")).json()
    steps = [{k: v for k, v in s.items() if k != "agent"} for s in recipe["steps"]]
    steps[1]["prompt_template"] = prompt
    response = await catalog.request("POST", f"/api/workflow-recipes/{template_id}/versions", json={"steps": steps})
    assert response.status_code == 201, response.text
    version: dict[str, Any] = response.json()["version"]
    return version


async def promote(catalog: Any, template_id: str, revision: int) -> httpx.Response:
    response: httpx.Response = await catalog.request(
        "POST", f"/api/workflow-recipes/{template_id}/versions/{revision}/promote"
    )
    return response


async def test_a_proposed_version_is_not_current_until_promoted_and_the_report_stays_on_it(
    catalog: Any, executor: ExecutorDouble
) -> None:
    recipe = await catalog.recipe()
    template_id = recipe["template_id"]
    version = await propose(catalog, template_id, "Summarise {steps.fetch.output} in three lines")
    assert (version["revision"], version["status"], version["base_revision"]) == (2, "proposed", 1)
    assert version["changed_fields"] == ["steps"]
    current = (await catalog.request("GET", f"/api/workflow-recipes/{template_id}")).json()
    assert current["revision"] == 2 and current["steps"][1]["prompt_template"] == "Summarise {steps.fetch.output}"
    # What the executor's replay reads: the version at its revision.
    as_of = (await catalog.request("GET", f"/api/workflow-recipes/{template_id}/history?revision=2")).json()
    assert as_of["recipe"]["steps"][1]["prompt_template"] == "Summarise {steps.fetch.output} in three lines"

    promoted = await promote(catalog, template_id, 2)
    assert promoted.status_code == 200, promoted.text
    body = promoted.json()
    assert body["status"] == "promoted" and body["recipe"]["revision"] == 3
    assert body["recipe"]["steps"][1]["prompt_template"] == "Summarise {steps.fetch.output} in three lines"
    # The last finished executions, replays and unfinished ones left out, each replayed with the version.
    assert [(s["execution_id"], s["revision"]) for s in executor.started] == [("e-3", 2), ("e-2", 2)]
    assert executor.callers == {"user-1"}
    report = body["report"]
    assert report["promoted"] and report["executions_replayed"] == 2 and report["quality_delta"] == 0.0
    current = (await catalog.request("GET", f"/api/workflow-recipes/{template_id}")).json()
    assert current["revision"] == 3 and current["steps"][1]["prompt_template"].endswith("in three lines")
    kept = (await catalog.request("GET", f"/api/workflow-recipes/{template_id}/versions/2")).json()
    assert kept["status"] == "promoted" and kept["report"] == report
    again = await promote(catalog, template_id, 2)
    assert again.status_code == 409 and again.json()["code"] == "invalid_transition"


async def test_a_version_that_lowers_quality_is_refused_with_the_replay_report(
    catalog: Any, executor: ExecutorDouble
) -> None:
    recipe = await catalog.recipe()
    template_id = recipe["template_id"]
    version = await propose(catalog, template_id, "Summarise badly")
    executor.replay_quality = 0.4
    refused = await promote(catalog, template_id, version["revision"])
    assert refused.status_code == 409, refused.text
    body = refused.json()
    assert body["code"] == "promotion_refused"
    assert body["reasons"] == [
        "quality would drop: the replays score 0.40 on average against 0.95 for the executions they replay "
        "(-0.55, tolerance 0.00)"
    ]
    report = body["report"]
    assert (report["promoted"], report["baseline_quality"], report["candidate_quality"]) == (False, 0.95, 0.4)
    assert [r["execution_id"] for r in report["replays"]] == ["e-3", "e-2"]
    assert report["replays"][0]["changed_steps"] == ["summarise"]
    current = (await catalog.request("GET", f"/api/workflow-recipes/{template_id}")).json()
    assert current["steps"][1]["prompt_template"] == "Summarise {steps.fetch.output}"
    listed = (await catalog.request("GET", f"/api/workflow-recipes/{template_id}/versions")).json()
    assert [(v["revision"], v["status"]) for v in listed["items"]] == [(2, "refused")]
    assert listed["items"][0]["report"] == report


async def test_a_cost_over_the_ceiling_is_refused(catalog: Any, executor: ExecutorDouble) -> None:
    recipe = await catalog.recipe()
    version = await propose(catalog, recipe["template_id"], "Summarise at length")
    executor.replay_cost = 0.002
    refused = await promote(catalog, recipe["template_id"], version["revision"])
    assert refused.status_code == 409 and refused.json()["code"] == "promotion_refused"
    assert refused.json()["reasons"][0].startswith("cost would exceed the ceiling")


async def test_replays_still_running_answer_202_and_the_next_call_picks_them_up(
    catalog: Any, executor: ExecutorDouble
) -> None:
    recipe = await catalog.recipe()
    version = await propose(catalog, recipe["template_id"], "Summarise slowly")
    executor.finished = False
    pending = await promote(catalog, recipe["template_id"], version["revision"])
    assert pending.status_code == 202, pending.text
    assert pending.json()["version"]["status"] == "replaying"
    assert len(pending.json()["version"]["replays"]) == 2
    executor.finished = True
    done = await promote(catalog, recipe["template_id"], version["revision"])
    assert done.status_code == 200, done.text
    assert len(executor.started) == 2  # the same replays, not new ones


async def test_a_version_of_a_recipe_changed_since_is_stale(catalog: Any, executor: ExecutorDouble) -> None:
    recipe = await catalog.recipe()
    template_id = recipe["template_id"]
    version = await propose(catalog, template_id, "Summarise, v2")
    changed = await catalog.request("PUT", f"/api/workflow-recipes/{template_id}", json={"description": "changed"})
    assert changed.status_code == 200, changed.text
    stale = await promote(catalog, template_id, version["revision"])
    assert stale.status_code == 409 and stale.json()["code"] == "version_stale"


async def test_promotion_needs_the_executions_run_scope(catalog: Any, executor: ExecutorDouble) -> None:
    recipe = await catalog.recipe()
    version = await propose(catalog, recipe["template_id"], "Summarise, scoped")
    headers = catalog.headers(scopes=("recipes:read", "recipes:write"))
    response = await catalog.http.post(
        f"/api/workflow-recipes/{recipe['template_id']}/versions/{version['revision']}/promote", headers=headers
    )
    assert response.status_code == 403
    assert executor.started == []
