"""A consumer with an `after_batch`: its records' handlers, then that, in each batch's one transaction."""

from __future__ import annotations

from typing import Any

from sous_events import events as ev
from sous_events.envelope import Envelope
from sous_events.registry import make_event
from sous_service.config import ServiceSettings
from sous_service.runtime import ConsumerSpec, ServiceRuntime


def _envelope(run: str) -> Envelope:
    payload = ev.ExecutionStarted(execution_id=run, template_id="t", total_steps=1)
    return make_event(payload, producer="executor", workspace_id="ws", aggregate_id=run, aggregate_version=1)


async def test_after_batch_runs_once_after_the_batchs_records_in_their_session() -> None:
    seen: list[tuple[str, Any]] = []

    async def handle(session: Any, envelope: Envelope, payload: ev.ExecutionStarted) -> None:
        seen.append((payload.execution_id, session))

    async def batch_end(session: Any) -> None:
        seen.append(("end", session))

    runtime = ServiceRuntime.create(ServiceSettings(service_name="test", env="test"))
    try:
        spec = ConsumerSpec(name="g", handlers={ev.ExecutionStarted: handle}, after_batch=batch_end)
        runner = runtime.add_consumer(spec)
        assert runner.handler is None and runner.batch_handler is not None
        session = object()
        await runner.batch_handler(session, [_envelope("r1"), _envelope("r2")])  # type: ignore[arg-type]
        assert seen == [("r1", session), ("r2", session), ("end", session)]
        plain = runtime.add_consumer(ConsumerSpec(name="h", handlers={ev.ExecutionStarted: handle}))
        assert plain.batch_handler is None and plain.handler is not None
    finally:
        await runtime.engine.dispose()
