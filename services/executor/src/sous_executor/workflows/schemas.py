"""Request bodies of the workflow API (field errors come back as 422 with their paths)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sous_service.text import has_refused


def _refuse(value: Any) -> Any:
    # PostgreSQL refuses NUL in jsonb and text: turn it away as invalid input rather than fail the write.
    if isinstance(value, str) and has_refused(value):
        raise ValueError("NUL characters and lone surrogates are not allowed")
    if isinstance(value, dict):
        for key, item in value.items():
            _refuse(key)
            _refuse(item)
    elif isinstance(value, list):
        for item in value:
            _refuse(item)
    return value


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        return _refuse(value)


Status = Literal["draft", "active", "archived"]
InputType = Literal["string", "number", "integer", "boolean", "object", "array"]
Name = Field(min_length=1, max_length=200)
Tag = Annotated[str, Field(min_length=1, max_length=50)]
Identifier = Annotated[str, Field(min_length=1, max_length=100)]


class InputSpec(Body):
    type: InputType = "string"
    required: bool = False
    default: Any = None
    description: str = Field(default="", max_length=1000)


class WorkflowConfiguration(Body):
    planner_agent_id: str | None = Field(
        default=None, min_length=1, max_length=64, description="The planner agent; the default model when unset."
    )
    agent_ids: list[Identifier] = Field(
        default_factory=list,
        max_length=50,
        description="Agents subtasks may get; every agent of the workspace when empty.",
    )
    tools: list[Identifier] = Field(
        default_factory=list, max_length=50, description="Tools subtasks may ask for; every tool when empty."
    )
    max_subtasks: int = Field(default=6, ge=1, le=20)
    planner_max_attempts: int = Field(default=3, ge=1, le=10, description="Planner answers tried before stage 1 fails.")
    max_retries_per_subtask: int = Field(default=2, ge=0, le=10)
    retry_delay: float = Field(default=0.5, ge=0, le=300)
    timeout_per_subtask: float = Field(default=300, gt=0, le=3600)
    total_timeout: float = Field(default=1800, gt=0, le=86400)
    max_tokens: int | None = Field(default=None, ge=1, description="Token budget of the subtasks' execution.")
    max_cost_usd: float | None = Field(default=None, ge=0, description="Cost budget of the subtasks' execution.")


class WorkflowCreate(Body):
    name: str = Name
    description: str = Field(default="", max_length=4000)
    task_template: str = Field(
        min_length=1, max_length=8000, description="The task; `{input.<name>}` or `{<name>}` take inputs."
    )
    inputs: dict[str, InputSpec] = Field(default_factory=dict, max_length=50)
    owner: str | None = Field(default=None, min_length=1, max_length=200, description="Defaults to the caller.")
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    status: Status = "active"
    configuration: WorkflowConfiguration = Field(default_factory=WorkflowConfiguration)


class WorkflowUpdate(Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=4000)
    task_template: str | None = Field(default=None, min_length=1, max_length=8000)
    inputs: dict[str, InputSpec] | None = Field(default=None, max_length=50)
    owner: str | None = Field(default=None, min_length=1, max_length=200)
    tags: list[Tag] | None = Field(default=None, max_length=20)
    status: Status | None = None
    configuration: WorkflowConfiguration | None = None


class ExecuteWorkflow(Body):
    input_data: dict[str, Any] = Field(default_factory=dict)


class SaveAsRecipe(Body):
    template_id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=4000)
    tags: list[Tag] = Field(default_factory=list, max_length=20)


class CancelRun(Body):
    reason: str = Field(default="", max_length=500)
