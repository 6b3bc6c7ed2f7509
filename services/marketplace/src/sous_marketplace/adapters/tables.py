"""The marketplace's read models (rebuilt from its event store) and replicas (built from consumed events)."""

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
    func,
    text,
)

from sous_service.tables import id_column, json_column, template_column, time_column, version_column, workspace_column

metadata = MetaData()

# Read model of the Listing aggregate. install_count lives only here: it is the number of RecipeInstalled
# events of the listing (the Install streams), so a rebuild recomputes it; no Listing event carries it.
listings = Table(
    "listings",
    metadata,
    id_column("id", primary_key=True),
    Column("name", String(300), nullable=False),
    Column("name_key", String(300), nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("category", String(100), nullable=False),
    Column("icon", String(300), nullable=True),
    json_column("tags", server_default=text("'[]'::jsonb")),
    Column("creator_id", String(200), nullable=False),
    workspace_column("source_workspace_id"),
    Column("recipe_id", String(200), nullable=False),
    json_column("recipe"),
    json_column("agents"),
    Column("status", String(20), nullable=False),
    Column("auto_approved", Boolean, nullable=False, server_default=text("false")),
    Column("rejection_reason", Text, nullable=True),
    Column("moderator_id", String(200), nullable=True),
    time_column("submitted_at"),
    time_column("decided_at", nullable=True),
    Column("install_count", Integer, nullable=False, server_default=text("0")),
    # Approved listings in good standing are featured; a listing whose quality fell below the gate is
    # flagged for moderators (flag_reason, flagged_at) and leaves "featured" until the gate holds again.
    Column("featured", Boolean, nullable=False, server_default=text("false")),
    Column("flagged", Boolean, nullable=False, server_default=text("false")),
    Column("flag_reason", Text, nullable=True),
    time_column("flagged_at", nullable=True),
    version_column(),
    # A name is taken while its listing is pending or approved; a rejected or withdrawn name is free again.
    Index(
        "uq_listings_live_name",
        "name_key",
        unique=True,
        postgresql_where=text("status NOT IN ('rejected', 'withdrawn')"),
    ),
    Index("ix_listings_status_category", "status", "category"),
    Index("ix_listings_creator", "creator_id", "source_workspace_id"),
)

# One row per approved listing of a creator: a set, so applying an approval twice counts it once.
creator_approvals = Table(
    "creator_approvals",
    metadata,
    Column("creator_id", String(200), primary_key=True),
    id_column("listing_id", primary_key=True),
    time_column("approved_at"),
)

installs = Table(
    "installs",
    metadata,
    id_column("id", primary_key=True),
    id_column("listing_id", index=True),
    workspace_column("target_workspace_id"),
    Column("template_id", String(300), nullable=False),
    Column("installed_by", String(200), nullable=False),
    time_column("installed_at"),
)

# Replicas of other services' data, from their events (never their databases).
recipe_replicas = Table(
    "recipe_replicas",
    metadata,
    id_column("recipe_id", primary_key=True),
    workspace_column(),
    template_column(),
    Column("name", String(300), nullable=False),
    json_column("snapshot"),
    version_column(),
    Index("uq_recipe_replicas_template", "workspace_id", "template_id", unique=True),
)

agent_replicas = Table(
    "agent_replicas",
    metadata,
    id_column("agent_id", primary_key=True),
    workspace_column(index=True),
    Column("name", String(300), nullable=False),
    json_column("snapshot"),
    version_column(),
)

quality_scores = Table(
    "quality_scores",
    metadata,
    workspace_column(primary_key=True),
    template_column(primary_key=True),
    Column("score", Float, nullable=False),
    Column("grade", String(4), nullable=True),
    version_column(),
    time_column("assessed_at", server_default=func.now()),
)

# One row per QualityAssessed: the assessed runs of a recipe and its rolling score after each (the trend).
quality_assessments = Table(
    "quality_assessments",
    metadata,
    workspace_column(primary_key=True),
    template_column(primary_key=True),
    id_column("execution_id", primary_key=True),
    Column("quality_score", Float, nullable=False),
    Column("rolling_score", Float, nullable=False),
    version_column(),
    time_column("assessed_at"),
    Index("ix_quality_assessments_recipe_version", "workspace_id", "template_id", "version"),
)
