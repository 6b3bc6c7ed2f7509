"""Gateway overhead: the same request through the gateway and directly to the upstream service.

    .venv/bin/python gateway/bench/bench_gateway.py [--requests 2000] [--concurrency 16]

Starts a small upstream (the shared service plumbing, which verifies the signed context) and the
gateway (HS256 JWT authentication; no database is touched on this path) as separate processes on
loopback, then measures latency with one request in flight (added p50/p99) and throughput with
several in flight (requests/s). Numbers depend on the machine; compare the ratio, not the absolutes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

import httpx

from sous_local.ports import free_port, wait_for_port
from sous_service.config import DEVELOPMENT_INTERNAL_SECRET
from sous_service.internal_client import rebind_hook
from sous_service.internal_context import CONTEXT_HEADER, InternalContext, sign_context
from sous_service.web import Context, create_service_app

PATH = "/api/workflow-recipes/bench-recipe"
WORKSPACE = "ws-bench"


def serve_upstream(port: int) -> None:
    import uvicorn

    app = create_service_app(
        title="bench upstream",
        description="",
        internal_secret=DEVELOPMENT_INTERNAL_SECRET,
        service_name="catalog",
    )

    @app.get(PATH)
    async def recipe(ctx: Context) -> dict[str, object]:
        return {"template_id": "bench-recipe", "workspace_id": ctx.workspace_id, "name": "Bench", "steps": []}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def serve_gateway(port: int, upstream: str) -> None:
    import logging

    import uvicorn

    from sous_gateway.bootstrap import build_app
    from sous_gateway.config import GatewaySettings

    logging.getLogger("sous.gateway.access").setLevel(logging.WARNING)
    settings = GatewaySettings(
        port=port,
        catalog_url=upstream,
        rate_limit_per_minute=10_000_000,
        rate_limit_burst=1_000_000,
    )
    uvicorn.run(build_app(settings), host="127.0.0.1", port=port, log_level="warning", access_log=False)


# Direct requests carry a context per request, bound and single-use, as the gateway would sign it.
_SIGN_DIRECT = {"request": [rebind_hook(DEVELOPMENT_INTERNAL_SECRET, "catalog")]}


@dataclass
class Result:
    latencies_ms: list[float]
    elapsed_s: float

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def rps(self) -> float:
        return len(self.latencies_ms) / self.elapsed_s


async def run(url: str, headers: dict[str, str], total: int, concurrency: int) -> Result:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30.0, event_hooks=_SIGN_DIRECT) as client:
        for _ in range(min(200, total)):  # warm-up: connections, caches, JWKS/JIT-free paths
            (await client.get(url, headers=headers)).raise_for_status()
        latencies: list[float] = []
        remaining = total

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                start = time.perf_counter()
                response = await client.get(url, headers=headers)
                latencies.append((time.perf_counter() - start) * 1000)
                if response.status_code != 200:
                    raise RuntimeError(f"{url}: {response.status_code} {response.text}")

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return Result(latencies, time.perf_counter() - started)


async def run_interleaved(
    direct: tuple[str, dict[str, str]], gateway: tuple[str, dict[str, str]], total: int
) -> tuple[Result, Result]:
    """One request in flight, alternating direct and gateway, so machine noise hits both alike."""
    results: list[list[float]] = [[], []]
    elapsed = [0.0, 0.0]
    async with httpx.AsyncClient(timeout=30.0, event_hooks=_SIGN_DIRECT) as client:
        for _ in range(min(200, total)):
            for url, headers in (direct, gateway):
                (await client.get(url, headers=headers)).raise_for_status()
        for _ in range(total):
            for i, (url, headers) in enumerate((direct, gateway)):
                start = time.perf_counter()
                response = await client.get(url, headers=headers)
                took = time.perf_counter() - start
                response.raise_for_status()
                results[i].append(took * 1000)
                elapsed[i] += took
    return Result(results[0], elapsed[0]), Result(results[1], elapsed[1])


def _spawn(*args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}  # the development JWT secret is short by design
    return subprocess.Popen([sys.executable, __file__, *args], env=env)


async def main_async(args: argparse.Namespace) -> None:
    from sous_gateway.tokens import mint_development_token

    up_port, gw_port = free_port(), free_port()
    procs = [_spawn("--serve-upstream", str(up_port))]
    try:
        wait_for_port(up_port)
        procs.append(_spawn("--serve-gateway", str(gw_port), f"http://127.0.0.1:{up_port}"))
        wait_for_port(gw_port)
        context = InternalContext(workspace_id=WORKSPACE, user_id="bench", scopes=("recipes:read",))
        direct_headers = {CONTEXT_HEADER: sign_context(context, DEVELOPMENT_INTERNAL_SECRET)}
        token = mint_development_token("bench", [WORKSPACE], ttl_s=3600)
        gateway_headers = {"Authorization": f"Bearer {token}", "X-Workspace-ID": WORKSPACE}
        direct_url, gateway_url = f"http://127.0.0.1:{up_port}{PATH}", f"http://127.0.0.1:{gw_port}{PATH}"

        print(f"{'':26}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>9}")
        rows = {}
        for label, concurrency, total in (
            ("latency (1 in flight)", 1, args.latency_requests),
            (f"throughput ({args.concurrency} in flight)", args.concurrency, args.requests),
        ):
            if concurrency == 1:
                direct, through = await run_interleaved(
                    (direct_url, direct_headers), (gateway_url, gateway_headers), total
                )
            else:
                direct = await run(direct_url, direct_headers, total, concurrency)
                through = await run(gateway_url, gateway_headers, total, concurrency)
            rows[label] = (direct, through)
            for name, result in (("direct", direct), ("via gateway", through)):
                print(
                    f"{label.split(' (')[0] + ', ' + name:26}{result.pct(0.5):9.2f}{result.pct(0.99):9.2f}{result.rps:9.0f}"
                )
        direct, through = rows["latency (1 in flight)"]
        print(
            f"\nadded latency: p50 {through.pct(0.5) - direct.pct(0.5):+.2f} ms, "
            f"p99 {through.pct(0.99) - direct.pct(0.99):+.2f} ms ({len(direct.latencies_ms)} sequential pairs)"
        )
        direct, through = rows[f"throughput ({args.concurrency} in flight)"]
        print(
            f"throughput ratio gateway/direct: {through.rps / direct.rps:.2f} ({through.rps:.0f} vs {direct.rps:.0f} req/s)"
        )
        print(
            f"under load, median latency: direct {statistics.median(direct.latencies_ms):.2f} ms, "
            f"via gateway {statistics.median(through.latencies_ms):.2f} ms"
        )
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="requests per throughput run")
    parser.add_argument("--latency-requests", type=int, default=500, help="requests per latency run")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--serve-upstream", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-gateway", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_upstream:
        serve_upstream(args.serve_upstream)
    elif args.serve_gateway:
        serve_gateway(int(args.serve_gateway[0]), args.serve_gateway[1])
    else:
        asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
