"""The quality service's read models and copies (its own database, beside the event tables)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.schema import SchemaItem

from sous_service.tables import id_column, json_column, template_column, time_column, version_column, workspace_column

metadata = MetaData()

# Copies of the catalog's recipes: what scoring needs (outputs, execution_config, steps, inputs).
recipes = Table(
    "recipe_copies",
    metadata,
    workspace_column(primary_key=True),
    template_column(primary_key=True),
    id_column("recipe_id"),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("steps_count", Integer, nullable=False, default=0),
    json_column("steps", default=list),
    json_column("inputs", default=dict),
    json_column("outputs", default=dict),
    json_column("execution_config", default=dict),
    version_column("revision", default=0),
    time_column("updated_at"),
)

# Copies of executions, from the executor's events.
executions = Table(
    "execution_copies",
    metadata,
    id_column("execution_id", primary_key=True),
    workspace_column(),
    template_column(),
    Column("status", String(20), nullable=False),
    json_column("recipe", default=dict),
    json_column("agents", default=dict),
    json_column("input_data", default=dict),
    json_column("output_data", default=dict),
    Column("error", Text, nullable=True),
    Column("total_duration_ms", Float, nullable=True),
    Column("total_tokens", BigInteger, nullable=True),
    Column("total_cost_usd", Float, nullable=False, default=0.0),
    Column("correlation_id", String(100), nullable=False, default=""),
    time_column("requested_at", nullable=True),
    time_column("started_at", nullable=True),
    time_column("finished_at", nullable=True),
    Index("ix_execution_copies_recipe", "workspace_id", "template_id"),
)

# One row per step of an execution: its latest state and how many attempts it took.
step_results = Table(
    "step_results",
    metadata,
    id_column("execution_id", primary_key=True),
    Column("step_id", String(200), primary_key=True),
    Column("order", Integer, nullable=False, default=0),
    id_column("agent_id", default=""),
    Column("agent_name", String(200), nullable=False, default=""),
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, default=1),
    json_column("output", nullable=True),
    Column("duration_ms", Float, nullable=True),
    Column("tokens", BigInteger, nullable=True),
    Column("cost_usd", Float, nullable=False, default=0.0),
    Column("error", Text, nullable=True),
    Column("reused", Boolean, nullable=False, default=False),
)


def per_execution(name: str, at: str, *items: SchemaItem) -> Table:
    """A table of one row per execution of a recipe template, written when `at` says."""
    return Table(
        name,
        metadata,
        id_column("execution_id", primary_key=True),
        workspace_column(),
        template_column(),
        Column(at, DateTime(timezone=True), nullable=False),
        *items,
    )


# One assessment per execution (idempotency: re-assessing returns this row).
assessments = per_execution(
    "assessments",
    "assessed_at",
    Column("quality_score", Float, nullable=False),
    Column("rolling_score", Float, nullable=False),
    json_column("breakdown"),
    Column("grade", String(2), nullable=False),
    json_column("bottlenecks"),
    Column("recipe_revision", Integer, nullable=True),
    json_column("models", default=list),
    # False for a run in which no step ran (QualityAssessed.counted): not part of the rolling score's history.
    Column("counted", Boolean, nullable=False, default=True),
    Index("ix_assessments_recipe", "workspace_id", "template_id", "assessed_at"),
)

# One analysis per execution.
analyses = per_execution(
    "analyses",
    "analyzed_at",
    json_column("patterns"),
    json_column("suggestions"),
    json_column("performance_metrics"),
    Index("ix_analyses_recipe", "workspace_id", "template_id"),
)

# The RecipeQuality aggregate's state: rolling score and learning_data, with its stream version.
recipe_quality = Table(
    "recipe_quality",
    metadata,
    workspace_column(primary_key=True),
    template_column(primary_key=True),
    Column("quality_score", Float, nullable=True),
    Column("assessment_count", Integer, nullable=False, default=0),
    json_column("learning_data", default=dict),
    version_column(default=0),
)

# The AgentMetrics aggregate's state.
# Attempts counted and not yet in an AgentMetricsUpdated: one row per agent per consumer batch, taken (deleted)
# by the transaction that appends the event with the totals after them (domain/agents.py).
agent_attempts = Table(
    "agent_attempts",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    id_column("agent_id"),
    workspace_column(),
    Column("runs", Integer, nullable=False),
    Column("successes", Integer, nullable=False),
    Column("total_duration_ms", Float, nullable=False),
    Column("total_tokens", BigInteger, nullable=False),
    Column("total_cost_usd", Float, nullable=False),
    Index("ix_agent_attempts_agent", "agent_id"),
)

agent_metrics = Table(
    "agent_metrics",
    metadata,
    id_column("agent_id", primary_key=True),
    workspace_column(),
    Column("runs", Integer, nullable=False, default=0),
    Column("successes", Integer, nullable=False, default=0),
    Column("total_duration_ms", Float, nullable=False, default=0.0),
    Column("total_tokens", BigInteger, nullable=False, default=0),
    Column("total_cost_usd", Float, nullable=False, default=0.0),
    version_column(default=0),
)
