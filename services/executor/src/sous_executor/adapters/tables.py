"""The executor's own tables: executions read model, leases, catalog replicas, cron runs."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

executions = Table(
    "executions",
    metadata,
    Column("execution_id", String(64), primary_key=True),
    Column("workspace_id", String(100), nullable=False),
    Column("recipe_id", String(200), nullable=False),
    Column("recipe_name", String(300), nullable=False, server_default=""),
    Column("status", String(20), nullable=False),
    Column("current_step", Integer, nullable=False, server_default="0"),
    Column("total_steps", Integer, nullable=False, server_default="0"),
    Column("finished_steps", Integer, nullable=False, server_default="0"),
    Column("step_results", JSONB, nullable=False, server_default="[]"),
    Column("input_data", JSONB, nullable=False, server_default="{}"),
    Column("output_data", JSONB, nullable=False, server_default="{}"),
    Column("error_message", String, nullable=True),
    Column("triggered_by", String(30), nullable=False, server_default="manual"),
    Column("execution_metadata", JSONB, nullable=False, server_default="{}"),
    Column("total_duration_ms", Float, nullable=False, server_default="0"),
    Column("total_tokens", Integer, nullable=False, server_default="0"),
    Column("total_cost_usd", Float, nullable=False, server_default="0"),
    Column("cancel_requested", Boolean, nullable=False, server_default="false"),
    Column("version", Integer, nullable=False, server_default="0"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("completed_at", DateTime(timezone=True), nullable=True),
    Index("ix_executions_recipe", "workspace_id", "recipe_id", "created_at"),
    Index("ix_executions_status", "workspace_id", "status"),
    # The sweeper looks for requested executions nobody claimed (every instance was full).
    Index("ix_executions_pending", "created_at", postgresql_where="status = 'pending'"),
)

leases = Table(
    "execution_leases",
    metadata,
    Column("execution_id", String(64), primary_key=True),
    Column("workspace_id", String(100), nullable=False),
    Column("owner", String(200), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("heartbeat_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("claims", Integer, nullable=False, server_default="1"),
    Column("finished", Boolean, nullable=False, server_default="false"),
    Index("ix_leases_open", "expires_at", postgresql_where="NOT finished"),
)

recipe_replicas = Table(
    "recipe_replicas",
    metadata,
    Column("workspace_id", String(100), primary_key=True),
    Column("template_id", String(200), primary_key=True),
    Column("recipe_id", String(64), nullable=False),
    Column("revision", Integer, nullable=False, server_default="0"),
    Column("webhook_id", String(200), nullable=True, index=True),
    Column("schedule_type", String(20), nullable=False, server_default="manual"),
    Column("recipe", JSONB, nullable=False),
    Column("replicated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # A tombstone: the recipe was deleted; a late copy of it (an HTTP fallback) must not bring it back.
    Column("deleted", Boolean, nullable=False, server_default="false"),
)

agent_replicas = Table(
    "agent_replicas",
    metadata,
    Column("agent_id", String(64), primary_key=True),
    Column("workspace_id", String(100), nullable=False),
    Column("agent", JSONB, nullable=False),
    Column("replicated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # The catalog's revision of this copy: an older copy never replaces a newer one.
    Column("revision", Integer, nullable=False, server_default="0"),
    Column("deleted", Boolean, nullable=False, server_default="false"),
)

schedule_runs = Table(
    "schedule_runs",
    metadata,
    Column("workspace_id", String(100), primary_key=True),
    Column("template_id", String(200), primary_key=True),
    Column("due_at", DateTime(timezone=True), primary_key=True),
    Column("execution_id", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
