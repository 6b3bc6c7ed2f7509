"""The recipe as the catalog publishes it: in its events, in its API answers, in other services' replicas.

`RecipeDefinition` is what a recipe is (portable: a marketplace listing carries it to another workspace);
`RecipeSnapshot` adds where it lives, who made it, its revision and the catalog's statistics at that time.
Adding a field to a recipe starts here (docs/adding-a-recipe-field.md).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from sous_events.contracts.base import Snapshot

ErrorHandling = Literal["stop", "continue", "retry", "skip"]
ExecutionMode = Literal["sequential", "parallel"]
ScheduleType = Literal["manual", "cron", "trigger", "webhook"]


class RecipeStep(Snapshot):
    step_id: str
    order: int = 0
    agent_id: str = ""
    name: str | None = None
    description: str | None = None
    prompt_template: str = ""
    error_handling: ErrorHandling = "stop"
    max_retries: int | None = None
    retry_delay: float | None = None
    timeout: float | None = None
    output_key: str | None = None
    max_iterations: int | None = None
    depends_on: list[str] | None = None
    # A later step this step's output is for (every later step gets every output).
    pass_to: str | None = None


class InputSpec(Snapshot):
    type: str = "string"
    required: bool = False
    default: Any = None
    description: str = ""


class OutputSpec(Snapshot):
    type: str = "string"


class ExecutionConfig(Snapshot):
    mode: ExecutionMode = "sequential"
    max_retries: int = 1
    retry_delay: float = 5
    max_retry_delay: float = 300
    timeout_per_step: float = 300
    total_timeout: float = 600
    parallel_limit: int | None = None
    auto_learning: bool = True
    quality_threshold: float | None = 0.7
    max_tokens: int | None = None
    max_cost_usd: float | None = None


class ScheduleConfig(Snapshot):
    type: ScheduleType = "manual"
    cron_expression: str | None = None
    timezone: str | None = None
    trigger_config: dict[str, Any] | None = None
    # Names of a workspace secret / an executor environment variable, never the secret itself.
    webhook_secret: str | None = None
    webhook_secret_env: str | None = None
    # Given by the catalog to webhook and trigger schedules; kept across updates.
    webhook_id: str | None = None


class ClonedFrom(Snapshot):
    """Where an installed recipe came from: the listing and the template id it had there."""

    listing_id: str = ""
    template_id: str = ""


class RecipeDefinition(Snapshot):
    template_id: str
    name: str = ""
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    template_definition: dict[str, Any] = Field(default_factory=dict)
    steps: list[RecipeStep] = Field(default_factory=list)
    inputs: dict[str, InputSpec] = Field(default_factory=dict)
    outputs: dict[str, OutputSpec] = Field(default_factory=dict)
    execution_config: ExecutionConfig = Field(default_factory=ExecutionConfig)
    schedule_config: ScheduleConfig = Field(default_factory=ScheduleConfig)
    recommended_agents: list[str] = Field(default_factory=list)
    required_tools: list[str] = Field(default_factory=list)
    preview_image: str | None = None
    documentation_url: str | None = None
    version: str = "1.0"
    changelog: list[Any] = Field(default_factory=list)

    def agent_ids(self) -> list[str]:
        """The agents the steps use, in step order, without repeats."""
        seen: list[str] = []
        for step in self.steps:
            if step.agent_id and step.agent_id not in seen:
                seen.append(step.agent_id)
        return seen


class RecipeStatistics(Snapshot):
    """Derived by the catalog from other services' events; a snapshot carries their value at its time."""

    quality_score: float | None = None
    learning_data: dict[str, Any] = Field(default_factory=dict)
    use_count: int = 0
    success_rate: float = 0.0
    popularity: float = 0.0
    average_rating: float = 0.0
    install_count: int = 0
    last_used_at: str | None = None


class RecipeSnapshot(RecipeDefinition, RecipeStatistics):
    """A recipe of a workspace. `id` is the catalog's internal id; `template_id` names it in its workspace."""

    id: str = ""
    workspace_id: str = ""
    is_public: bool = True
    is_featured: bool = False
    is_system: bool = False
    cloned_from: ClonedFrom | None = None
    created_by: str = ""
    created_at: str = ""
    updated_at: str = ""
    revision: int = 0
