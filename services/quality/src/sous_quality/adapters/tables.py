"""The quality service's read models and copies (its own database, beside the event tables)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.schema import SchemaItem

metadata = MetaData()

# Copies of the catalog's recipes: what scoring needs (outputs, execution_config, steps, inputs).
recipes = Table(
    "recipe_copies",
    metadata,
    Column("workspace_id", String(100), primary_key=True),
    Column("template_id", String(200), primary_key=True),
    Column("recipe_id", String(64), nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("steps_count", Integer, nullable=False, default=0),
    Column("steps", JSONB, nullable=False, default=list),
    Column("inputs", JSONB, nullable=False, default=dict),
    Column("outputs", JSONB, nullable=False, default=dict),
    Column("execution_config", JSONB, nullable=False, default=dict),
    Column("revision", Integer, nullable=False, default=0),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Copies of executions, from the executor's events.
executions = Table(
    "execution_copies",
    metadata,
    Column("execution_id", String(64), primary_key=True),
    Column("workspace_id", String(100), nullable=False),
    Column("template_id", String(200), nullable=False),
    Column("status", String(20), nullable=False),
    Column("recipe", JSONB, nullable=False, default=dict),
    Column("agents", JSONB, nullable=False, default=dict),
    Column("input_data", JSONB, nullable=False, default=dict),
    Column("output_data", JSONB, nullable=False, default=dict),
    Column("error", Text, nullable=True),
    Column("total_duration_ms", Float, nullable=True),
    Column("total_tokens", BigInteger, nullable=True),
    Column("total_cost_usd", Float, nullable=False, default=0.0),
    Column("correlation_id", String(100), nullable=False, default=""),
    Column("requested_at", DateTime(timezone=True), nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Index("ix_execution_copies_recipe", "workspace_id", "template_id"),
)

# One row per step of an execution: its latest state and how many attempts it took.
step_results = Table(
    "step_results",
    metadata,
    Column("execution_id", String(64), primary_key=True),
    Column("step_id", String(200), primary_key=True),
    Column("order", Integer, nullable=False, default=0),
    Column("agent_id", String(64), nullable=False, default=""),
    Column("agent_name", String(200), nullable=False, default=""),
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, default=1),
    Column("output", JSONB, nullable=True),
    Column("duration_ms", Float, nullable=True),
    Column("tokens", BigInteger, nullable=True),
    Column("cost_usd", Float, nullable=False, default=0.0),
    Column("error", Text, nullable=True),
)


def per_execution(name: str, at: str, *items: SchemaItem) -> Table:
    """A table of one row per execution of a recipe template, written when `at` says."""
    return Table(
        name,
        metadata,
        Column("execution_id", String(64), primary_key=True),
        Column("workspace_id", String(100), nullable=False),
        Column("template_id", String(200), nullable=False),
        Column(at, DateTime(timezone=True), nullable=False),
        *items,
    )


# One assessment per execution (idempotency: re-assessing returns this row).
assessments = per_execution(
    "assessments",
    "assessed_at",
    Column("quality_score", Float, nullable=False),
    Column("rolling_score", Float, nullable=False),
    Column("breakdown", JSONB, nullable=False),
    Column("grade", String(2), nullable=False),
    Column("bottlenecks", JSONB, nullable=False),
    Column("recipe_revision", Integer, nullable=True),
    Column("models", JSONB, nullable=False, default=list),
    Index("ix_assessments_recipe", "workspace_id", "template_id", "assessed_at"),
)

# One analysis per execution.
analyses = per_execution(
    "analyses",
    "analyzed_at",
    Column("patterns", JSONB, nullable=False),
    Column("suggestions", JSONB, nullable=False),
    Column("performance_metrics", JSONB, nullable=False),
    Index("ix_analyses_recipe", "workspace_id", "template_id"),
)

# The RecipeQuality aggregate's state: rolling score and learning_data, with its stream version.
recipe_quality = Table(
    "recipe_quality",
    metadata,
    Column("workspace_id", String(100), primary_key=True),
    Column("template_id", String(200), primary_key=True),
    Column("quality_score", Float, nullable=True),
    Column("assessment_count", Integer, nullable=False, default=0),
    Column("learning_data", JSONB, nullable=False, default=dict),
    Column("version", Integer, nullable=False, default=0),
)

# The AgentMetrics aggregate's state.
agent_metrics = Table(
    "agent_metrics",
    metadata,
    Column("agent_id", String(64), primary_key=True),
    Column("workspace_id", String(100), nullable=False),
    Column("runs", Integer, nullable=False, default=0),
    Column("successes", Integer, nullable=False, default=0),
    Column("total_duration_ms", Float, nullable=False, default=0.0),
    Column("total_tokens", BigInteger, nullable=False, default=0),
    Column("total_cost_usd", Float, nullable=False, default=0.0),
    Column("version", Integer, nullable=False, default=0),
)
