"""Preparing the infrastructure before the services start: secrets, databases, topics, replay checks."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from sous_local.ports import free_port
from sous_local.stack_spec import BrokerKind, ServiceSpec, StackError

SECRETS_FILE = "secrets.json"


def load_or_create_secrets(state_dir: Path, source: Mapping[str, str]) -> dict[str, str]:
    """SOUS_INTERNAL_SECRET, SOUS_JWT_SECRET and SOUS_SECRETS_KEK: from the environment, else kept under state_dir.

    A secret generated once is reused by every later start, so API keys (hashed with a pepper derived from
    the internal secret) and tokens minted earlier keep working.
    """
    path = state_dir / SECRETS_FILE
    saved: dict[str, str] = {}
    if path.is_file():
        with contextlib.suppress(ValueError, OSError):
            loaded = json.loads(path.read_text())
            if isinstance(loaded, dict):
                saved = {str(k): str(v) for k, v in loaded.items()}
    changed = False
    result: dict[str, str] = {}
    # SOUS_SECRETS_KEK wraps the data keys of workspace secrets (the executor's secret store).
    for variable in ("SOUS_INTERNAL_SECRET", "SOUS_JWT_SECRET", "SOUS_SECRETS_KEK"):
        if source.get(variable):
            result[variable] = source[variable]
            continue
        if not saved.get(variable):
            saved[variable] = secrets.token_urlsafe(32)
            changed = True
        result[variable] = saved[variable]
    if changed:
        state_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(saved, indent=2))
        path.chmod(0o600)
    return result


def database_url_for(server_url: str, database: str) -> str:
    from sqlalchemy.engine import make_url

    url = make_url(server_url).set(drivername="postgresql", database=database)
    return url.render_as_string(hide_password=False)


async def create_databases(server_url: str, names: Iterable[str]) -> None:
    from sous_service.db import create_database

    for name in names:
        await create_database(server_url, name, timeout_s=10)


async def event_store_sizes(server_url: str, databases: Mapping[str, str]) -> dict[str, int]:
    import asyncpg

    sizes: dict[str, int] = {}
    for name, database in databases.items():
        try:
            conn = await asyncpg.connect(database_url_for(server_url, database), timeout=10)
        except asyncpg.InvalidCatalogNameError:
            sizes[name] = 0
            continue
        try:
            exists = await conn.fetchval("SELECT to_regclass('public.event_store') IS NOT NULL")
            sizes[name] = int(await conn.fetchval("SELECT count(*) FROM event_store")) if exists else 0
        finally:
            await conn.close()
    return sizes


async def ensure_topics(bootstrap: str) -> None:
    from sous_events.kafka import KafkaConfig, ensure_topics

    await asyncio.wait_for(ensure_topics(KafkaConfig(bootstrap)), 60)


async def broker_messages(bootstrap: str) -> int:
    from sous_events.kafka import KafkaConfig, total_messages
    from sous_events.topics import ALL_TOPICS

    return await asyncio.wait_for(total_messages(KafkaConfig(bootstrap), ALL_TOPICS), 60)


def start_postgres(data_dir: Path, durable: bool, say: Callable[[str], None]) -> Any:
    """An embedded PostgreSQL on a free port, started (its `url` names the server)."""
    from sous_local.postgres import EmbeddedPostgres

    say("starting embedded PostgreSQL ...")
    postgres = EmbeddedPostgres(data_dir, free_port(), durable=durable)
    _start_or_stop(postgres)
    return postgres


# The consumers' session timeout on an embedded broker the stack starts. That broker lets a new group's first
# member join only after half the session timeout, and every group is new at each start (it keeps nothing):
# with the services' default of 10 s, that wait was the largest part of a warm start.
EMBEDDED_SESSION_TIMEOUT_MS = 6_000
# The embedded broker batches fetches on its own; a long idle poll keeps an idle stack's requests few.
EMBEDDED_FETCH = {"SOUS_KAFKA_FETCH_MIN_BYTES": "1", "SOUS_KAFKA_FETCH_MAX_WAIT_MS": "500"}


def broker_defaults(kind: BrokerKind, *, started: bool) -> dict[str, str]:
    """Environment defaults for the services on a broker this stack started (the caller's values win)."""
    if started and kind == "embedded":
        return {"SOUS_KAFKA_SESSION_TIMEOUT_MS": str(EMBEDDED_SESSION_TIMEOUT_MS), **EMBEDDED_FETCH}
    return {}


def start_broker(kind: BrokerKind, state_dir: Path, say: Callable[[str], None]) -> Any:
    """The embedded broker or a single-node Apache Kafka, started (its `bootstrap` names it)."""
    broker: Any
    if kind == "kafka":
        from sous_local.kafka_lane import ApacheKafka

        say("starting Apache Kafka (the first start fetches the broker jars) ...")
        broker = ApacheKafka(state_dir / "kafka")
    else:
        from sous_local.broker import EmbeddedBroker

        say("starting the embedded broker ...")
        broker = EmbeddedBroker(state_dir / "broker")
    _start_or_stop(broker)
    return broker


def _start_or_stop(server: Any) -> None:
    # A server that fails half-way through its start may have left a process behind.
    try:
        server.start()
    except BaseException:
        with contextlib.suppress(Exception):
            server.stop()
        raise


def run_service_command(spec: ServiceSpec, command: str, env: Mapping[str, str], log: Path, timeout_s: float) -> str:
    """`python -m <pkg> <command>`, output appended to the service's log; returns the output."""
    log.parent.mkdir(parents=True, exist_ok=True)
    try:
        result = subprocess.run(
            [sys.executable, "-m", spec.package, command],
            env=dict(env),
            capture_output=True,
            timeout=timeout_s,
            start_new_session=True,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise StackError(f"`python -m {spec.package} {command}` did not finish within {timeout_s:.0f}s") from exc
    output = (result.stdout or b"").decode(errors="replace") + (result.stderr or b"").decode(errors="replace")
    with log.open("a") as handle:
        handle.write(f"\n--- python -m {spec.package} {command} (exit {result.returncode})\n{output}")
    if result.returncode != 0:
        last = "\n".join(output.splitlines()[-25:])
        raise StackError(
            f"{spec.name}: `python -m {spec.package} {command}` failed (exit {result.returncode}):\n{last}"
        )
    return output


_REPLAYED = re.compile(r"re-published (\d+) events")


def parse_replayed(output: str) -> int:
    return sum(int(match) for match in _REPLAYED.findall(output))


def replayed_in_log(log: Path, offset: int) -> int:
    """The events a service re-published, from what its log gained after `offset` bytes."""
    with log.open("rb") as handle:
        handle.seek(offset)
        return parse_replayed(handle.read().decode(errors="replace"))
