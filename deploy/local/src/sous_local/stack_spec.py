"""What the local stack runs: the services in start order, their ports and databases, and its error."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

BrokerKind = Literal["embedded", "kafka"]

MODEL_SERVER = "model"


class StackError(RuntimeError):
    """The stack could not start; the message names the part that failed and why."""


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    package: str
    default_port: int
    database_name: str
    replays: bool = True

    @property
    def port_variable(self) -> str:
        return f"SOUS_{self.name.upper()}_PORT"

    @property
    def url_variable(self) -> str:
        return f"SOUS_{self.name.upper()}_URL"


# Started together; the gateway is listed last, as its readiness includes every upstream's.
SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("catalog", "sous_catalog", 8001, "sous_catalog"),
    ServiceSpec("executor", "sous_executor", 8002, "sous_executor"),
    ServiceSpec("quality", "sous_quality", 8003, "sous_quality"),
    ServiceSpec("marketplace", "sous_marketplace", 8004, "sous_marketplace"),
    ServiceSpec("gateway", "sous_gateway", 8000, "sous_gateway", replays=False),
)
SERVICE_BY_NAME: dict[str, ServiceSpec] = {spec.name: spec for spec in SERVICES}
