"""Which failures are retried without limit, which are dead-lettered, which park an outbox row."""

import asyncpg
import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError, RequestTimedOutError
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError

from sous_events.failures import is_transient, is_unsendable, sqlstate

pytestmark = pytest.mark.unit


def _validation_error() -> ValidationError:
    class Model(BaseModel):
        n: int

    try:
        Model.model_validate({"n": "x"})
    except ValidationError as exc:
        return exc
    raise AssertionError("expected a validation error")


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.exceptions.SerializationError("could not serialize"),
        asyncpg.exceptions.DeadlockDetectedError("deadlock"),
        asyncpg.exceptions.LockNotAvailableError("lock timeout"),
        asyncpg.exceptions.QueryCanceledError("statement timeout"),
        asyncpg.exceptions.AdminShutdownError("terminating connection"),
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
        OperationalError("SELECT 1", {}, ConnectionRefusedError()),
        InterfaceError("SELECT 1", {}, Exception("connection is closed")),
        ConnectionRefusedError(111, "refused"),
        OSError("Multiple exceptions: [Errno 111] Connect call failed"),
        TimeoutError(),
        KafkaConnectionError("broker gone"),
        RequestTimedOutError(),
    ],
)
def test_infrastructure_failures_are_transient(error: BaseException) -> None:
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        ValueError("bad payload"),
        KeyError("metrics"),
        _validation_error(),
        asyncpg.exceptions.UniqueViolationError("duplicate key"),
        IntegrityError("INSERT", {}, asyncpg.exceptions.UniqueViolationError("duplicate key")),
        FileNotFoundError("template.txt"),
        MessageSizeTooLargeError(),
    ],
)
def test_bugs_and_bad_data_are_permanent(error: BaseException) -> None:
    assert not is_transient(error)


def test_a_wrapped_sqlstate_is_found() -> None:
    wrapped = OperationalError("UPDATE", {}, asyncpg.exceptions.DeadlockDetectedError("deadlock"))
    assert sqlstate(wrapped) == "40P01" and is_transient(wrapped)


def test_a_handler_that_replaces_a_connection_error_decides_its_meaning() -> None:
    try:
        try:
            raise ConnectionResetError()
        except ConnectionResetError:
            raise ValueError("no such agent") from None
    except ValueError as exc:
        assert not is_transient(exc)


def test_only_refusals_of_the_record_itself_are_unsendable() -> None:
    assert is_unsendable(MessageSizeTooLargeError())
    assert not is_unsendable(KafkaConnectionError())
    assert not is_unsendable(RequestTimedOutError())
