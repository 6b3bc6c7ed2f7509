"""What the quality service refuses, in domain terms; entry points map them to HTTP in one place."""

from __future__ import annotations


class ExecutionNotFound(Exception):
    def __init__(self, execution_id: str) -> None:
        super().__init__(f"execution '{execution_id}' not found for this recipe")
        self.execution_id = execution_id


class ExecutionNotFinished(Exception):
    def __init__(self, execution_id: str, status: str) -> None:
        super().__init__(f"execution '{execution_id}' is {status}, not finished")
        self.execution_id = execution_id
        self.status = status


class RecipeNotFound(Exception):
    def __init__(self, template_id: str) -> None:
        super().__init__(f"recipe '{template_id}' not found")
        self.template_id = template_id
