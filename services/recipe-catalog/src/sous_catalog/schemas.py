"""Request and response models of the public API (docs/api.md, Agents and Recipes).

Inputs refuse non-finite numbers and unknown keys (422 naming the field: nothing sent is silently dropped);
the origin client's own fields are declared one by one (its spellings of Sous's fields are renamed by the
gateway, `sous_gateway.compat`). Shapes and ranges are checked here, rules that span fields (step graph,
cron, agent references) in `domain.validation`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sous_events.contracts import RecipeSnapshot
from sous_service.output_checks import OutputCheck, OutputSchema

TEMPLATE_ID_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$"
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
SECRET_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.\-]{0,127}$"
RAW_SECRET_MESSAGE = (
    "raw API keys are not accepted; store the key with PUT /api/secrets/{name} and reference it in api_key_secret"
)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, protected_namespaces=())


def refuse_raw_secret(value: Any) -> Any:
    if value is not None:
        raise ValueError(RAW_SECRET_MESSAGE)
    return value


def skills_are_names(skills: list[str] | None) -> list[str] | None:
    for skill in skills or []:
        if not skill.strip():
            raise ValueError("skills must be non-empty tool names")
    return skills


# ---------------------------------------------------------------- agents


class ModelConfigIn(_In):
    provider: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_\-]*$")
    model_id: str = Field(min_length=1, max_length=200)
    base_url: str | None = Field(default=None, max_length=2000, pattern=r"^https?://[^\s/]+")
    api_key_secret: str | None = Field(
        default=None, max_length=128, pattern=SECRET_NAME_PATTERN, description="Name of a secret of this workspace"
    )
    api_key_env: str | None = Field(
        default=None,
        max_length=200,
        pattern=ENV_NAME_PATTERN,
        description="An environment variable of the executor; only names the operator granted to this workspace",
    )
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1, le=10_000_000)
    api_key: Any = Field(default=None, exclude=True, description="Refused: use api_key_secret")

    _no_raw_secret = field_validator("api_key")(refuse_raw_secret)


class AgentConfiguration(_In):
    max_iterations: int = Field(default=10, ge=1, le=1000)


class AgentCreate(_In):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=10_000)
    llm_config: ModelConfigIn = Field(alias="model_config")
    skills: list[str] = Field(default_factory=list, max_length=200)
    configuration: AgentConfiguration = Field(default_factory=AgentConfiguration)
    status: Literal["active", "disabled"] = "active"
    api_key: Any = Field(default=None, exclude=True, description="Refused: use model_config.api_key_secret")

    _no_raw_secret = field_validator("api_key")(refuse_raw_secret)
    _skills_are_names = field_validator("skills")(skills_are_names)


class AgentUpdate(_In):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)
    llm_config: ModelConfigIn | None = Field(default=None, alias="model_config")
    skills: list[str] | None = Field(default=None, max_length=200)
    configuration: AgentConfiguration | None = None
    status: Literal["active", "disabled"] | None = None
    api_key: Any = Field(default=None, exclude=True, description="Refused: use model_config.api_key_secret")

    _no_raw_secret = field_validator("api_key")(refuse_raw_secret)
    _skills_are_names = field_validator("skills")(skills_are_names)


class ModelConfigPublic(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    provider: str
    model_id: str
    base_url: str | None = None
    api_key_secret: str | None = None
    api_key_env: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None


class AgentPublic(BaseModel):
    model_config = ConfigDict(protected_namespaces=(), populate_by_name=True)

    id: str
    number: int | None = Field(default=None, description="Stable per workspace; accepted wherever an agent id is")
    workspace_id: str
    name: str
    description: str
    llm_config: ModelConfigPublic = Field(alias="model_config")
    skills: list[str]
    configuration: dict[str, Any]
    status: str
    metrics: dict[str, Any] = Field(default_factory=dict)
    created_by: str
    created_at: str
    updated_at: str
    revision: int


class AgentList(BaseModel):
    items: list[AgentPublic]
    total: int
    skip: int
    limit: int


class AgentDeleted(BaseModel):
    message: str
    agent_id: str


# ---------------------------------------------------------------- recipes


class StepIn(_In):
    step_id: str = Field(min_length=1, max_length=200)
    order: int = Field(ge=0, le=100_000)
    agent_id: str | int = Field(
        description="The agent's id, or its number in this workspace (an integer or a string of digits)"
    )
    name: str | None = Field(default=None, max_length=500)
    description: str | None = Field(default=None, max_length=10_000)
    prompt_template: str = Field(default="", max_length=200_000)
    error_handling: Literal["stop", "continue", "retry", "skip"] = "stop"
    max_retries: int | None = Field(default=None, ge=0, le=100)
    retry_delay: float | None = Field(default=None, ge=0, le=86_400)
    timeout: float | None = Field(default=None, ge=0, le=86_400)
    output_key: str | None = Field(default=None, max_length=200)
    max_iterations: int | None = Field(default=None, ge=1, le=1000)
    depends_on: list[str] | None = Field(default=None, max_length=500)
    pass_to: str | None = Field(
        default=None,
        max_length=200,
        description="A later step this step's output is for; Sous gives every output to every later step",
    )
    pre_exec: str | None = Field(
        default=None, max_length=0, description="Pre-execution hooks are not run by Sous: only empty is accepted"
    )
    output_schema: OutputSchema = Field(
        default=None, description="JSON Schema the answer must match; the step's output is then that JSON"
    )
    checks: list[OutputCheck] | None = Field(
        default=None,
        max_length=50,
        description="Checks the answer must pass (regex, contains, length, json_path, judge)",
    )

    @field_validator("agent_id", mode="before")
    @classmethod
    def _agent_reference(cls, value: Any) -> str:
        """Numbers are kept as text here; the handler resolves them to the workspace's agent."""
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValueError("an agent id (text) or an agent number (a positive integer)")
        if isinstance(value, int) and value < 1:
            raise ValueError("an agent number is a positive integer")
        text = str(value)
        if not text.strip() or len(text) > 200:
            raise ValueError("an agent id has 1 to 200 characters")
        return text


