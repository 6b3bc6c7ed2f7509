"""The learning_data known by version, and the joined units of work that wait for their record's commit."""

from __future__ import annotations

from sous_events.contracts import LearningData
from sous_events.envelope import Envelope
from sous_quality.adapters.known_learning import KnownLearningData
from sous_quality.entrypoints.consumers import AwaitingCommit
from sous_service.caller import Caller
from sous_service.unit_of_work import UnitOfWork


def test_learning_data_is_known_at_its_version_only() -> None:
    known = KnownLearningData(capacity=2)
    data = LearningData(last_analyzed_at="2026-01-01T00:00:00+00:00")
    known.put("ws", "r1", 4, data)
    assert known.get("ws", "r1", 4) is data
    assert known.get("ws", "r1", 6) is None  # another writer moved the stream on
    assert known.get("ws", "r2", 4) is None


def test_the_least_recently_used_recipe_goes_first() -> None:
    known = KnownLearningData(capacity=2)
    data = LearningData()
    known.put("ws", "r1", 2, data)
    known.put("ws", "r2", 2, data)
    assert known.get("ws", "r1", 2) is data
    known.put("ws", "r3", 2, data)
    assert known.get("ws", "r2", 2) is None
    assert known.get("ws", "r1", 2) is data


def _uow() -> UnitOfWork:
    return UnitOfWork(None, Caller(workspace_id="ws", user_id="u"), producer="quality", store=None)  # type: ignore[arg-type]


async def test_a_joined_unit_of_work_commits_with_its_record_once() -> None:
    awaiting = AwaitingCommit()
    envelope = Envelope(
        event_type="ExecutionFinished",
        producer="executor",
        workspace_id="ws",
        aggregate_type="Execution",
        aggregate_id="e1",
        aggregate_version=9,
    )
    done: list[str] = []
    first, retried = _uow(), _uow()
    first.after_commit(lambda: done.append("first try"))
    retried.after_commit(lambda: done.append("retried"))
    awaiting.add(envelope, first)
    awaiting.add(envelope, retried)  # the batch rolled back and the record was applied again
    await awaiting.committed(envelope)
    await awaiting.committed(envelope)
    assert done == ["retried"]
