"""The operators' API for failed deliveries, served by every service under `/admin`.

- `/admin/dlq...`: the dead-letter topics (shared by all services, so any service answers the same);
- `/admin/outbox/parked...`: this service's outbox rows the broker refused.
Every route needs the `ops:admin` scope in the signed internal context. The gateway does not route `/admin`:
operators call a service directly with a context signed by the internal secret (`sous dlq` does that).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from fastapi import APIRouter, FastAPI, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.ext.asyncio import AsyncEngine

from sous_events import dlq_ops, parking
from sous_events.kafka import KafkaConfig
from sous_service.errors import ApiError, InputInvalid, responses
from sous_service.web import require_scope

OPS_ADMIN = "ops:admin"
ADMIN_PREFIX = "/admin"


class AdminBackend(Protocol):
    engine: AsyncEngine
    kafka: KafkaConfig


class DeadLetterView(BaseModel):
    id: str = Field(description="`<dlq topic>:<partition>:<offset>`")
    topic: str = Field(description="the original topic")
    key: str
    event_id: str
    event_type: str
    consumer: str = Field(description="the consumer group that gave up on it")
    reason: str = Field(description="undecodable | invalid | handler")
    error_type: str
    error: str
    attempts: int
    source: str = Field(description="original topic/partition/offset")
    timestamp_ms: int
    redriven: bool = Field(description="already sent back by a re-drive of everything")


class DeadLetterDetail(DeadLetterView):
    traceback: str
    headers: dict[str, str]
    value: Any = Field(description="the original record, as JSON when it parses")


class DeadLetterList(BaseModel):
    items: list[DeadLetterView]
    total: int


class RedriveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[str] | None = Field(default=None, min_length=1, max_length=1000, description="dead-letter ids")
    all: bool = Field(default=False, description="every dead letter not re-driven yet")
    topic: str | None = Field(default=None, description="with `all`: only this topic's DLQ")

    @model_validator(mode="after")
    def _one_selection(self) -> RedriveRequest:
        if (self.ids is None) == (not self.all):
            raise ValueError("give either `ids` or `all: true`")
        return self


class RedriveResult(BaseModel):
    redriven: list[str]
    count: int


class ParkedView(BaseModel):
    id: int
    event_id: str
    topic: str
    key: str
    size: int = Field(description="bytes of the encoded event")
    attempts: int
    parked_at: datetime
    created_at: datetime
    last_error: str
    held_back: int = Field(description="later events of the same key waiting behind this one")


class ParkedList(BaseModel):
    service: str
    items: list[ParkedView]
    total: int


class ResendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[int] | None = Field(default=None, min_length=1, max_length=1000)
    all: bool = False

    @model_validator(mode="after")
    def _one_selection(self) -> ResendRequest:
        if (self.ids is None) == (not self.all):
            raise ValueError("give either `ids` or `all: true`")
        return self


class ResendResult(BaseModel):
    resent: list[int]
    count: int


class DiscardResult(BaseModel):
    discarded: int


def _topic_filter(topic: str | None) -> str | None:
    if topic is None:
        return None
    try:
        dlq_ops.dlq_topics(topic)
    except ValueError as exc:
        raise InputInvalid.single("topic", str(exc)) from exc
    return topic


def _broker_unavailable(exc: Exception) -> ApiError:
    return ApiError(503, "broker_unavailable", f"the broker did not answer: {type(exc).__name__}: {exc}")


def dlq_router(backend: AdminBackend, service_name: str) -> APIRouter:
    router = APIRouter(prefix=ADMIN_PREFIX, tags=["admin"], dependencies=[require_scope(OPS_ADMIN)])
    errors = responses(503)

    @router.get(
        "/dlq",
        response_model=DeadLetterList,
        summary="List dead letters",
        description="Records consumers gave up on (permanent failures), oldest first, across all DLQ topics or "
        "one. Needs the ops:admin scope.",
        responses=errors,
    )
    async def list_dlq(
        topic: str | None = Query(default=None, description="an original topic, e.g. sous.quality.v1"),
        include_redriven: bool = Query(default=True),
        limit: int = Query(default=100, ge=1, le=1000),
    ) -> DeadLetterList:
        try:
            letters = await dlq_ops.list_dead_letters(
                backend.kafka, topic=_topic_filter(topic), include_redriven=include_redriven
            )
        except (OSError, TimeoutError, RuntimeError) as exc:
            raise _broker_unavailable(exc) from exc
        items = [DeadLetterView(**d.summary()) for d in letters[:limit]]
        return DeadLetterList(items=items, total=len(letters))

    @router.get(
        "/dlq/{dead_letter_id}",
        response_model=DeadLetterDetail,
        summary="Show a dead letter",
        description="The record, why it failed (error, traceback, attempts) and where it came from.",
        responses=errors,
    )
    async def show_dlq(dead_letter_id: str) -> DeadLetterDetail:
        try:
            dlq_ops.parse_id(dead_letter_id)
            letter = await dlq_ops.get_dead_letter(backend.kafka, dead_letter_id)
        except dlq_ops.UnknownDeadLetter as exc:
            raise ApiError(404, "not_found", f"dead letter '{dead_letter_id}' not found") from exc
        except ValueError as exc:
            raise InputInvalid.single("dead_letter_id", str(exc)) from exc
        except (OSError, TimeoutError, RuntimeError) as exc:
            raise _broker_unavailable(exc) from exc
        return DeadLetterDetail(**letter.detail())

    @router.post(
        "/dlq/redrive",
        response_model=RedriveResult,
        summary="Re-drive dead letters",
        description="Sends dead letters back to their original topic, in DLQ order (a key's records keep their "
        "order). Idempotent: consumers skip events they applied already. `all` moves the re-drive cursor.",
        responses=errors,
    )
    async def redrive_dlq(body: RedriveRequest) -> RedriveResult:
        if body.ids is not None:
            for index, dead_letter_id in enumerate(body.ids):
                try:
                    dlq_ops.parse_id(dead_letter_id)
                except ValueError as exc:
                    raise InputInvalid.single(f"ids[{index}]", str(exc)) from exc
        try:
            sent = await dlq_ops.redrive(backend.kafka, ids=body.ids, topic=_topic_filter(body.topic))
        except dlq_ops.UnknownDeadLetter as exc:
            raise ApiError(404, "not_found", f"dead letters not found: {exc}") from exc
        except (OSError, TimeoutError, RuntimeError) as exc:
            raise _broker_unavailable(exc) from exc
        return RedriveResult(redriven=[d.id for d in sent], count=len(sent))

    @router.get(
        "/outbox/parked",
        response_model=ParkedList,
        summary="List parked outbox rows",
        description="This service's events the broker refused (e.g. too large), each holding back the later "
        "events of its key. Anything here needs an operator.",
        responses=errors,
    )
    async def list_parked(limit: int = Query(default=100, ge=1, le=1000)) -> ParkedList:
        rows = await parking.parked_rows(backend.engine, limit=limit)
        total = await parking.parked_count(backend.engine)
        return ParkedList(service=service_name, items=[ParkedView(**vars(r)) for r in rows], total=total)

    @router.get(
        "/outbox/parked/{row_id}",
        response_model=ParkedView,
        summary="Show a parked outbox row",
        description="One parked row with the broker's last refusal.",
        responses=errors,
    )
    async def show_parked(row_id: int) -> ParkedView:
        row = await parking.parked_row(backend.engine, row_id)
        if row is None:
            raise ApiError(404, "not_found", f"parked outbox row '{row_id}' not found")
        return ParkedView(**vars(row))

    @router.post(
        "/outbox/parked/resend",
        response_model=ResendResult,
        summary="Re-send parked outbox rows",
        description="Releases parked rows to the relay, which sends them in order (and parks a row again if the "
        "broker still refuses it). Rows that are not parked are ignored.",
        responses=errors,
    )
    async def resend_parked(body: ResendRequest) -> ResendResult:
        resent = await parking.resend(backend.engine, body.ids)
        return ResendResult(resent=resent, count=len(resent))

    @router.post(
        "/outbox/parked/{row_id}/discard",
        response_model=DiscardResult,
        summary="Discard a parked outbox row",
        description="Gives up on an event that can never be delivered: it stays in the event store but is not "
        "published, and the later events of its key flow again.",
        responses=errors,
    )
    async def discard_parked(row_id: int) -> DiscardResult:
        if not await parking.discard(backend.engine, row_id):
            raise ApiError(404, "not_found", f"parked outbox row '{row_id}' not found")
        return DiscardResult(discarded=row_id)

    return router


def mount_admin(app: FastAPI, backend: AdminBackend) -> None:
    """Add the admin routes to a service app once (its runtime does this when the app starts)."""
    if getattr(app.state, "admin_mounted", False):
        return
    app.state.admin_mounted = True
    app.include_router(dlq_router(backend, str(getattr(app.state, "service_name", "service"))))
