"""Finding 4: egress by exact origin, through the gateway.

The security stack allows one external origin (the provider double on its port). Attacks: an agent's
base_url on the executor's own host and another port (its API), and the http_get tool aimed at internal
services directly or through a redirect from the allowed origin.
"""

from __future__ import annotations

import json
import uuid

import pytest

from sous_local.stack import Stack

from .provider_double import ProviderDouble
from .secure_helpers import run_agent

pytestmark = pytest.mark.e2e


async def test_a_model_endpoint_on_another_port_of_an_allowed_host_is_refused(make_api, stack: Stack) -> None:
    api = make_api()
    # Same host as the operator's model server (127.0.0.1), another port: the executor's own API.
    internal = stack.urls["executor"]
    done = await run_agent(api, {"provider": "openai", "model_id": "m", "base_url": f"{internal}/v1"})
    step = done["step_results"][0]
    assert done["status"] == "failed" and "egress" in step["error"]


async def test_http_get_reaches_the_allowed_origin_only(make_api, stack: Stack, provider: ProviderDouble) -> None:
    api = make_api()
    internal = f"{stack.urls['executor']}/healthz"
    urls = [
        f"{provider.origin}/page",
        internal,
        f"{provider.origin}/redirect?to={internal}",
    ]
    # The offline model reads tool directives from the system prompt (the agent's description).
    directives = " ".join(f"[[tool:http_get {json.dumps({'url': url})}]]" for url in urls)
    done = await run_agent(
        api,
        {"provider": "offline", "model_id": f"sous-offline-{uuid.uuid4().hex[:4]}"},
        skills=["http_get"],
        description=f"fetcher {directives}",
        iterations=6,
    )
    calls = done["step_results"][0]["tool_calls"]
    by_url = {c["arguments"]["url"]: c for c in calls}
    assert by_url[urls[0]]["error"] is None and "allowed origin" in json.dumps(by_url[urls[0]]["result"])
    for refused in urls[1:]:
        assert by_url[refused]["result"] is None and "allowlist" in by_url[refused]["error"]
