"""What the soak asks of the system: agents, a mix of recipes, and executions, through the gateway.

Every prompt carries the soak's run marker so the model server's call log can be matched against the
step attempts the executor recorded. Requests are retried through faults; a request whose fate is
unknown (sent, but no answer) is counted as ambiguous, and the execution it may have created is found
later in the executor's database rather than assumed.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from sous_gateway.tokens import mint_development_token

# A response that proves nothing happened (the gateway refused before forwarding) versus one that may
# have left an execution behind (the upstream may have acted before the answer was lost).
_SAFE_TO_RETRY = (httpx.ConnectError, httpx.ConnectTimeout)
_RETRYABLE_STATUS = {429, 500, 502, 503, 504}
HUGE_CHARS = 1_200_000  # above the broker's default 1 MiB record limit


@dataclass(frozen=True)
class RecipeKind:
    name: str
    weight: float
    mode: str
    steps: list[dict[str, Any]]


def recipe_kinds(marker: str) -> list[RecipeKind]:
    def step(step_id: str, order: int, text: str, **extra: Any) -> dict[str, Any]:
        # The tag first: a later step's prompt embeds earlier answers (and their tags) after its own.
        prompt = f"{marker} step={step_id} key={{input.key}} {text}"
        return {"step_id": step_id, "order": order, "prompt_template": prompt, **extra}

    return [
        RecipeKind(
            "sequential",
            0.30,
            "sequential",
            [
                step("outline", 1, "Outline {input.topic}"),
                step("draft", 2, "Draft from: {previous_output}"),
                step("polish", 3, "Polish: {previous_output}"),
            ],
        ),
        RecipeKind(
            "parallel",
            0.20,
            "parallel",
            [step(f"branch{i}", 1, f"Branch {i} about {{input.topic}}") for i in range(3)],
        ),
        RecipeKind(
            "dag",
            0.20,
            "parallel",
            [
                step("root", 1, "Root {input.topic}"),
                step("left", 2, "Left of {steps.root.output}", depends_on=["root"]),
                step("right", 2, "Right of {steps.root.output}", depends_on=["root"]),
                step("join", 3, "Join {steps.left.output} and {steps.right.output}", depends_on=["left", "right"]),
            ],
        ),
        RecipeKind(
            "retry",
            0.20,
            "sequential",
            [
                step(
                    "flaky",
                    1,
                    "Flaky {input.topic} [[fail:500:1:{input.key}-flaky]]",
                    error_handling="retry",
                    max_retries=3,
                    retry_delay=0.2,
                ),
                step("after", 2, "After: {previous_output}"),
            ],
        ),
        RecipeKind(
            "poison-nul",
            0.06,
            "sequential",
            [step("clean", 1, "Clean {input.topic}"), step("nul", 2, "Poison {input.topic} [[nul]]")],
        ),
        RecipeKind(
            "poison-huge",
            0.04,
            "sequential",
            [step("clean", 1, "Clean {input.topic}"), step("huge", 2, f"Huge {{input.topic}} [[huge:{HUGE_CHARS}]]")],
        ),
    ]


@dataclass
class Submission:
    index: int
    kind: str
    template_id: str
    execution_id: str | None = None
    ambiguous_attempts: int = 0


@dataclass
class WorkloadStats:
    submitted: list[Submission] = field(default_factory=list)
    refused: dict[int, int] = field(default_factory=dict)
    ambiguous: int = 0
    unanswered: int = 0


class WorkloadError(RuntimeError):
    """The soak itself is wrong (e.g. a 4xx the system is right to give); not a robustness finding."""


class Workload:
    def __init__(self, gateway_url: str, jwt_secret: str, seed: int, request_deadline_s: float = 600.0) -> None:
        self.run_id = f"chaos-{seed}-{uuid.uuid4().hex[:8]}"
        self.workspace = f"ws-{self.run_id}"
        self.rng = random.Random(seed)
        self.request_deadline_s = request_deadline_s
        token = mint_development_token(
            f"soak-{seed}", [self.workspace], roles=("admin",), ttl_s=12 * 3600, secret=jwt_secret
        )
        self.client = httpx.AsyncClient(
            base_url=gateway_url,
            timeout=httpx.Timeout(30.0, connect=5.0),
            headers={"Authorization": f"Bearer {token}", "X-Workspace-ID": self.workspace},
        )
        self.kinds = recipe_kinds(self.run_id)
        self.templates: dict[str, str] = {}
        self.agent_ids: list[str] = []
        self.stats = WorkloadStats()

    async def close(self) -> None:
        await self.client.aclose()

    async def _request(
        self,
        method: str,
        path: str,
        expect: int,
        *,
        also: tuple[int, ...] = (),
        wait_on: tuple[int, ...] = (),
        **kw: Any,
    ) -> tuple[httpx.Response | None, int]:
        """Retry through faults until `expect` or `also`; returns (response, ambiguous tries).

        `wait_on` are statuses that only mean "not yet" (e.g. 404 before a recipe reaches the executor).
        """
        deadline = time.monotonic() + self.request_deadline_s
        ambiguous = 0
        delay = 0.2
        while True:
            try:
                response = await self.client.request(method, path, **kw)
            except _SAFE_TO_RETRY:
                response = None
            except httpx.HTTPError:
                response = None
                ambiguous += 1
            if response is not None:
                if response.status_code == expect or response.status_code in also:
                    return response, ambiguous
                self.stats.refused[response.status_code] = self.stats.refused.get(response.status_code, 0) + 1
                if response.status_code not in _RETRYABLE_STATUS and response.status_code not in wait_on:
                    raise WorkloadError(f"{method} {path}: {response.status_code} {response.text[:300]}")
                if response.status_code >= 500:
                    ambiguous += 1
            if time.monotonic() > deadline:
                return None, ambiguous
            await asyncio.sleep(delay)
            delay = min(delay * 2, 3.0)

    async def setup(self) -> None:
        for name in ("researcher", "writer"):
            body: dict[str, Any] = {
                "name": f"{name}-{self.run_id}",
                "description": "soak agent",
                "model_config": {"provider": "offline", "model_id": "sous-offline-1"},
                "skills": [],
                "configuration": {"max_iterations": 2},
            }
            response, _ = await self._request("POST", "/api/agents", 201, json=body)
            if response is None:
                raise WorkloadError("could not create the soak's agents")
            self.agent_ids.append(response.json()["id"])
        for number, kind in enumerate(self.kinds):
            template_id = f"{kind.name}-{self.run_id}"
            steps = [{**s, "agent_id": self.agent_ids[i % 2]} for i, s in enumerate(kind.steps)]
            body = {
                "template_id": template_id,
                "name": f"Soak {kind.name} {number}",
                "description": "chaos soak recipe",
                "template_definition": {},
                "steps": steps,
                "inputs": {"topic": {"type": "string", "required": True}, "key": {"type": "string", "required": True}},
                "execution_config": {"mode": kind.mode, "auto_learning": True, "max_retries": 1, "retry_delay": 0.2},
            }
            # 409: an earlier try whose answer was lost created it.
            response, _ = await self._request("POST", "/api/workflow-recipes", 201, also=(409,), json=body)
            if response is None:
                raise WorkloadError(f"could not create recipe {template_id}")
            self.templates[kind.name] = template_id
        for template_id in self.templates.values():
            # The executor learns recipes from the catalog's events.
            response, _ = await self._request(
                "GET", f"/api/workflow-recipes/{template_id}/executions", 200, wait_on=(404,)
            )
            if response is None:
                raise WorkloadError(f"the executor never learned recipe {template_id}")

    def choose(self) -> RecipeKind:
        return self.rng.choices(self.kinds, weights=[k.weight for k in self.kinds])[0]

    async def submit(self, index: int) -> Submission:
        kind = self.choose()
        template_id = self.templates[kind.name]
        submission = Submission(index, kind.name, template_id)
        body = {"input_data": {"topic": f"topic {index}", "key": f"{self.run_id}-{index}"}}
        response, ambiguous = await self._request(
            "POST", f"/api/workflow-recipes/{template_id}/execute", 202, json=body
        )
        submission.ambiguous_attempts = ambiguous
        self.stats.ambiguous += ambiguous
        if response is None:
            self.stats.unanswered += 1
        else:
            submission.execution_id = str(response.json()["recipe_execution_id"])
        self.stats.submitted.append(submission)
        return submission