class InputSpec(_In):
    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    type: str = Field(default="string", max_length=50)
    required: bool = False
    default: Any = None
    description: str = Field(default="", max_length=10_000)


class OutputSpec(_In):
    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    type: str = Field(default="string", max_length=50)


class ExecutionConfigIn(_In):
    mode: Literal["sequential", "parallel"] = "sequential"
    max_retries: int = Field(default=1, ge=0, le=100)
    retry_delay: float = Field(default=5, ge=0, le=86_400)
    max_retry_delay: float = Field(default=300, ge=0, le=86_400)
    timeout_per_step: float = Field(default=300, ge=0, le=604_800)
    total_timeout: float = Field(default=600, ge=0, le=604_800)
    parallel_limit: int | None = Field(default=None, ge=1, le=1000)
    auto_learning: bool = True
    quality_threshold: float | None = Field(default=0.7, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=0, le=10**12)
    max_cost_usd: float | None = Field(default=None, ge=0, le=10**9)
    memory_isolation: Literal["shared"] | None = Field(
        default=None, description="Steps share what earlier steps produced; isolated memory is not offered"
    )


class ScheduleConfigIn(_In):
    type: Literal["manual", "cron", "trigger", "webhook"] = "manual"
    cron_expression: str | None = Field(default=None, max_length=200)
    timezone: str | None = Field(default=None, max_length=100)
    trigger_config: dict[str, Any] | None = None
    webhook_secret: str | None = Field(
        default=None,
        max_length=128,
        pattern=SECRET_NAME_PATTERN,
        description="Name of a secret of this workspace that signs deliveries (Standard Webhooks)",
    )
    webhook_secret_env: str | None = Field(
        default=None,
        max_length=200,
        pattern=ENV_NAME_PATTERN,
        description="An environment variable of the executor; only names the operator granted to this workspace",
    )


class RecipeBase(_In):
    description: str | None = Field(default=None, max_length=20_000)
    tags: list[str] | None = Field(default=None, max_length=50)
    template_definition: dict[str, Any] | None = None
    steps: list[StepIn] | None = Field(default=None, max_length=500)
    inputs: dict[str, InputSpec] | None = None
    outputs: dict[str, OutputSpec] | None = None
    execution_config: ExecutionConfigIn | None = None
    schedule_config: ScheduleConfigIn | None = None
    recommended_agents: list[str] | None = Field(default=None, max_length=200)
    required_tools: list[str] | None = Field(default=None, max_length=200)
    is_public: bool | None = None
    is_featured: bool | None = None
    preview_image: str | None = Field(default=None, max_length=2000)
    documentation_url: str | None = Field(default=None, max_length=2000)
    version: str | None = Field(default=None, min_length=1, max_length=50)
    changelog: list[Any] | None = Field(default=None, max_length=1000)

    @field_validator("tags")
    @classmethod
    def _tags_not_blank(cls, tags: list[str] | None) -> list[str] | None:
        if tags is not None and any(len(t) > 100 or not t.strip() for t in tags):
            raise ValueError("tags must be non-empty strings of at most 100 characters")
        return tags


class RecipeCreate(RecipeBase):
    template_id: str = Field(min_length=1, max_length=200, pattern=TEMPLATE_ID_PATTERN)
    name: str = Field(min_length=1, max_length=300)
    description: str = Field(max_length=20_000)
    template_definition: dict[str, Any]
    steps: list[StepIn] = Field(min_length=1, max_length=500)
    is_system: bool = False


class RecipeUpdate(RecipeBase):
    name: str | None = Field(default=None, min_length=1, max_length=300)


class StepAgent(BaseModel):
    id: str | None
    number: int | None = None
    name: str | None
    model: str | None
    provider: str | None
    tool_count: int
    status: str | None


class RecipePublic(RecipeSnapshot):
    """A recipe as the API answers it: the snapshot the catalog publishes in its events, statistics included."""

    # Every field is in every answer (recipe_public fills them all): the answer's schema says so.
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)


class RecipeList(BaseModel):
    items: list[RecipePublic]
    total: int
    skip: int
    limit: int


class RecipeEnvelope(BaseModel):
    message: str
    recipe: RecipePublic


class RecipeDeletedOut(BaseModel):
    message: str
    recipe_id: str


class RecipeUseOut(BaseModel):
    message: str
    template_id: str
    use_count: int
    last_used_at: str | None


class HistoryEntry(BaseModel):
    revision: int
    event_type: str
    event_id: str
    changed_fields: list[str]
    actor: dict[str, Any]
    occurred_at: str


class RecipeHistory(BaseModel):
    template_id: str
    recipe_id: str
    revisions: list[HistoryEntry]
    recipe: RecipePublic | None = Field(
        default=None, description="With ?revision=N: the recipe as it was at that revision"
    )


class FeaturedList(BaseModel):
    items: list[RecipePublic]
    total: int
