"""Whether the executor says a run finished: the first step of assessing a run the copy has not caught up on."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from sous_quality.adapters.executor_reads import ExecutionCatchUp
from sous_service.owner_reads import OwnerReads

pytestmark = pytest.mark.unit


def catch_up(status: int, body: dict[str, Any]) -> ExecutionCatchUp:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/workflow-recipes/digest/executions/e1"
        return httpx.Response(status, json=body)

    owner = OwnerReads("http://executor", "s", "executor", reader="quality", transport=httpx.MockTransport(answer))
    return ExecutionCatchUp(owner, None, wait_s=0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "body", "finished"),
    [
        (200, {"status": "failed"}, True),
        (200, {"status": "completed"}, True),
        (200, {"status": "running"}, False),
        (404, {"code": "not_found"}, False),
    ],
)
async def test_only_a_run_the_executor_says_ended_is_waited_for(
    status: int, body: dict[str, Any], finished: bool
) -> None:
    assert await catch_up(status, body).finished_at_owner("ws", "digest", "e1") is finished
