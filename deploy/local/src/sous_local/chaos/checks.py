"""What the soak measures once the faults are over, read from the databases, the broker and the model server.

Every figure comes from a source of truth the services do not control: the executor's event store (what
happened to each execution and step), the model server's call log (what was paid for), the broker (what
was dead-lettered) and the quality service's tables (what a consumer applied).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx

from sous_events import topics
from sous_events.kafka import KafkaConfig, total_messages
from sous_local.model_server.state import MAX_LOGGED_CALLS

__all__ = ["FINISHED", "MAX_LOGGED_CALLS", "Report"]

FINISHED = ("completed", "failed", "cancelled")


@dataclass
class Figure:
    name: str
    value: float
    expected: float | None  # None: reported, not checked

    @property
    def ok(self) -> bool:
        return self.expected is None or abs(self.value - self.expected) < 1e-9

    def line(self) -> str:
        shown = (
            f"{self.value:.4f}" if isinstance(self.value, float) and not self.value.is_integer() else f"{self.value:g}"
        )
        verdict = "" if self.expected is None else ("  ok" if self.ok else f"  FAIL (want {self.expected:g})")
        return f"  {self.name:<58} {shown:>10}{verdict}"


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, name: str, value: float, expected: float | None = 0) -> None:
        self.figures.append(Figure(name, value, expected))

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.figures)

    def render(self) -> str:
        lines = [f.line() for f in self.figures]
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


async def _connect(dsn: str) -> asyncpg.Connection:
    return await asyncpg.connect(dsn, timeout=10, command_timeout=120)


async def execution_statuses(executor_dsn: str, workspace: str) -> dict[str, str]:
    conn = await _connect(executor_dsn)
    try:
        rows = await conn.fetch("SELECT execution_id, status FROM executions WHERE workspace_id = $1", workspace)
    finally:
        await conn.close()
    return {row["execution_id"]: row["status"] for row in rows}


async def quality_progress(quality_dsn: str, workspace: str, agent_ids: list[str]) -> tuple[dict[str, str], int]:
    """(execution status as quality's copy has it, agent runs quality counted) for the soak's workspace."""
    conn = await _connect(quality_dsn)
    try:
        rows = await conn.fetch("SELECT execution_id, status FROM execution_copies WHERE workspace_id = $1", workspace)
        runs = await conn.fetchval(
            "SELECT COALESCE(sum(runs), 0) FROM agent_metrics WHERE agent_id = ANY($1::text[])", agent_ids
        )
    finally:
        await conn.close()
    return {row["execution_id"]: row["status"] for row in rows}, int(runs)


async def executor_event_figures(executor_dsn: str, workspace: str, agent_ids: list[str]) -> dict[str, int]:
    conn = await _connect(executor_dsn)
    try:
        twice_completed = await conn.fetchval(
            """
            SELECT count(*) FROM (
              SELECT aggregate_id, envelope->'payload'->>'step_id' FROM event_store
              WHERE workspace_id = $1 AND event_type = 'StepCompleted'
              GROUP BY 1, 2 HAVING count(*) > 1) twice
            """,
            workspace,
        )
        attempts = await conn.fetchval(
            """
            SELECT count(*) FROM (
              SELECT DISTINCT aggregate_id, envelope->'payload'->>'step_id',
                     COALESCE((envelope->'payload'->>'attempt')::int, 1)
              FROM event_store WHERE workspace_id = $1 AND event_type = 'StepStarted') attempts
            """,
            workspace,
        )
        started_events = await conn.fetchval(
            "SELECT count(*) FROM event_store WHERE workspace_id = $1 AND event_type = 'StepStarted'", workspace
        )
        finished_twice = await conn.fetchval(
            """
            SELECT count(*) FROM (
              SELECT aggregate_id FROM event_store WHERE workspace_id = $1 AND event_type = 'ExecutionFinished'
              GROUP BY 1 HAVING count(*) > 1) twice
            """,
            workspace,
        )
        # What quality must count as agent runs: each final outcome (quality's rule, see its README).
        final_outcomes = await conn.fetchval(
            """
            SELECT count(*) FROM event_store
            WHERE workspace_id = $1 AND envelope->'payload'->>'agent_id' = ANY($2::text[]) AND (
              (event_type = 'StepCompleted' AND COALESCE((envelope->'payload'->>'reused')::boolean, false) = false)
              OR (event_type = 'StepFailed' AND COALESCE((envelope->'payload'->>'will_retry')::boolean, false) = false))
            """,
            workspace,
            agent_ids,
        )
    finally:
        await conn.close()
    return {
        "twice_completed": int(twice_completed),
        "attempts": int(attempts),
        "started_events": int(started_events),
        "finished_twice": int(finished_twice),
        "final_outcomes": int(final_outcomes),
    }


async def parked_rows(dsns: Iterable[tuple[str, str]]) -> dict[str, int]:
    """Outbox rows a relay parked (refused by the broker for good), per service; absent column: nothing."""
    found: dict[str, int] = {}
    for name, dsn in dsns:
        conn = await _connect(dsn)
        try:
            with contextlib.suppress(asyncpg.UndefinedColumnError):
                found[name] = int(
                    await conn.fetchval("SELECT count(*) FROM outbox WHERE parked_at IS NOT NULL AND sent_at IS NULL")
                )
        finally:
            await conn.close()
    return found


_TAG = re.compile(r"step=(?P<step>\S+) key=(?P<key>\S+)")


async def model_calls(model_url: str, marker: str) -> tuple[int, Counter[tuple[str, str]]]:
    """Chat completions the model server received carrying `marker` (each one was paid for), and how many
    per (input key, step id), read from the tag that starts the prompt's last user message."""
    base = model_url.removesuffix("/v1")
    async with httpx.AsyncClient(timeout=300) as client:
        response = await client.get(f"{base}/_sous/calls", params={"contains": marker})
        response.raise_for_status()
        body: dict[str, Any] = response.json()
    per_step: Counter[tuple[str, str]] = Counter()
    for call in body["calls"]:
        users = [m for m in call.get("messages") or [] if m.get("role") == "user"]
        content = users[-1].get("content") if users else None
        text = content if isinstance(content, str) else json.dumps(content)
        found = _TAG.search(text or "")
        if found:
            per_step[(found["key"], found["step"])] += 1
    return int(body["count"]), per_step


async def attempts_per_step(executor_dsn: str, workspace: str) -> Counter[tuple[str, str]]:
    """Distinct step attempts the executor recorded, per (input key, step id) like `model_calls`."""
    conn = await _connect(executor_dsn)
    try:
        rows = await conn.fetch(
            """
            SELECT r.envelope->'payload'->'input_data'->>'key' AS key, s.step_id, count(*) AS attempts FROM (
              SELECT DISTINCT aggregate_id, envelope->'payload'->>'step_id' AS step_id,
                     COALESCE((envelope->'payload'->>'attempt')::int, 1) AS attempt
              FROM event_store WHERE workspace_id = $1 AND event_type = 'StepStarted') s
            JOIN event_store r ON r.aggregate_id = s.aggregate_id AND r.event_type = 'ExecutionRequested'
            GROUP BY 1, 2
            """,
            workspace,
        )
    finally:
        await conn.close()
    return Counter({(row["key"] or "", row["step_id"] or ""): int(row["attempts"]) for row in rows})


async def dead_lettered(bootstrap: str) -> int:
    return await total_messages(KafkaConfig(bootstrap), [topics.dlq_topic(t) for t in topics.ALL_TOPICS])
