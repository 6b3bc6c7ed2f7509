"""The unit of work's runner: retries a lost write race, gives up with a Conflict, never retries anything else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import cast

import pytest
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sous_events.store import ConcurrencyConflict
from sous_service.caller import Caller
from sous_service.commands import Command
from sous_service.domain_errors import Conflict, NotFound
from sous_service.unit_of_work import UnitOfWork, UnitOfWorks, is_write_conflict

pytestmark = pytest.mark.unit

CALLER = Caller(workspace_id="w1", user_id="u1")


class FakeSession:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def __aenter__(self) -> FakeSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[None]:
        try:
            yield
        except BaseException:
            self.log.append("rollback")
            raise
        self.log.append("commit")


class Sessions:
    def __init__(self) -> None:
        self.log: list[str] = []

    def __call__(self) -> FakeSession:
        return FakeSession(self.log)


def uows(sessions: Sessions, attempts: int = 3) -> UnitOfWorks:
    return UnitOfWorks(cast(async_sessionmaker[AsyncSession], sessions), producer="test", attempts=attempts)


class Ping(Command):
    value: int


class SerializationFailure(Exception):
    sqlstate = "40001"


def test_commands_are_frozen_and_strict() -> None:
    ping = Ping(value=1)
    with pytest.raises(ValueError):
        ping.value = 2  # type: ignore[misc]
    with pytest.raises(ValueError):
        Ping(value=1, other=2)  # type: ignore[call-arg]


async def test_a_lost_race_runs_the_handler_again_in_a_new_transaction() -> None:
    sessions = Sessions()
    calls: list[UnitOfWork] = []

    async def handler(command: Ping, uow: UnitOfWork) -> int:
        calls.append(uow)
        if len(calls) == 1:
            raise ConcurrencyConflict("Recipe", "r1", 3)
        return command.value * 10

    assert await uows(sessions).run(handler, Ping(value=4), CALLER) == 40
    assert sessions.log == ["rollback", "commit"]
    assert calls[0] is not calls[1] and calls[1].caller == CALLER


async def test_a_serialization_failure_or_deadlock_is_a_lost_race_too() -> None:
    sessions = Sessions()
    failures = iter([DBAPIError("UPDATE", {}, SerializationFailure()), None])

    async def handler(command: Ping, uow: UnitOfWork) -> str:
        failure = next(failures)
        if failure is not None:
            raise failure
        return "done"

    assert await uows(sessions).run(handler, Ping(value=1), CALLER) == "done"
    assert sessions.log == ["rollback", "commit"]


async def test_after_the_last_attempt_the_race_is_a_revision_conflict() -> None:
    sessions = Sessions()

    async def handler(command: Ping, uow: UnitOfWork) -> None:
        raise ConcurrencyConflict("Listing", "l1", 1)

    with pytest.raises(Conflict) as refused:
        await uows(sessions, attempts=2).run(handler, Ping(value=1), CALLER)
    assert refused.value.code == "revision_conflict"
    assert refused.value.detail == "Listing 'l1' was changed concurrently; reload and retry"
    assert sessions.log == ["rollback", "rollback"]


async def test_attempts_can_be_narrowed_per_run() -> None:
    sessions = Sessions()

    async def handler(command: Ping, uow: UnitOfWork) -> None:
        raise ConcurrencyConflict("Recipe", "r1", 1)

    with pytest.raises(Conflict):
        await uows(sessions, attempts=5).run(handler, Ping(value=1), CALLER, attempts=1)
    assert sessions.log == ["rollback"]


@pytest.mark.parametrize(
    "error",
    [NotFound("recipe", "r1"), ValueError("a bug"), OperationalError("SELECT 1", {}, ConnectionResetError())],
    ids=["domain refusal", "bug", "database gone"],
)
async def test_anything_else_rolls_back_once_and_propagates(error: Exception) -> None:
    sessions = Sessions()

    async def handler(command: Ping, uow: UnitOfWork) -> None:
        raise error

    with pytest.raises(type(error)):
        await uows(sessions).run(handler, Ping(value=1), CALLER)
    assert sessions.log == ["rollback"]


def test_write_conflicts_are_told_apart() -> None:
    assert is_write_conflict(ConcurrencyConflict("Recipe", "r", 1))
    assert is_write_conflict(DBAPIError("x", {}, SerializationFailure()))
    assert not is_write_conflict(OperationalError("x", {}, ConnectionResetError()))
    assert not is_write_conflict(ValueError())


def test_a_joined_unit_of_work_shares_the_given_session() -> None:
    session = cast(AsyncSession, object())
    uow = uows(Sessions()).joined(session, CALLER)
    assert uow.session is session and uow.caller is CALLER and uow.producer == "test"


def test_the_caller_of_an_event_is_its_actor_caused_by_it() -> None:
    from sous_events.envelope import Actor, Envelope

    envelope = Envelope(
        event_type="RecipeInstalled",
        producer="marketplace",
        workspace_id="w2",
        aggregate_type="Install",
        aggregate_id="i1",
        aggregate_version=1,
        actor=Actor(user_id="u9", auth_type="api_key"),
        correlation_id="corr",
        payload={},
    )
    caller = Caller.from_event(envelope, user_id="installer")
    assert (caller.workspace_id, caller.user_id, caller.auth_type) == ("w2", "installer", "api_key")
    assert (caller.correlation_id, caller.causation_id) == ("corr", envelope.event_id)
    assert Caller.from_event(envelope).user_id == "u9"
    assert not caller.privileged and Caller("w", "s", auth_type="system").privileged


async def test_a_service_may_word_the_final_refusal_itself() -> None:
    sessions = Sessions()

    async def handler(command: Ping, uow: UnitOfWork) -> None:
        raise ConcurrencyConflict("Execution", "e1", 4)

    def too_fast(error: BaseException) -> Conflict:
        return Conflict("the execution is changing too fast; retry")

    with pytest.raises(Conflict) as refused:
        await uows(sessions, attempts=2).run(handler, Ping(value=1), CALLER, conflict=too_fast)
    assert (refused.value.code, refused.value.detail) == ("conflict", "the execution is changing too fast; retry")


def test_an_event_can_name_the_moment_its_payload_already_carries() -> None:
    from datetime import UTC, datetime

    from sous_events.events import AgentRemoved

    uow = uows(Sessions()).joined(cast(AsyncSession, object()), CALLER)
    payload = AgentRemoved(agent_id="a1")
    at = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    named = uow.event(payload, aggregate_id="a1", aggregate_version=1, occurred_at=at)
    assert named.occurred_at == at and (named.workspace_id, named.actor.user_id) == ("w1", "u1")
    assert uow.event(payload, aggregate_id="a1", aggregate_version=1).occurred_at > at.replace(year=2020)


async def test_after_commit_runs_once_committed_and_after_rollback_for_each_attempt_that_did_not() -> None:
    sessions = Sessions()
    attempts = 0

    async def handler(command: Ping, uow: UnitOfWork) -> int:
        nonlocal attempts
        attempts += 1
        tried = attempts
        uow.after_commit(lambda: sessions.log.append(f"started {tried}"))
        uow.after_rollback(lambda: sessions.log.append(f"released {tried}"))
        if tried == 1:
            raise ConcurrencyConflict("Execution", "e1", 0)
        return command.value

    assert await uows(sessions).run(handler, Ping(value=7), CALLER) == 7
    assert sessions.log == ["rollback", "released 1", "commit", "started 2"]


async def test_a_refused_handler_runs_its_rollback_actions_and_never_its_commit_actions() -> None:
    sessions = Sessions()

    async def handler(command: Ping, uow: UnitOfWork) -> int:
        uow.after_commit(lambda: sessions.log.append("started"))
        uow.after_rollback(lambda: sessions.log.append("released"))
        raise NotFound("recipe", "r1")

    with pytest.raises(NotFound):
        await uows(sessions).run(handler, Ping(value=1), CALLER)
    assert sessions.log == ["rollback", "released"]


def test_a_joined_unit_settles_its_actions_once_when_its_owner_says_how_the_transaction_ended() -> None:
    log: list[str] = []
    uow = uows(Sessions()).joined(cast(AsyncSession, object()), CALLER)
    uow.after_commit(lambda: log.append("started"))
    uow.after_rollback(lambda: log.append("released"))
    uow.committed()
    uow.committed()
    uow.rolled_back()
    assert log == ["started"]
