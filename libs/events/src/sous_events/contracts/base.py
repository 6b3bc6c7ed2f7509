"""The base of every snapshot that crosses a service boundary inside an event payload."""

from __future__ import annotations

from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    GetJsonSchemaHandler,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    model_serializer,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema


class Record(BaseModel):
    """A small value inside a payload, always written out whole (token counts, a tool call)."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class Snapshot(BaseModel):
    """A typed view of state one service hands another.

    Readers get typed attributes with defaults; a snapshot written out again carries exactly the fields it
    was given (and any field it does not know), so a snapshot passes through a service that is older than
    its producer without losing or inventing anything, and stored events keep their exact shape.
    """

    model_config = ConfigDict(frozen=True, extra="allow", populate_by_name=True, serialize_by_alias=True)

    @model_serializer(mode="wrap")
    def _given_fields_only(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        data = handler(self)
        if not isinstance(data, dict):
            return data
        given = {self._wire_name(name, info) for name in self.model_fields_set}
        return {key: value for key, value in data.items() if key in given}

    @classmethod
    def _wire_name(cls, name: str, info: SerializationInfo) -> str:
        field = cls.model_fields.get(name)
        if field is None or not field.alias or info.by_alias is False:
            return name
        return field.alias

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        # The serializer above only leaves fields out: a written snapshot has the fields' own schema.
        if core_schema.get("serialization") is not None:
            core_schema = {k: v for k, v in core_schema.items() if k != "serialization"}
        return handler(core_schema)

    def as_dict(self) -> dict[str, Any]:
        """The snapshot as plain JSON data, for code that stores or forwards it whole."""
        return self.model_dump(mode="json")
