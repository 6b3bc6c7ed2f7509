"""Property-based calls to every operation of the merged public OpenAPI, through the gateway with a key."""

from __future__ import annotations

import os
import uuid

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import GenerationConfig
from schemathesis.checks import not_a_server_error, response_schema_conformance, status_code_conformance

from sous_gateway.tokens import mint_development_token

pytestmark = pytest.mark.e2e

# FastAPI emits OpenAPI 3.1, which schemathesis 3.x supports behind this switch.
schemathesis.experimental.OPEN_API_3_1.enable()

EXAMPLES = int(os.environ.get("SOUS_SCHEMATHESIS_EXAMPLES", "8"))


@pytest.fixture(scope="session")
def api_key_headers(stack) -> dict[str, str]:
    workspace = f"fuzz-{uuid.uuid4().hex[:6]}"
    token = mint_development_token("fuzzer", [workspace], roles=("admin", "moderator"), secret=stack.jwt_secret)
    scopes = [
        "recipes:read",
        "recipes:write",
        "executions:run",
        "executions:read",
        "quality:write",
        "marketplace:submit",
        "marketplace:moderate",
        "keys:admin",
    ]
    response = httpx.post(
        f"{stack.gateway_url}/api/api-keys",
        json={"name": "fuzzer", "scopes": scopes},
        headers={"Authorization": f"Bearer {token}", "X-Workspace-ID": workspace},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return {"X-API-Key": response.json()["key"], "X-Workspace-ID": workspace}


@pytest.fixture(scope="session")
def public_schema(stack):
    return schemathesis.from_uri(f"{stack.gateway_url}/openapi.json", base_url=stack.gateway_url)


# Credentials are ours (a valid key); generated Authorization values would only test the 401 path.
schema = schemathesis.from_pytest_fixture(
    "public_schema", generation_config=GenerationConfig(with_security_parameters=False)
)


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_operation_answers_5xx_or_breaks_its_schema(case, api_key_headers):
    generated = {k: v for k, v in (case.headers or {}).items() if k.lower() not in ("authorization", "x-api-key")}
    response = case.call(headers={**generated, **api_key_headers}, timeout=30)
    case.validate_response(response, checks=(not_a_server_error, status_code_conformance, response_schema_conformance))
