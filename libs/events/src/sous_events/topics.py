"""The topic registry: one topic per owning service stream, each with a dead-letter twin."""

from __future__ import annotations

CATALOG_RECIPES = "sous.catalog.recipes.v1"
CATALOG_AGENTS = "sous.catalog.agents.v1"
EXECUTOR_EXECUTIONS = "sous.executor.executions.v1"
EXECUTOR_WORKFLOWS = "sous.executor.workflows.v1"
QUALITY = "sous.quality.v1"
MARKETPLACE = "sous.marketplace.v1"

ALL_TOPICS: tuple[str, ...] = (
    CATALOG_RECIPES,
    CATALOG_AGENTS,
    EXECUTOR_EXECUTIONS,
    EXECUTOR_WORKFLOWS,
    QUALITY,
    MARKETPLACE,
)


def dlq_topic(topic: str) -> str:
    return f"{topic}.dlq"


def all_topics_with_dlq() -> list[str]:
    return [t for topic in ALL_TOPICS for t in (topic, dlq_topic(topic))]
