"""The origin platform's web client against a stack of Sous, through the gateway, as that client calls it.

The gateway is configured for Clerk session tokens (docs/security.md, Identity providers): tokens are signed
here with a locally generated RSA key whose JWKS a small HTTP server of this test session serves. `Origin`
sends what the client's `request()` sends: `Content-Type: application/json` on every call, the session JWT
as a Bearer token and the organization's id as `X-Workspace-ID`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from sous_local.stack import Stack

ISSUER = "https://clerk.compat.test"
APP_ORIGIN = "http://localhost:3000"
KID = f"compat-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def signing_key() -> Any:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def jwks_url(signing_key: Any) -> Iterator[str]:
    jwk = json.loads(RSAAlgorithm.to_jwk(signing_key.public_key()))
    document = json.dumps({"keys": [{**jwk, "kid": KID, "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(document)))
            self.end_headers()
            self.wfile.write(document)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def stack(jwks_url: str) -> Iterator[Stack]:
    state = Path(tempfile.mkdtemp(prefix="sous-compat-"))
    broker = "kafka" if os.environ.get("SOUS_TEST_BROKER") == "kafka" else "embedded"
    env = {
        "SOUS_RATE_LIMIT_PER_MINUTE": "100000",
        "SOUS_RATE_LIMIT_BURST": "10000",
        "SOUS_WORKSPACE_RATE_LIMIT_PER_MINUTE": "100000",
        "SOUS_WORKSPACE_RATE_LIMIT_BURST": "10000",
        "SOUS_MARKETPLACE_GATE_MIN_RUNS": "0",
        # Clerk, as docs/security.md configures it
        "SOUS_JWT_ALGORITHMS": "RS256",
        "SOUS_JWT_JWKS_URL": jwks_url,
        "SOUS_JWT_ISSUER": ISSUER,
        "SOUS_JWT_AUDIENCE": "",
        "SOUS_JWT_AUTHORIZED_PARTIES": APP_ORIGIN,
        "SOUS_JWT_WORKSPACES_CLAIM": "org_id",
        "SOUS_JWT_ROLES_CLAIM": "org_role",
        "SOUS_JWT_ROLE_MAP": "org:admin=admin,org:member=member,org:moderator=moderator",
    }
    running = Stack(state, broker=broker, env=env, durable_postgres=False, ports="auto", quiet=True)
    running.start()
    try:
        yield running
    finally:
        running.stop()
        shutil.rmtree(state, ignore_errors=True)


def clerk_session_token(key: Any, user: str, org: str | None, role: str = "org:admin", azp: str = APP_ORIGIN) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {"iss": ISSUER, "sub": user, "azp": azp, "sid": f"sess_{uuid.uuid4().hex[:8]}"}
    claims |= {"iat": now, "nbf": now, "exp": now + 600}
    if org is not None:
        claims |= {"org_id": org, "org_role": role, "org_slug": org}
    return pyjwt.encode(claims, key, algorithm="RS256", headers={"kid": KID})


class Origin:
    """The origin client's `request()`: JSON content type always, Bearer session JWT, X-Workspace-ID."""

    def __init__(self, client: httpx.AsyncClient, token: str, workspace: str) -> None:
        self.client = client
        self.workspace = workspace
        self.headers = {
            "Content-Type": "application/json",
            "Authorization": f"Bearer {token}",
            "X-Workspace-ID": workspace,
        }

    async def call(self, method: str, endpoint: str, body: Any = None) -> httpx.Response:
        content = json.dumps(body) if body is not None else None
        return await self.client.request(method, endpoint, headers=self.headers, content=content)

    async def ok(self, method: str, endpoint: str, body: Any = None, status: int = 200) -> Any:
        response = await self.call(method, endpoint, body)
        assert response.status_code == status, f"{method} {endpoint}: {response.status_code} {response.text}"
        return response.json()


@pytest.fixture
async def gateway(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30, follow_redirects=True) as client:
        yield client


@pytest.fixture
def origin(gateway: httpx.AsyncClient, signing_key: Any) -> Callable[..., Origin]:
    def make(org: str | None = None, role: str = "org:admin", user: str | None = None) -> Origin:
        organization = org or f"org_{uuid.uuid4().hex[:10]}"
        token = clerk_session_token(signing_key, user or f"user_{uuid.uuid4().hex[:8]}", organization, role)
        return Origin(gateway, token, organization)

    return make
