"""Workflow tables in the executor's database (their own metadata: migration 0002 creates them)."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Computed,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR

metadata = MetaData()

workflows = Table(
    "workflows",
    metadata,
    Column("workflow_id", String(64), primary_key=True),
    Column("workspace_id", String(100), nullable=False),
    Column("name", String(300), nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("owner", String(200), nullable=False, server_default=""),
    Column("tags", JSONB, nullable=False, server_default="[]"),
    Column("status", String(20), nullable=False),
    Column("doc", JSONB, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_workflows_workspace", "workspace_id", "updated_at"),
)

workflow_runs = Table(
    "workflow_runs",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("workspace_id", String(100), nullable=False),
    Column("workflow_id", String(64), nullable=False),
    Column("status", String(20), nullable=False),
    Column("current_stage", Integer, nullable=True),
    Column("execution_id", String(64), nullable=True, index=True),
    Column("doc", JSONB, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("completed_at", DateTime(timezone=True), nullable=True),
    Index("ix_workflow_runs_workflow", "workspace_id", "workflow_id", "created_at"),
    Index("ix_workflow_runs_status", "workspace_id", "status"),
)

workflow_leases = Table(
    "workflow_run_leases",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("workspace_id", String(100), nullable=False),
    Column("owner", String(200), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("claims", Integer, nullable=False, server_default="1"),
    Column("finished", Boolean, nullable=False, server_default="false"),
    Index("ix_workflow_leases_open", "expires_at", postgresql_where="NOT finished"),
)

workflow_memory = Table(
    "workflow_memory",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("workspace_id", String(100), nullable=False),
    Column("workflow_id", String(64), nullable=False),
    Column("task", Text, nullable=False),
    Column("content", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
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
    Column("execution_id", String(64), primary_key=True),
    Column("kind", String(20), primary_key=True),
    Column("workspace_id", String(100), nullable=False),
    Column("recipe_id", String(200), nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_quality_signals_recipe", "workspace_id", "recipe_id", "kind", "recorded_at"),
)

agent_metrics = Table(
    "workflow_agent_metrics",
    metadata,
    Column("agent_id", String(64), primary_key=True),
    Column("workspace_id", String(100), nullable=False),
    Column("metrics", JSONB, nullable=False),
    Column("version", Integer, nullable=False, server_default="0"),
)
