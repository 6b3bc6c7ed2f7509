"""Workflow tables in the executor's database (their own metadata: migration 0002 creates them)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Computed, Index, Integer, MetaData, String, Table, Text, func
from sqlalchemy.dialects.postgresql import TSVECTOR

from sous_service.tables import id_column, json_column, time_column, version_column, workspace_column

metadata = MetaData()

workflows = Table(
    "workflows",
    metadata,
    id_column("workflow_id", primary_key=True),
    workspace_column(),
    Column("name", String(300), nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("owner", String(200), nullable=False, server_default=""),
    json_column("tags", server_default="[]"),
    Column("status", String(20), nullable=False),
    json_column("doc"),
    version_column(),
    time_column("created_at"),
    time_column("updated_at"),
    Index("ix_workflows_workspace", "workspace_id", "updated_at"),
)

workflow_runs = Table(
    "workflow_runs",
    metadata,
    id_column("run_id", primary_key=True),
    workspace_column(),
    id_column("workflow_id"),
    Column("status", String(20), nullable=False),
    Column("current_stage", Integer, nullable=True),
    id_column("execution_id", nullable=True, index=True),
    json_column("doc"),
    version_column(),
    time_column("created_at"),
    time_column("completed_at", nullable=True),
    Index("ix_workflow_runs_workflow", "workspace_id", "workflow_id", "created_at"),
    Index("ix_workflow_runs_status", "workspace_id", "status"),
)

workflow_leases = Table(
    "workflow_run_leases",
    metadata,
    id_column("run_id", primary_key=True),
    workspace_column(),
    Column("owner", String(200), nullable=False),
    time_column("expires_at"),
    Column("claims", Integer, nullable=False, server_default="1"),
    Column("finished", Boolean, nullable=False, server_default="false"),
    Index("ix_workflow_leases_open", "expires_at", postgresql_where="NOT finished"),
)

workflow_memory = Table(
    "workflow_memory",
    metadata,
    id_column("run_id", primary_key=True),
    workspace_column(),
    id_column("workflow_id"),
    Column("task", Text, nullable=False),
    Column("content", Text, nullable=False),
    time_column("created_at"),
    Column(
        "search",
        TSVECTOR,
        Computed("to_tsvector('english', task || ' ' || content)", persisted=True),
    ),
    Index("ix_workflow_memory_search", "search", postgresql_using="gin"),
    Index("ix_workflow_memory_workspace", "workspace_id", "created_at"),
)

# What the quality service said about executions (LearningRecorded, QualityAssessed), for stages 3, 6 and 7.
quality_signals = Table(
    "workflow_quality_signals",
    metadata,
    id_column("execution_id", primary_key=True),
    Column("kind", String(20), primary_key=True),
    workspace_column(),
    Column("recipe_id", String(200), nullable=False),
    json_column("payload"),
    time_column("recorded_at", server_default=func.now()),
    Index("ix_quality_signals_recipe", "workspace_id", "recipe_id", "kind", "recorded_at"),
)

agent_metrics = Table(
    "workflow_agent_metrics",
    metadata,
    id_column("agent_id", primary_key=True),
    workspace_column(),
    json_column("metrics"),
    version_column(server_default="0"),
)
