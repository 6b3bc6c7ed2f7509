"""A start refused at its commit: the database's refusal read back as the 429 the caller is given."""

from __future__ import annotations

import pytest

from sous_executor.adapters.admission import TOO_MANY_ACTIVE, TOO_MANY_TODAY, Refusal, refusal_of
from sous_executor.quotas import refused

pytestmark = pytest.mark.unit


class ServerError(Exception):
    """What the driver raises: the SQLSTATE and the server's DETAIL."""

    def __init__(self, sqlstate: str, detail: str) -> None:
        super().__init__("refused")
        self.sqlstate = sqlstate
        self.detail = detail


class Wrapped(Exception):
    """What SQLAlchemy raises around it: the driver's error as `orig`, and a `detail` list of its own notes."""

    def __init__(self, orig: BaseException) -> None:
        super().__init__("wrapped")
        self.orig = orig
        self.detail: list[str] = []


def test_another_failure_is_no_refusal() -> None:
    assert refusal_of(Wrapped(ServerError("23505", "Key (id)=(1) already exists."))) is None
    assert refusal_of(ValueError("no database here")) is None


def test_too_many_executions_in_flight_is_a_concurrency_limit() -> None:
    refusal = refusal_of(Wrapped(ServerError(TOO_MANY_ACTIVE, "4/3")))
    assert refusal == Refusal(TOO_MANY_ACTIVE, counted=4, limit=3)
    answer = refused(refusal)
    assert answer.code == "concurrency_limit" and answer.retry_after_s == 5
    assert answer.extra["limits"] == {"max_concurrent_executions": 3, "active_executions": 3}


def test_too_many_runs_today_is_a_quota_until_midnight() -> None:
    refusal = refusal_of(ServerError(TOO_MANY_TODAY, "3/2"))
    assert refusal == Refusal(TOO_MANY_TODAY, counted=3, limit=2)
    answer = refused(refusal)
    assert answer.code == "quota_exceeded"
    assert answer.extra["limits"] == {"runs_per_day": 2, "runs_today": 2}
    assert 1 <= answer.retry_after_s <= 24 * 3600 + 1


def test_an_unreadable_detail_still_refuses() -> None:
    refusal = refusal_of(ServerError(TOO_MANY_ACTIVE, ""))
    assert refusal is not None and refused(refusal).code == "concurrency_limit"
