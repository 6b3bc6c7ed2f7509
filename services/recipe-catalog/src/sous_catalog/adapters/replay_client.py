"""The executor's what-if replay and the quality service's assessments, as a promotion uses them.

Every call is signed as the caller who asked for the promotion (`ContextAuth`): the executor and quality
apply that caller's workspace, scopes and quotas to the replays it starts, as if it had started them.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from sous_service.internal_client import ContextAuth
from sous_service.internal_context import InternalContext

logger = logging.getLogger("sous.catalog.replays")

RECIPES = "/api/workflow-recipes"
FINISHED = ("completed", "failed", "cancelled")
REPLAY_TRIGGER = "replay"
PAGE = 100


class ReplayUnavailable(Exception):
    """The executor could not be asked (unreachable, or it refused the replay)."""


class _Execution(BaseModel):
    model_config = ConfigDict(extra="ignore")

    execution_id: str
    status: str
    triggered_by: str = "manual"


class _Executions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    items: list[_Execution]
    total: int


class _ReplayStarted(BaseModel):
    model_config = ConfigDict(extra="ignore")

    replay_execution_id: str


class ReplayClient:
    def __init__(
        self,
        executor_url: str,
        quality_url: str,
        internal_secret: str,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.executor_url = executor_url.rstrip("/")
        self.quality_url = quality_url.rstrip("/")
        self.secret = internal_secret
        self.timeout_s = timeout_s
        self.transport = transport

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=self.timeout_s, transport=self.transport)

    async def latest_finished(self, caller: InternalContext, template_id: str, count: int) -> list[str]:
        """The ids of the recipe's last `count` finished executions, newest first; replays are not counted."""
        found: list[str] = []
        skip = 0
        async with self._client() as client:
            while len(found) < count:
                try:
                    response = await client.get(
                        f"{self.executor_url}{RECIPES}/{template_id}/executions",
                        params={"skip": skip, "limit": PAGE},
                        auth=ContextAuth(caller, self.secret, "executor"),
                    )
                except httpx.HTTPError as exc:
                    raise ReplayUnavailable(f"the executor could not list the executions: {exc}") from exc
                if response.status_code == 404:
                    return found
                if response.status_code != 200:
                    raise ReplayUnavailable(f"the executor answered {response.status_code} listing the executions")
                page = _Executions.model_validate_json(response.content)
                for item in page.items:
                    if item.status in FINISHED and item.triggered_by != REPLAY_TRIGGER and len(found) < count:
                        found.append(item.execution_id)
                skip += PAGE
                if skip >= page.total or not page.items:
                    return found
        return found

    async def start_replay(self, caller: InternalContext, template_id: str, execution_id: str, revision: int) -> str:
        """Start the what-if replay of one execution with the recipe at `revision`; the replay's execution id."""
        path = f"{RECIPES}/{template_id}/executions/{execution_id}/replay"
        try:
            async with self._client() as client:
                response = await client.post(
                    f"{self.executor_url}{path}",
                    json={"revision": revision},
                    auth=ContextAuth(caller, self.secret, "executor"),
                )
        except httpx.HTTPError as exc:
            raise ReplayUnavailable(f"the executor could not start the replay of '{execution_id}': {exc}") from exc
        if response.status_code != 202:
            raise ReplayUnavailable(
                f"the executor refused the replay of '{execution_id}' ({response.status_code}): {response.text[:300]}"
            )
        try:
            return _ReplayStarted.model_validate_json(response.content).replay_execution_id
        except ValidationError as exc:
            raise ReplayUnavailable(f"the executor answered an unexpected replay: {exc}") from exc

    async def report(self, caller: InternalContext, template_id: str, replay_execution_id: str) -> dict[str, Any]:
        """The executor's replay report (diff per step, totals, quality of both sides once assessed)."""
        path = f"{RECIPES}/{template_id}/executions/{replay_execution_id}/replay-report"
        try:
            async with self._client() as client:
                response = await client.get(
                    f"{self.executor_url}{path}", auth=ContextAuth(caller, self.secret, "executor")
                )
        except httpx.HTTPError as exc:
            raise ReplayUnavailable(f"the executor could not report replay '{replay_execution_id}': {exc}") from exc
        if response.status_code != 200:
            raise ReplayUnavailable(f"the executor answered {response.status_code} for replay '{replay_execution_id}'")
        body: dict[str, Any] = response.json()
        return body

    async def quality_score(self, caller: InternalContext, template_id: str, execution_id: str) -> float | None:
        """The execution's quality score from the quality service (assessing it now if nobody did; an
        execution is assessed once, so this is the score it keeps). None while quality has not seen it finish."""
        if not self.quality_url:
            return None
        path = f"{RECIPES}/{template_id}/assess-quality"
        try:
            async with self._client() as client:
                response = await client.post(
                    f"{self.quality_url}{path}",
                    json={"execution_id": execution_id},
                    auth=ContextAuth(caller, self.secret, "quality"),
                )
        except httpx.HTTPError as exc:
            logger.info("quality could not score %s: %s", execution_id, exc)
            return None
        if response.status_code != 200:
            return None
        score = response.json().get("quality_score")
        return float(score) if isinstance(score, int | float) else None
