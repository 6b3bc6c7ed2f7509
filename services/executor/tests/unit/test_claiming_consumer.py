"""A runner's claim reads the envelope of a requested run, never its payload (recipe, agents, inputs)."""

from __future__ import annotations

from typing import Any

import pytest

from sous_events import events as ev
from sous_events.envelope import Envelope
from sous_events.registry import make_event
from sous_executor.entrypoints.consumers import claiming_consumer

pytestmark = pytest.mark.unit


async def test_a_requested_run_is_claimed_and_started_without_decoding_its_payload() -> None:
    claimed: list[tuple[str, str]] = []
    started: list[str] = []

    async def claim(_session: Any, envelope: Envelope) -> bool:
        claimed.append((envelope.aggregate_id, envelope.workspace_id))
        return True

    spec = claiming_consumer("runners", ev.ExecutionRequested, claim, started.append)
    requested = make_event(
        ev.ExecutionRequested(execution_id="e1", template_id="t", recipe={"template_id": "t", "steps": []}),
        producer="executor",
        workspace_id="ws",
        aggregate_id="e1",
        aggregate_version=1,
    )
    # A payload its registered model would refuse: only a view that reads none of it lets the claim through.
    unread = requested.model_copy(update={"payload": {**requested.payload, "recipe": "not a recipe"}})
    await spec.dispatch()(None, unread)  # type: ignore[arg-type]
    assert spec.after_commit is not None
    await spec.after_commit(unread)
    assert claimed == [("e1", "ws")] and started == ["e1"]
