"""The runner consumer passes over the requests of runs this instance claimed with the request itself."""

from __future__ import annotations

from unittest.mock import MagicMock

from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from sous_events import events as ev
from sous_events.registry import make_event
from sous_executor.config import ExecutorSettings
from sous_executor.domain.execution import Execution
from sous_executor.engine import step_engine as step_engine_module
from sous_executor.engine.step_engine import StepEngine
from sous_executor.entrypoints.consumers import runner_consumer
from sous_service.statement_pool import StatementPool


class UnitOfWork:
    def __init__(self) -> None:
        self.on_commit: list[object] = []

    def after_commit(self, action: object) -> None:
        self.on_commit.append(action)

    def after_rollback(self, action: object) -> None:
        return None


def engine() -> StepEngine:
    # Never connected: the engine only needs binds to build its statements on.
    unused = create_async_engine("postgresql+asyncpg://unused@localhost/unused")
    return StepEngine(
        settings=ExecutorSettings(max_inflight=4),
        sessions=async_sessionmaker(unused),
        store=MagicMock(),
        router=MagicMock(),
        clients=MagicMock(),
        statements=StatementPool(unused, max_size=1),
    )


def requested(execution_id: str) -> list[object]:
    payload = ev.ExecutionRequested(execution_id=execution_id, template_id="t", recipe={"template_id": "t"})
    return [make_event(payload, producer="executor", workspace_id="w", aggregate_id=execution_id, aggregate_version=1)]


def test_a_request_claimed_here_is_passed_over_once_it_has_committed() -> None:
    steps = engine()
    steps.spawn = MagicMock()  # type: ignore[method-assign]
    spec = runner_consumer(MagicMock(), steps)
    assert spec.passes_over is not None
    uow = UnitOfWork()
    assert steps.reserve_here(uow, Execution(), requested("e1"))  # type: ignore[arg-type]
    assert not spec.passes_over(b"e1")  # not committed yet: the consumer claims it as any other
    for action in uow.on_commit:
        action()  # type: ignore[operator]
    assert spec.passes_over(b"e1")
    # Read once: a redelivery goes the ordinary way (its claim finds the lease taken).
    assert not spec.passes_over(b"e1") and not spec.passes_over(b"e2") and not spec.passes_over(None)


def test_what_is_remembered_is_bounded() -> None:
    steps = engine()
    steps.spawn = MagicMock()  # type: ignore[method-assign]
    setattr(step_engine_module, "CLAIMED_ON_ACCEPT_KEPT", 2)  # noqa: B010
    try:
        for execution_id in ("a", "b", "c"):
            steps._remember_claimed(execution_id)
        assert [steps.claimed_on_accept(k) for k in (b"a", b"b", b"c")] == [False, True, True]
    finally:
        setattr(step_engine_module, "CLAIMED_ON_ACCEPT_KEPT", 10_000)  # noqa: B010
