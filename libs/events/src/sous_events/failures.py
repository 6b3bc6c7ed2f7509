"""Failure classes: what is worth retrying and what never will succeed.

The consumer runner and the outbox relay decide with these what to do about an error:
- transient (the database or the broker is briefly away, a lock or serialization conflict): retry
  without limit, with capped backoff; the record or row is never given up on;
- permanent for a record (undecodable, fails validation, a handler that fails the same way each time):
  the consumer dead-letters it after its attempts;
- unsendable for an outbox row (the broker refuses it for good, e.g. too large): the relay parks it.
"""

from __future__ import annotations

import asyncio
import ssl

from aiokafka.errors import (
    InvalidTopicError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    NoBrokersAvailable,
    RecordListTooLargeError,
    RecordTooLargeError,
    UnsupportedForMessageFormatError,
)
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

# SQLSTATEs that say "try again": serialization failure, deadlock, lock timeout, statement timeout (query
# canceled), and the connection and server-availability classes (08 connection exception, 53 resources,
# 57P01-57P03 admin shutdown / crash shutdown / cannot connect now).
_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01", "55P03", "57014", "57P01", "57P02", "57P03"})
_TRANSIENT_SQLSTATE_CLASSES = ("08", "53")

# OSErrors about local files are bugs or configuration, not a network that will come back.
_LOCAL_OS_ERRORS = (FileNotFoundError, FileExistsError, PermissionError, IsADirectoryError, NotADirectoryError)

_UNSENDABLE = (
    MessageSizeTooLargeError,
    RecordTooLargeError,
    RecordListTooLargeError,
    InvalidTopicError,
    UnsupportedForMessageFormatError,
)


def sqlstate(exc: BaseException) -> str | None:
    """The PostgreSQL error code carried by an asyncpg error, bare or wrapped by SQLAlchemy."""
    for candidate in _chain(exc):
        code = getattr(candidate, "sqlstate", None)
        if isinstance(code, str):
            return code
    return None


def error_detail(exc: BaseException) -> str:
    """The DETAIL PostgreSQL gave with the error ("" when none), bare or wrapped by SQLAlchemy."""
    for candidate in _chain(exc):
        detail = getattr(candidate, "detail", None)
        if isinstance(detail, str):  # SQLAlchemy's own `detail` is a list of its notes, not the server's
            return detail
    return ""


def is_transient(exc: BaseException) -> bool:
    """True when the same work is expected to succeed once the infrastructure is back."""
    code = sqlstate(exc)
    if code is not None:
        return code in _TRANSIENT_SQLSTATES or code.startswith(_TRANSIENT_SQLSTATE_CLASSES)
    for candidate in _chain(exc):
        if isinstance(candidate, OperationalError | InterfaceError | PoolTimeout):
            return True
        if isinstance(candidate, DBAPIError) and candidate.connection_invalidated:
            return True
        if isinstance(candidate, ConnectionError | TimeoutError | asyncio.TimeoutError | ssl.SSLError):
            return True
        if isinstance(candidate, OSError) and not isinstance(candidate, _LOCAL_OS_ERRORS):
            return True
        if type(candidate).__module__.startswith("asyncpg") and _asyncpg_transient(candidate):
            return True
        if isinstance(candidate, KafkaConnectionError | KafkaTimeoutError | NoBrokersAvailable):
            return True
        if isinstance(candidate, KafkaError) and getattr(candidate, "retriable", False):
            return True
    return False


def is_unsendable(exc: BaseException) -> bool:
    """True when the broker will refuse this record however often it is sent."""
    return any(isinstance(candidate, _UNSENDABLE) for candidate in _chain(exc))


def describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:2000]


def _asyncpg_transient(exc: BaseException) -> bool:
    import asyncpg

    return isinstance(
        exc,
        asyncpg.exceptions.ConnectionDoesNotExistError
        | asyncpg.exceptions.InterfaceError
        | asyncpg.exceptions.CannotConnectNowError
        | asyncpg.exceptions.TooManyConnectionsError,
    )


def _chain(exc: BaseException) -> list[BaseException]:
    """The error, what it wraps (SQLAlchemy's .orig) and its explicit causes, without looping.

    Implicit context is left out: a handler that turns a caught connection error into its own error
    has decided what the failure means.
    """
    seen: list[BaseException] = []
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        pending.extend([getattr(current, "orig", None), current.__cause__])
    return seen
