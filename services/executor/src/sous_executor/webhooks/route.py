"""POST /api/webhooks/recipe/{webhook_id}: a third party starts a recipe with a signed delivery."""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request

from sous_executor.commands import StartFromWebhook
from sous_executor.handlers import ExecutorService
from sous_executor.secrets.resolver import Credentials, CredentialUnavailable
from sous_executor.webhooks.signing import InvalidSignature, verify
from sous_service.caller import Caller
from sous_service.errors import ApiError, InputInvalid, not_found, responses
from sous_service.web import Context

logger = logging.getLogger("sous.executor.webhooks")
PATH = "/api/webhooks/recipe/{webhook_id}"


def _unauthorized() -> ApiError:
    # One answer for every failure: the caller learns nothing about the secret or its configuration.
    return ApiError(401, "invalid_signature", "missing or invalid webhook signature")


def _input_data(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        parsed = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputInvalid.single("body", "the webhook body must be JSON") from exc
    if not isinstance(parsed, dict):
        return {}
    inner = parsed.get("input_data")
    return inner if isinstance(inner, dict) else parsed


def build_webhook_router(service: ExecutorService, credentials: Credentials) -> APIRouter:
    router = APIRouter()

    @router.post(
        PATH,
        status_code=202,
        summary="Webhook trigger",
        description="Starts the recipe with this webhook id; the JSON body is its input_data. Deliveries are "
        "signed per Standard Webhooks with the secret the recipe's schedule_config names (`webhook_secret`, a "
        "workspace secret): `webhook-id`, `webhook-timestamp` (within 5 minutes) and `webhook-signature` "
        "(`v1,<base64 HMAC-SHA256>`) are required. A webhook-id is accepted once; each webhook accepts "
        "SOUS_WEBHOOK_RATE_LIMIT_PER_MINUTE deliveries per minute.",
        responses=responses(409, 429),
        tags=["executions"],
    )
    async def webhook(
        webhook_id: str,
        request: Request,
        ctx: Context,
        webhook_id_header: Annotated[str | None, Header(alias="webhook-id")] = None,
        webhook_timestamp: Annotated[str | None, Header(alias="webhook-timestamp")] = None,
        webhook_signature: Annotated[str | None, Header(alias="webhook-signature")] = None,
    ) -> dict[str, Any]:
        found = await service.views.recipe_for_webhook(webhook_id)
        if found is None:
            raise not_found("webhook", webhook_id)
        workspace_id, recipe = found
        if ctx.auth_type != "system" and ctx.workspace_id and ctx.workspace_id != workspace_id:
            raise not_found("webhook", webhook_id)
        raw = await request.body()
        schedule = recipe.get("schedule_config") or {}
        try:
            secret = await credentials.resolve(
                workspace_id,
                secret=schedule.get("webhook_secret"),
                env=schedule.get("webhook_secret_env"),
                what="webhook secret",
            )
        except CredentialUnavailable:
            logger.warning("webhook %s: its secret reference does not resolve", webhook_id)
            raise _unauthorized() from None
        if secret is None:
            logger.warning("webhook %s: refused, the recipe names no webhook secret", webhook_id)
            raise _unauthorized()
        headers = {
            "webhook-id": webhook_id_header or "",
            "webhook-timestamp": webhook_timestamp or "",
            "webhook-signature": webhook_signature or "",
        }
        try:
            message_id = verify(secret, raw, headers)
        except InvalidSignature:
            raise _unauthorized() from None
        if len(message_id) > 200:
            raise InputInvalid.single("webhook-id", "at most 200 characters")
        command = StartFromWebhook(
            workspace_id=workspace_id,
            recipe=recipe,
            webhook_id=webhook_id,
            message_id=message_id,
            input_data=_input_data(raw),
        )
        return await service.start_from_webhook(command, Caller.from_context(ctx))

    return router
