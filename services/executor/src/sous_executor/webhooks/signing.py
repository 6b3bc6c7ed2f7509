"""Standard Webhooks signatures (https://www.standardwebhooks.com): verify inbound, sign outbound.

A secret of the form `whsec_<base64>` is used as the spec defines; any other value is the raw key
(its UTF-8 bytes), so a workspace can store either.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

TOLERANCE_S = 5 * 60  # the library's window: timestamps older or newer than this are refused


class InvalidSignature(Exception):
    pass


def _webhook(secret: str) -> Webhook:
    return Webhook(secret if secret.startswith("whsec_") else secret.encode())


def verify(secret: str, body: bytes, headers: Mapping[str, str]) -> str:
    """Checks the signature and the timestamp window; returns the message id."""
    wanted = {k: headers.get(k, "") for k in ("webhook-id", "webhook-timestamp", "webhook-signature")}
    try:
        _webhook(secret).verify(body, wanted, json_parse=False)
    except (WebhookVerificationError, ValueError, TypeError) as exc:
        raise InvalidSignature(str(exc)) from exc
    return wanted["webhook-id"]


def sign(secret: str, message_id: str, body: bytes, at: datetime | None = None) -> dict[str, str]:
    """The three headers a signed delivery carries."""
    when = at or datetime.now(UTC)
    signature = _webhook(secret).sign(message_id, when, body.decode())
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": signature,
    }
