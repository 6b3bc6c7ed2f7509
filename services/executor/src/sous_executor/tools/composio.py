"""Composio tools per workspace: the workspace is the Composio user (entity), toolkits are granted per workspace.

Enabled when COMPOSIO_API_KEY is set and SOUS_COMPOSIO_WORKSPACE_TOOLKITS grants at least one toolkit.
The SDK is the executor's optional extra (`sous-executor[composio]`) and is imported lazily; without it
the executor logs a warning and offers no Composio tools. COMPOSIO_BASE_URL (read by the SDK) points it at
another API origin. The SDK's usage telemetry is off: only the API itself is called.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sous_executor.tools.builtin import Tool, ToolError

logger = logging.getLogger("sous.executor.composio")


def _sdk_client(api_key: str) -> Any:
    from composio import Composio

    return Composio(api_key=api_key, allow_tracking=False)


def normalize_grants(grants: Mapping[str, Sequence[str]]) -> dict[str, frozenset[str]]:
    return {ws: frozenset(t.strip().lower() for t in toolkits if t.strip()) for ws, toolkits in grants.items()}


async def _refused(arguments: dict[str, Any]) -> Any:
    raise ToolError("Composio tools run for a workspace only")


def composio_tools(
    api_key: str,
    grants: Mapping[str, Sequence[str]],
    client_factory: Callable[[str], Any] = _sdk_client,
) -> list[Tool]:
    """One Tool per action of every granted toolkit; each call runs as the calling workspace's user."""
    by_toolkit: dict[str, str] = {}
    for workspace, toolkits in sorted(normalize_grants(grants).items()):
        for toolkit in sorted(toolkits):
            by_toolkit.setdefault(toolkit, workspace)
    if not api_key or not by_toolkit:
        return []
    # The SDK keeps settings such as allow_tracking in context variables set by its constructor: every later
    # call runs in (a copy of) the context it was built in, wherever the router calls the tool from.
    sdk_context = contextvars.copy_context()
    try:
        client: Any = sdk_context.run(client_factory, api_key)
    except ImportError:
        logger.warning("COMPOSIO_API_KEY is set but the composio extra is not installed; no Composio tools")
        return []
    except Exception as exc:
        logger.warning("Composio unavailable: %s", type(exc).__name__)
        return []
    tools: list[Tool] = []
    for toolkit, some_workspace in by_toolkit.items():
        try:
            # Schemas do not depend on the user; any workspace granted the toolkit can list them.
            raw_tools: Any = sdk_context.run(client.tools.get, some_workspace, toolkits=[toolkit])
        except Exception as exc:
            logger.warning("Composio toolkit %s unavailable: %s", toolkit, type(exc).__name__)
            continue
        for raw in raw_tools or []:
            function = (raw.get("function") if isinstance(raw, dict) else None) or {}
            slug = str(function.get("name") or "")
            if not slug:
                continue

            async def run(workspace_id: str, arguments: dict[str, Any], _slug: str = slug) -> Any:
                # The tool runs at the toolkit version the SDK resolves (COMPOSIO_TOOLKIT_VERSION_<TOOLKIT>,
                # else the latest); without the flag the SDK refuses "latest" for direct execution.
                result: Any = await asyncio.to_thread(
                    sdk_context.copy().run,
                    client.tools.execute,
                    _slug,
                    arguments=arguments,
                    user_id=workspace_id,
                    dangerously_skip_version_check=True,
                )
                if isinstance(result, dict) and result.get("successful") is False:
                    raise ToolError(str(result.get("error") or "Composio tool failed")[:500])
                return result.get("data") if isinstance(result, dict) else result

            tools.append(
                Tool(
                    name=slug,
                    description=str(function.get("description") or "")[:1000],
                    parameters=dict(function.get("parameters") or {"type": "object"}),
                    run=_refused,
                    provider="composio",
                    run_scoped=run,
                    toolkit=toolkit,
                )
            )
    return tools
