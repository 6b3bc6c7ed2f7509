"""The marketplace's read models (rebuilt from its event store) and replicas (built from consumed events)."""

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
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

# Read model of the Listing aggregate. install_count lives only here: it is the number of RecipeInstalled
# events of the listing (the Install streams), so a rebuild recomputes it; no Listing event carries it.
listings = Table(
    "listings",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(300), nullable=False),
    Column("name_key", String(300), nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("category", String(100), nullable=False),
    Column("icon", String(300), nullable=True),
    Column("tags", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("creator_id", String(200), nullable=False),
    Column("source_workspace_id", String(100), nullable=False),
    Column("recipe_id", String(200), nullable=False),
    Column("recipe", JSONB, nullable=False),
    Column("agents", JSONB, nullable=False),
    Column("status", String(20), nullable=False),
    Column("auto_approved", Boolean, nullable=False, server_default=text("false")),
    Column("rejection_reason", Text, nullable=True),
    Column("moderator_id", String(200), nullable=True),
    Column("submitted_at", DateTime(timezone=True), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=True),
    Column("install_count", Integer, nullable=False, server_default=text("0")),
    # Approved listings in good standing are featured; a listing whose quality fell below the gate is
    # flagged for moderators (flag_reason, flagged_at) and leaves "featured" until the gate holds again.
    Column("featured", Boolean, nullable=False, server_default=text("false")),
    Column("flagged", Boolean, nullable=False, server_default=text("false")),
    Column("flag_reason", Text, nullable=True),
    Column("flagged_at", DateTime(timezone=True), nullable=True),
    Column("version", Integer, nullable=False),
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
    Column("listing_id", String(64), primary_key=True),
    Column("approved_at", DateTime(timezone=True), nullable=False),
)

installs = Table(
    "installs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("listing_id", String(64), nullable=False, index=True),
    Column("target_workspace_id", String(100), nullable=False),
    Column("template_id", String(300), nullable=False),
    Column("installed_by", String(200), nullable=False),
    Column("installed_at", DateTime(timezone=True), nullable=False),
)

# Replicas of other services' data, from their events (never their databases).
recipe_replicas = Table(
    "recipe_replicas",
    metadata,
    Column("recipe_id", String(64), primary_key=True),
    Column("workspace_id", String(100), nullable=False),
    Column("template_id", String(200), nullable=False),
    Column("name", String(300), nullable=False),
    Column("snapshot", JSONB, nullable=False),
    Column("version", Integer, nullable=False),
    Index("uq_recipe_replicas_template", "workspace_id", "template_id", unique=True),
)

agent_replicas = Table(
    "agent_replicas",
    metadata,
    Column("agent_id", String(64), primary_key=True),
    Column("workspace_id", String(100), nullable=False, index=True),
    Column("name", String(300), nullable=False),
    Column("snapshot", JSONB, nullable=False),
    Column("version", Integer, nullable=False),
)

quality_scores = Table(
    "quality_scores",
    metadata,
    Column("workspace_id", String(100), primary_key=True),
    Column("template_id", String(200), primary_key=True),
    Column("score", Float, nullable=False),
    Column("grade", String(4), nullable=True),
    Column("version", Integer, nullable=False),
    Column("assessed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# One row per QualityAssessed: the assessed runs of a recipe and its rolling score after each (the trend).
quality_assessments = Table(
    "quality_assessments",
    metadata,
    Column("workspace_id", String(100), primary_key=True),
    Column("template_id", String(200), primary_key=True),
    Column("execution_id", String(64), primary_key=True),
    Column("quality_score", Float, nullable=False),
    Column("rolling_score", Float, nullable=False),
    Column("version", Integer, nullable=False),
    Column("assessed_at", DateTime(timezone=True), nullable=False),
    Index("ix_quality_assessments_recipe_version", "workspace_id", "template_id", "version"),
)
