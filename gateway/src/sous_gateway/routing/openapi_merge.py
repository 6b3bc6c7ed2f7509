"""One OpenAPI document for the public API, merged from every service's own document."""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx

from sous_gateway.routing.table import Match, RouteTable

logger = logging.getLogger("sous.gateway.openapi")

_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")
_ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
_ERROR_SCHEMA = {
    "type": "object",
    "title": "ErrorBody",
    "required": ["detail", "code"],
    "properties": {"detail": {"type": "string", "title": "Detail"}, "code": {"type": "string", "title": "Code"}},
}
SECURITY_SCHEMES = {
    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}
_WORKSPACE_PARAMETER = {
    "name": "X-Workspace-ID",
    "in": "header",
    "required": False,
    "description": "The workspace to act in; one of the caller's (an API key's is fixed).",
    "schema": {"type": "string"},
}
_GATEWAY_ERRORS = {
    "401": "Missing or invalid credentials",
    "403": "Workspace or scope not allowed",
    "429": "Rate limit, failed-authentication limit or stream cap reached (see Retry-After)",
}


def _rewrite_refs(node: Any, renames: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {
            k: (renames.get(v, v) if k == "$ref" and isinstance(v, str) else _rewrite_refs(v, renames))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rewrite_refs(item, renames) for item in node]
    return node


def _merge_components(target: dict[str, Any], service: str, components: dict[str, Any]) -> dict[str, str]:
    """Components identical to one already present are shared; a clash of names is namespaced."""
    sections = {s: e for s, e in components.items() if s != "securitySchemes" and isinstance(e, dict)}
    renames: dict[str, str] = {}
    changed = True
    while changed:  # renaming one component can change the components that refer to it
        changed = False
        for section, entries in sections.items():
            existing = target.get(section, {})
            for name, value in entries.items():
                ref = f"#/components/{section}/{name}"
                if ref in renames or name not in existing:
                    continue
                if _rewrite_refs(value, renames) != existing[name]:
                    renames[ref] = f"#/components/{section}/{service}_{name}"
                    changed = True
    for section, entries in sections.items():
        bucket = target.setdefault(section, {})
        for name, value in entries.items():
            new_ref = renames.get(f"#/components/{section}/{name}")
            key = new_ref.rsplit("/", 1)[1] if new_ref else name
            bucket.setdefault(key, _rewrite_refs(value, renames))
    return renames


def _decorate(operation: dict[str, Any], public: bool, service: str) -> dict[str, Any]:
    operation.setdefault("tags", [service])
    responses = operation.setdefault("responses", {})
    # Requests the HTTP server itself refuses (malformed framing or headers) never reach a route: plain text.
    # The gateway's own path guard answers JSON (`invalid_path`) on every route, public ones included, so no
    # content type is pinned here.
    responses.setdefault(
        "400", {"description": "Malformed HTTP request, or a path with '.'/'..' segments or encoded slashes"}
    )
    if public:
        operation["security"] = []
        return operation
    params = operation.setdefault("parameters", [])
    if not any(isinstance(p, dict) and p.get("name", "").lower() == "x-workspace-id" for p in params):
        params.append(dict(_WORKSPACE_PARAMETER))
    for status, description in _GATEWAY_ERRORS.items():
        responses.setdefault(
            status, {"description": description, "content": {"application/json": {"schema": _ERROR_REF}}}
        )
    if "requestBody" in operation:
        responses.setdefault(
            "413",
            {"description": "Request body too large", "content": {"application/json": {"schema": _ERROR_REF}}},
        )
    return operation


def merge_documents(
    gateway_doc: dict[str, Any], service_docs: dict[str, dict[str, Any]], table: RouteTable
) -> dict[str, Any]:
    merged: dict[str, Any] = {
        "openapi": gateway_doc.get("openapi", "3.1.0"),
        "info": gateway_doc.get("info", {"title": "Sous API", "version": "0.1.0"}),
        "paths": {},
        "components": {"schemas": {"ErrorBody": _ERROR_SCHEMA}, "securitySchemes": dict(SECURITY_SCHEMES)},
        "security": [{"bearerAuth": []}, {"apiKey": []}],
    }
    operation_ids: set[str] = set()
    sources = [("gateway", gateway_doc), *sorted(service_docs.items())]
    for service, doc in sources:
        doc = copy.deepcopy(doc)
        components = doc.get("components", {})
        if service == "gateway":
            # the gateway's own schemas win their names
            for section, entries in components.items():
                if section != "securitySchemes" and isinstance(entries, dict):
                    merged["components"].setdefault(section, {}).update(entries)
            renames: dict[str, str] = {}
        else:
            renames = _merge_components(merged["components"], service, components)
        for path, item in doc.get("paths", {}).items():
            if not path.startswith("/api/") or not isinstance(item, dict):
                continue
            for method in _METHODS:
                operation = item.get(method)
                if not isinstance(operation, dict):
                    continue
                match = table.resolve(method, path, template=True)
                if not isinstance(match, Match) or match.route.service != service:
                    continue  # not routed to this service: the gateway would never reach it
                operation = _rewrite_refs(operation, renames)
                op_id = operation.get("operationId")
                if isinstance(op_id, str):
                    if op_id in operation_ids:
                        op_id = f"{service}_{op_id}"
                        operation["operationId"] = op_id
                    operation_ids.add(op_id)
                if "parameters" in item and "parameters" not in operation:
                    operation["parameters"] = _rewrite_refs(item["parameters"], renames)
                target = merged["paths"].setdefault(path, {})
                target[method] = _decorate(operation, match.route.auth == "webhook", service)
    return merged


class OpenApiMerger:
    """Fetches each service's document lazily and caches the merged result."""

    def __init__(
        self,
        upstreams: dict[str, str],
        client: httpx.AsyncClient,
        table: RouteTable,
        ttl_s: float,
        gateway_doc: Callable[[], dict[str, Any]] | None = None,
        fetch_timeout_s: float = 5.0,
    ) -> None:
        self._upstreams = upstreams
        self._client = client
        self._table = table
        self.gateway_doc: Callable[[], dict[str, Any]] = gateway_doc or dict
        self._ttl_s = ttl_s
        self._timeout = fetch_timeout_s
        self._docs: dict[str, dict[str, Any]] = {}
        self._merged: dict[str, Any] | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def _fetch(self, service: str, base: str) -> tuple[str, dict[str, Any] | None]:
        try:
            response = await self._client.get(f"{base}/openapi.json", timeout=self._timeout)
            response.raise_for_status()
            doc = response.json()
            return service, doc if isinstance(doc, dict) else None
        except (httpx.HTTPError, ValueError) as exc:
            logger.warning("could not fetch the %s OpenAPI document: %s", service, exc)
            return service, None

    async def document(self) -> dict[str, Any]:
        async with self._lock:
            now = time.monotonic()
            if self._merged is not None and now < self._expires:
                return self._merged
            results = await asyncio.gather(*(self._fetch(s, b) for s, b in self._upstreams.items()))
            complete = True
            for service, doc in results:
                if doc is not None:
                    self._docs[service] = doc  # keep the last good document when a fetch fails
                elif service not in self._docs:
                    complete = False
            self._merged = merge_documents(self.gateway_doc(), self._docs, self._table)
            # retry soon while a service is missing from the document
            self._expires = now + (self._ttl_s if complete else min(self._ttl_s, 5.0))
            return self._merged
