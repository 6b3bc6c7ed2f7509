"""Composio tools, enabled only when COMPOSIO_API_KEY is set; the `composio` SDK is imported lazily.

Install the SDK next to the executor (`pip install composio`) to use it; without it the provider logs a
warning and offers no tools, so the executor still starts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from sous_executor.tools.builtin import Tool, ToolError

logger = logging.getLogger("sous.executor.composio")


def composio_tools(api_key: str, toolkits: Sequence[str], user_id: str = "sous") -> list[Tool]:
    if not api_key or not toolkits:
        return []
    try:
        from composio import Composio
    except ImportError:
        logger.warning("COMPOSIO_API_KEY is set but the composio SDK is not installed; no Composio tools")
        return []
    try:
        client: Any = Composio(api_key=api_key)
        raw_tools: Any = client.tools.get(user_id, toolkits=list(toolkits))
    except Exception as exc:
        logger.warning("Composio tools unavailable: %s", exc)
        return []
    tools: list[Tool] = []
    for raw in raw_tools or []:
        function = (raw.get("function") if isinstance(raw, dict) else None) or {}
        slug = str(function.get("name") or "")
        if not slug:
            continue

        async def run(arguments: dict[str, Any], _slug: str = slug) -> Any:
            result: Any = await asyncio.to_thread(client.tools.execute, _slug, arguments=arguments, user_id=user_id)
            if isinstance(result, dict) and result.get("successful") is False:
                raise ToolError(str(result.get("error") or "Composio tool failed"))
            return result.get("data") if isinstance(result, dict) else result

        tools.append(
            Tool(
                name=slug,
                description=str(function.get("description") or "")[:1000],
                parameters=dict(function.get("parameters") or {"type": "object"}),
                run=run,
                provider="composio",
            )
        )
    return tools
