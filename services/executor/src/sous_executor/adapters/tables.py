"""The executor's own tables: executions read model, leases, catalog replicas, cron runs, execute keys."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, Index, Integer, MetaData, String, Table, func

from sous_service.tables import id_column, json_column, template_column, time_column, version_column, workspace_column

metadata = MetaData()

executions = Table(
    "executions",
    metadata,
    id_column("execution_id", primary_key=True),
    workspace_column(),
    Column("recipe_id", String(200), nullable=False),
    Column("recipe_name", String(300), nullable=False, server_default=""),
    Column("status", String(20), nullable=False),
    Column("current_step", Integer, nullable=False, server_default="0"),
    Column("total_steps", Integer, nullable=False, server_default="0"),
    Column("finished_steps", Integer, nullable=False, server_default="0"),
    json_column("step_results", server_default="[]"),
    json_column("input_data", server_default="{}"),
    json_column("output_data", server_default="{}"),
    Column("error_message", String, nullable=True),
    Column("triggered_by", String(30), nullable=False, server_default="manual"),
    json_column("execution_metadata", server_default="{}"),
    Column("total_duration_ms", Float, nullable=False, server_default="0"),
    Column("total_tokens", Integer, nullable=False, server_default="0"),
    Column("total_cost_usd", Float, nullable=False, server_default="0"),
    Column("cancel_requested", Boolean, nullable=False, server_default="false"),
    version_column(server_default="0"),
    time_column("created_at"),
    time_column("started_at", nullable=True),
    time_column("completed_at", nullable=True),
    Index("ix_executions_recipe", "workspace_id", "recipe_id", "created_at"),
    Index("ix_executions_status", "workspace_id", "status"),
    # Runs per day are counted from midnight at every start.
    Index("ix_executions_created", "workspace_id", "created_at"),
    # The sweeper looks for requested executions nobody claimed (every instance was full).
    Index("ix_executions_pending", "created_at", postgresql_where="status = 'pending'"),
)

leases = Table(
    "execution_leases",
    metadata,
    id_column("execution_id", primary_key=True),
    workspace_column(),
    Column("owner", String(200), nullable=False),
    time_column("expires_at"),
    time_column("heartbeat_at", server_default=func.now()),
    Column("claims", Integer, nullable=False, server_default="1"),
    Column("finished", Boolean, nullable=False, server_default="false"),
    Index("ix_leases_open", "expires_at", postgresql_where="NOT finished"),
)

recipe_replicas = Table(
    "recipe_replicas",
    metadata,
    workspace_column(primary_key=True),
    template_column(primary_key=True),
    id_column("recipe_id"),
    version_column("revision", server_default="0"),
    Column("webhook_id", String(200), nullable=True, index=True),
    Column("schedule_type", String(20), nullable=False, server_default="manual"),
    json_column("recipe"),
    time_column("replicated_at", server_default=func.now()),
    # A tombstone: the recipe was deleted; a late copy of it (an HTTP fallback) must not bring it back.
    Column("deleted", Boolean, nullable=False, server_default="false"),
)

# Each recipe's rolling quality score, from the quality service's QualityAssessed events.
recipe_quality_scores = Table(
    "recipe_quality_scores",
    metadata,
    Column("workspace_id", String(100), primary_key=True),
    Column("template_id", String(200), primary_key=True),
    Column("score", Float, nullable=True),
    Column("version", Integer, nullable=False, server_default="0"),
)

agent_replicas = Table(
    "agent_replicas",
    metadata,
    id_column("agent_id", primary_key=True),
    workspace_column(),
    json_column("agent"),
    time_column("replicated_at", server_default=func.now()),
    # The catalog's revision of this copy: an older copy never replaces a newer one.
    version_column("revision", server_default="0"),
    Column("deleted", Boolean, nullable=False, server_default="false"),
)

schedule_runs = Table(
    "schedule_runs",
    metadata,
    workspace_column(primary_key=True),
    template_column(primary_key=True),
    time_column("due_at", primary_key=True),
    id_column("execution_id"),
    time_column("created_at", server_default=func.now()),
)

# A client's Idempotency-Key on a start (a recipe's execute, a workflow's), kept with the request it came with
# and what it started (an execution, a workflow run).
execute_keys = Table(
    "execute_keys",
    metadata,
    workspace_column(primary_key=True),
    Column("idempotency_key", String(255), primary_key=True),
    Column("request_sha256", String(64), nullable=False),
    id_column("started_id"),
    time_column("created_at", server_default=func.now()),
    Index("ix_execute_keys_created", "workspace_id", "created_at"),
)
