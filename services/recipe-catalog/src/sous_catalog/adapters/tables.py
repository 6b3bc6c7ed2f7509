"""Read-model tables (projections of the event store, plus statistics from consumed events).

`recipes` and `agents` hold the owned snapshot in `doc` and the columns queries filter and sort on.
Statistic columns (use_count ... learning_data, agents.metrics) and `executions` come from other services'
events; `rebuild` keeps them and re-derives everything else from the catalog's own event store.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY

from sous_service.tables import id_column, json_column, template_column, time_column, version_column, workspace_column

metadata = MetaData()

recipes = Table(
    "recipes",
    metadata,
    id_column("id", primary_key=True),
    workspace_column(),
    template_column(),
    Column("name", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("search_text", Text, nullable=False),
    Column("category", Text, nullable=False),
    json_column("tags"),
    Column("is_public", Boolean, nullable=False),
    Column("is_featured", Boolean, nullable=False),
    Column("is_system", Boolean, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("agent_ids", ARRAY(String(200)), nullable=False),
    json_column("doc"),
    time_column("created_at"),
    time_column("updated_at"),
    version_column("revision"),
    # statistics derived from consumed events
    Column("quality_score", Float, nullable=True),
    json_column("learning_data", server_default=text("'{}'::jsonb")),
    Column("use_count", Integer, nullable=False, server_default=text("0")),
    Column("finished_count", Integer, nullable=False, server_default=text("0")),
    Column("success_count", Integer, nullable=False, server_default=text("0")),
    Column("success_rate", Float, nullable=False, server_default=text("0")),
    Column("popularity", Float, nullable=False, server_default=text("0")),
    Column("average_rating", Float, nullable=False, server_default=text("0")),
    Column("install_count", Integer, nullable=False, server_default=text("0")),
    time_column("last_used_at", nullable=True),
    UniqueConstraint("workspace_id", "template_id", name="uq_recipes_workspace_template"),
    Index("ix_recipes_ws_popularity", "workspace_id", text("popularity DESC"), "id"),
    Index("ix_recipes_ws_created", "workspace_id", text("created_at DESC"), "id"),
    Index("ix_recipes_ws_use_count", "workspace_id", text("use_count DESC"), "id"),
    Index("ix_recipes_ws_rating", "workspace_id", text("average_rating DESC"), "id"),
    Index("ix_recipes_ws_name", "workspace_id", "name", "id"),
    Index(
        "ix_recipes_search_trgm",
        "search_text",
        postgresql_using="gin",
        postgresql_ops={"search_text": "gin_trgm_ops"},
    ),
    Index("ix_recipes_agent_ids", "agent_ids", postgresql_using="gin"),
)

agents = Table(
    "agents",
    metadata,
    id_column("id", primary_key=True),
    workspace_column(),
    Column("name", Text, nullable=False),
    Column("search_text", Text, nullable=False),
    Column("status", String(20), nullable=False),
    json_column("doc"),
    time_column("created_at"),
    time_column("updated_at"),
    version_column("revision"),
    json_column("metrics", server_default=text("'{}'::jsonb")),
    Column("number", Integer, nullable=True),
    Index("ix_agents_ws_created", "workspace_id", "created_at", "id"),
    Index("ix_agents_ws_name", "workspace_id", "name"),
    Index("uq_agents_ws_number", "workspace_id", "number", unique=True),
)

# The last agent number handed out per workspace (numbers are never reused).
agent_numbers = Table(
    "agent_numbers",
    metadata,
    workspace_column(primary_key=True),
    Column("last_number", Integer, nullable=False),
)

executions = Table(
    "executions",
    metadata,
    id_column("execution_id", primary_key=True),
    workspace_column(),
    Column("recipe_id", String(200), nullable=False),
    Column("status", String(20), nullable=False),
    time_column("requested_at", nullable=True),
    time_column("updated_at"),
    Index("ix_executions_ws_status", "workspace_id", "status"),
)

# Proposed versions of recipes and their promotions (RecipeVersionProposed on the Recipe stream, then the
# RecipeVersion stream `<recipe id>:<revision>`): the version's snapshot, its status and its replay report.
recipe_versions = Table(
    "recipe_versions",
    metadata,
    id_column("recipe_id", primary_key=True),
    Column("revision", Integer, primary_key=True),
    workspace_column(),
    template_column(),
    Column("status", String(20), nullable=False),
    Column("base_revision", Integer, nullable=False),
    json_column("changed_fields"),
    json_column("recipe"),
    Column("proposed_by", String(200), nullable=False),
    time_column("proposed_at"),
    json_column("replays", server_default=text("'[]'::jsonb")),
    json_column("report", nullable=True),
    time_column("decided_at", nullable=True),
    # The version of the RecipeVersion stream this row reflects (0: proposed, no promotion event yet).
    version_column(server_default=text("0")),
    Index("ix_recipe_versions_template", "workspace_id", "template_id", "revision"),
)
