"""The Sous side of `make bench-peer`: one level of executions on a running stack, measured.

The recipe (3 sequential steps, one model call each) is created through the gateway; executions are started
and followed on the executor's public API, signed as an internal caller, each in one request (an execute that
asks for its events). The live event stream of each execution ends with ExecutionFinished: it is both the wait
and the measurement (StepStarted/StepCompleted times, the model time each step reports).
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import orjson
from peer.run_stats import peak_overlap, percentile
from peer.wire import WireClient, WireError

from sous_gateway.tokens import mint_development_token
from sous_local.stack import Stack
from sous_service.internal_context import CONTEXT_HEADER, InternalContext, sign_request

STEP_COUNT = 3
PROCESS = "process:"  # prefix of the meter's groups that hold one process of the stack each
WARM_UP_RUNS = 5
STREAM_RESUMES = 5
START_BODY = b'{"input_data": {}}'
START_HEADERS = {"Accept": "text/event-stream"}  # the execute answers with the run's live events


@dataclass
class SousSample:
    overheads_ms: list[float] = field(default_factory=list)
    first_step_ms: list[float] = field(default_factory=list)
    spans: list[tuple[float, float]] = field(default_factory=list)
    stream_resumes: int = 0

    def clear(self) -> None:
        self.overheads_ms.clear()
        self.first_step_ms.clear()
        self.spans.clear()
        self.stream_resumes = 0


def signer(context: InternalContext, secret: str) -> Callable[[str, str, bytes], dict[str, str]]:
    """Signs each request as `context`, bound to its method, target and body (as the services' own client does)."""

    def sign(method: str, target: str, body: bytes) -> dict[str, str]:
        signed = sign_request(context, secret, method=method, target=target, body=body, service="executor")
        return {CONTEXT_HEADER: signed}

    return sign


def whole_events(body: bytes) -> tuple[list[dict[str, Any]], str]:
    """The JSON data and the last id of every whole event in an SSE body (an event cut short is left out)."""
    envelopes: list[dict[str, Any]] = []
    last_id = ""
    # An event ends with a blank line; what follows the last one is an event cut in the middle.
    for block in body.replace(b"\r\n", b"\n").split(b"\n\n")[:-1]:
        data: list[bytes] = []
        for line in block.split(b"\n"):
            if line.startswith(b"data:"):
                data.append(line[5:].removeprefix(b" "))
            elif line.startswith(b"id:"):
                last_id = line[3:].strip().decode()
        if data:
            envelopes.append(orjson.loads(b"\n".join(data)))
    return envelopes, last_id


async def start_and_follow(client: WireClient, base: str, sample: SousSample) -> list[dict[str, Any]]:
    """Start an execution and read its events up to ExecutionFinished, in one request (an execute that asks
    for an event stream); a stream cut short is resumed after its last whole event with `Last-Event-ID` on the
    execution's own event stream, as the console does, every resume counted in the sample. The body is parsed
    once the stream ends: the benchmark's client shares the cores it measures, so it does as little as it can.
    """
    try:
        response = await client.request("POST", f"{base}/execute", START_BODY, headers=START_HEADERS)
        if response.status != 200:
            raise RuntimeError(f"execute: {response.status} {response.body[:300]!r}")
        body, headers = response.body, response.headers
    except WireError as exc:
        body, headers = exc.args[1], exc.args[2]
    envelopes, last_id = whole_events(body)
    if envelopes and envelopes[-1].get("event_type") == "ExecutionFinished":
        return envelopes
    execution_id = headers.get("x-execution-id") or (envelopes[0]["aggregate_id"] if envelopes else "")
    if not execution_id:
        raise RuntimeError("the execute's stream was cut before it said which execution it started")
    sample.stream_resumes += 1
    return envelopes + await follow_events(client, f"{base}/executions/{execution_id}/events", sample, last_id)


async def follow_events(client: WireClient, path: str, sample: SousSample, last_id: str = "") -> list[dict[str, Any]]:
    """The execution's events after `last_id` up to ExecutionFinished, from its live stream, resumed as above."""
    envelopes: list[dict[str, Any]] = []
    for _ in range(STREAM_RESUMES + 1):
        headers = {"Accept": "text/event-stream", **({"Last-Event-ID": last_id} if last_id else {})}
        try:
            response = await client.request("GET", path, headers=headers)
            if response.status != 200:
                raise RuntimeError(f"GET {path}: {response.status} {response.body[:300]!r}")
            body = response.body
        except WireError as exc:
            body = exc.args[1]
        received, received_last = whole_events(body)
        envelopes.extend(received)
        last_id = received_last or last_id
        if envelopes and envelopes[-1].get("event_type") == "ExecutionFinished":
            return envelopes
        sample.stream_resumes += 1
    raise RuntimeError(f"the event stream {path} was cut {STREAM_RESUMES + 1} times before ExecutionFinished")


def timestamp(envelope: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(envelope["occurred_at"]).replace("Z", "+00:00")).timestamp()


def record_execution(sample: SousSample, envelopes: list[dict[str, Any]], submitted_at: float) -> None:
    starts: dict[str, float] = {}
    completions: dict[str, float] = {}
    model_ms: dict[str, float] = {}
    finished_at = 0.0
    for envelope in envelopes:
        kind, payload = envelope["event_type"], envelope["payload"]
        if kind == "StepStarted":
            starts.setdefault(payload["step_id"], timestamp(envelope))
        elif kind == "StepCompleted":
            completions[payload["step_id"]] = timestamp(envelope)
        elif kind == "ExecutionFinished":
            if payload.get("status") != "completed":
                raise RuntimeError(f"execution ended {payload.get('status')}: {payload.get('error')}")
            finished_at = timestamp(envelope)
            for result in payload.get("step_results", []):
                model_ms[result["step_id"]] = float(result.get("model_ms") or 0.0)
    if starts:
        sample.first_step_ms.append((min(starts.values()) - submitted_at) * 1000)
        sample.spans.append((min(starts.values()), finished_at or max(completions.values(), default=0.0)))
    for step_id, done in completions.items():
        sample.overheads_ms.append((done - starts[step_id]) * 1000 - model_ms.get(step_id, 0.0))


async def prepare_recipe(stack: Stack, latency_ms: int) -> tuple[str, str]:
    """A workspace with one agent and one 3-step recipe, created through the gateway; (workspace, template)."""
    workspace = f"peer-{uuid.uuid4().hex[:8]}"
    token = mint_development_token("bench", [workspace], roles=("admin",), secret=stack.jwt_secret)
    prefix = f"[[latency:{latency_ms}]] " if latency_ms else ""
    headers = {"Authorization": f"Bearer {token}", "X-Workspace-ID": workspace}
    async with httpx.AsyncClient(base_url=stack.gateway_url, headers=headers, timeout=60) as gateway:
        model_config = {"provider": "offline", "model_id": "gpt-4o-mini"}
        created_agent = await gateway.post("/api/agents", json={"name": "peer", "model_config": model_config})
        agent = created_agent.raise_for_status().json()
        template_id = f"peer-{uuid.uuid4().hex[:8]}"
        steps = [
            {
                "step_id": f"s{i}",
                "order": i,
                "agent_id": agent["id"],
                "prompt_template": f"{prefix}step {i} {{previous_output}}",
            }
            for i in range(1, STEP_COUNT + 1)
        ]
        body = {
            "template_id": template_id,
            "name": "peer benchmark",
            "description": "3 sequential steps, one model call each",
            "template_definition": {},
            "steps": steps,
            "execution_config": {"mode": "sequential", "timeout_per_step": 120, "total_timeout": 600},
        }
        created = await gateway.post("/api/workflow-recipes", json=body)
        if created.status_code != 201:
            raise RuntimeError(f"recipe refused: {created.status_code} {created.text}")
        for _ in range(600):
            if (await gateway.get(f"/api/workflow-recipes/{template_id}/executions")).status_code == 200:
                return workspace, template_id
            await asyncio.sleep(0.05)
    raise RuntimeError(f"the executor never saw recipe {template_id}")


async def settle(meter: Any, group: str = "stack", quiet_cores: float = 0.15, limit_s: float = 60.0) -> float:
    """Wait until `group` spends less than `quiet_cores` of CPU over a second (the events in hand are applied,
    the services idle); the seconds waited, at most `limit_s`."""
    started = time.perf_counter()
    before = meter.read(group)
    while time.perf_counter() - started < limit_s:
        await asyncio.sleep(1.0)
        now = meter.read(group)
        if now - before < quiet_cores:
            break
        before = now
    return time.perf_counter() - started


async def sous_level(
    stack: Stack,
    concurrency: int,
    total: int,
    latency_ms: int,
    meter: Any,
    workspaces: int = 1,
    drain: bool = False,
) -> dict[str, Any]:
    """`total` executions, `concurrency` at a time, after a warm-up; `meter` is started and stopped around them.

    The runs go round-robin to `workspaces` workspaces, each with its own copy of the recipe (1: one tenant).
    `drain`: the meter starts once the warm-up's events are applied and stops once the level's are (the
    stack's CPU counts the work its consumers do after the last run ended).
    """
    recipes = [await prepare_recipe(stack, latency_ms) for _ in range(workspaces)]
    sample = SousSample()
    turn = itertools.count()
    clients = [
        (
            WireClient(
                stack.urls["executor"],
                sign=signer(
                    InternalContext(workspace_id=workspace, user_id="bench", roles=("admin",), scopes=("*",)),
                    stack.internal_secret,
                ),
                max_connections=concurrency * 2 // workspaces + 10,
            ),
            f"/api/workflow-recipes/{template_id}",
        )
        for workspace, template_id in recipes
    ]
    try:
        semaphore = asyncio.Semaphore(concurrency)

        async def one() -> None:
            client, base = clients[next(turn) % len(clients)]
            async with semaphore:
                submitted_at = time.time()
                envelopes = await start_and_follow(client, base, sample)
                record_execution(sample, envelopes, submitted_at)

        await asyncio.gather(*(one() for _ in range(min(WARM_UP_RUNS, total))))  # not counted
        sample.clear()
        if drain:
            await settle(meter)
        meter.start()
        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(total)))
        elapsed = time.perf_counter() - started
        drained_s = await settle(meter) if drain else 0.0
        meter.stop()
    finally:
        for client, _ in clients:
            await client.close()
    return {
        "engine": "sous",
        "concurrency": concurrency,
        "workspaces": workspaces,
        "runs": total,
        "latency_ms": latency_ms,
        "elapsed_s": elapsed,
        "executions_per_s": total / elapsed,
        "overhead_p50_ms": percentile(sample.overheads_ms, 0.5),
        "overhead_p99_ms": percentile(sample.overheads_ms, 0.99),
        "cpu_ms_per_step": meter.per_step_ms("engine", total),
        "stack_cpu_ms_per_step": meter.per_step_ms("stack", total),
        "postgres_cpu_ms_per_step": meter.per_step_ms("postgres", total),
        "stack_cpu_ms_per_step_by_process": {
            name.removeprefix(PROCESS): meter.per_step_ms(name, total)
            for name in meter.groups
            if name.startswith(PROCESS)
        },
        "peak_concurrent_runs": peak_overlap(sample.spans),
        "first_step_p50_ms": percentile(sample.first_step_ms, 0.5),
        "first_step_p99_ms": percentile(sample.first_step_ms, 0.99),
        "stream_resumes": sample.stream_resumes,
        "drained_s": drained_s,
    }
