"""What the quality service refuses, in domain terms; `sous_service.errors` maps them to HTTP."""

from __future__ import annotations

from sous_service.domain_errors import Conflict, NotFound


class ExecutionNotFound(NotFound):
    def __init__(self, execution_id: str) -> None:
        super().__init__("execution", execution_id, detail=f"execution '{execution_id}' not found for this recipe")


class ExecutionNotFinished(Conflict):
    code = "execution_not_finished"

    def __init__(self, execution_id: str, status: str) -> None:
        super().__init__(f"execution '{execution_id}' is {status}, not finished")
        self.execution_id = execution_id
        self.status = status


class RecipeNotFound(NotFound):
    def __init__(self, template_id: str) -> None:
        super().__init__("recipe", template_id)
