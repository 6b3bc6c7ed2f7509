"""API keys: `sous_<id>_<secret>`, shown once, stored as a keyed hash, looked up by id.

Hashing choice: the secret is 32 random characters from a 62-letter alphabet (~190 bits), so no
guessing attack is feasible and a slow password hash (scrypt, bcrypt) would add no protection while
costing tens of milliseconds of CPU on every request (a denial-of-service lever). The hash is
HMAC-SHA256 keyed with a pepper that lives in the gateway's configuration, not in the database: a
stolen table alone cannot even confirm a guessed key. Comparison is constant-time.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
import string
import time
from datetime import UTC, datetime, timedelta

from sous_gateway.adapters.key_repository import ApiKeyRecord, KeyRepository
from sous_gateway.auth.principal import Principal, unauthenticated
from sous_gateway.scopes import ALL_SCOPES
from sous_service.domain_errors import Conflict, Forbidden, InputInvalid, NotFound

logger = logging.getLogger("sous.gateway.api_keys")

KEY_PREFIX = "sous"
_ALPHABET = string.ascii_letters + string.digits
_SECRET_LENGTH = 32
_ID_PATTERN = re.compile(r"^[0-9a-f]{16}$")
_SECRET_PATTERN = re.compile(rf"^[A-Za-z0-9]{{{_SECRET_LENGTH}}}$")


def derive_pepper(configured: str, internal_secret: str) -> bytes:
    if configured:
        return configured.encode()
    return hmac.new(internal_secret.encode(), b"sous-gateway-api-key-pepper", hashlib.sha256).digest()


def hash_secret(pepper: bytes, secret: str) -> bytes:
    return hmac.new(pepper, secret.encode(), hashlib.sha256).digest()


def new_key() -> tuple[str, str, str]:
    """A fresh (id, secret, full key)."""
    key_id = secrets.token_hex(8)
    secret = "".join(secrets.choice(_ALPHABET) for _ in range(_SECRET_LENGTH))
    return key_id, secret, f"{KEY_PREFIX}_{key_id}_{secret}"


def parse_key(key: str) -> tuple[str, str] | None:
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        return None
    key_id, secret = parts[1], parts[2]
    if not _ID_PATTERN.match(key_id) or not _SECRET_PATTERN.match(secret):
        return None
    return key_id, secret


class ApiKeyService:
    def __init__(
        self, repository: KeyRepository, pepper: bytes, last_used_interval_s: float, max_per_workspace: int = 100
    ) -> None:
        self._repository = repository
        self.max_per_workspace = max_per_workspace
        self._pepper = pepper
        self._last_used_interval_s = last_used_interval_s
        self._touched: dict[str, float] = {}
        self._pending: set[asyncio.Task[None]] = set()

    # -- authentication (hot path) --------------------------------------------------------------
    async def authenticate(self, presented: str) -> Principal:
        parsed = parse_key(presented.strip())
        if parsed is None:
            raise unauthenticated("invalid_api_key", "the API key is malformed")
        key_id, secret = parsed
        record = await self._repository.get(key_id)
        given = hash_secret(self._pepper, secret)
        # Compare even when the id is unknown, so timing tells nothing about which part was wrong.
        expected = record.hash if record else hash_secret(self._pepper, "")
        if not hmac.compare_digest(given, expected) or record is None:
            raise unauthenticated("invalid_api_key", "the API key is not valid")
        now = datetime.now(UTC)
        if record.revoked_at is not None:
            raise unauthenticated("api_key_revoked", "the API key has been revoked")
        if record.expires_at is not None and record.expires_at <= now:
            raise unauthenticated("api_key_expired", "the API key has expired")
        self._note_use(record.id, now)
        return Principal(
            user_id=f"key:{record.id}",
            auth_type="api_key",
            workspaces=(record.workspace_id,),
            roles=(),
            scopes=record.scopes,
            key_id=record.id,
        )

    def _note_use(self, key_id: str, now: datetime) -> None:
        """Record last_used_at at most once per interval per key, off the request path."""
        tick = time.monotonic()
        last = self._touched.get(key_id)
        if last is not None and tick - last < self._last_used_interval_s:
            return
        self._touched[key_id] = tick
        if len(self._touched) > 100_000:
            self._touched.clear()
        task = asyncio.create_task(self._touch(key_id, now))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _touch(self, key_id: str, now: datetime) -> None:
        try:
            await self._repository.touch(key_id, now)
        except Exception:
            logger.warning("could not record last use of API key %s", key_id, exc_info=True)

    async def drain(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    # -- administration -------------------------------------------------------------------------
    async def create(
        self,
        *,
        workspace_id: str,
        name: str,
        scopes: list[str],
        expires_in_days: int | None,
        created_by: str,
        creator_scopes: tuple[str, ...] | None = None,
        parent_key_id: str | None = None,
    ) -> tuple[ApiKeyRecord, str]:
        """Create a key; returns the record and the full key, which is never available again.

        A key minted by a key (`parent_key_id`) never outlives it: its expiry is capped at the parent's, and
        revoking the parent revokes it."""
        unknown = [(i, scope) for i, scope in enumerate(scopes) if scope not in ALL_SCOPES]
        if unknown:
            index, scope = unknown[0]
            raise InputInvalid.single(f"scopes[{index}]", f"unknown scope '{scope}'; known: {', '.join(ALL_SCOPES)}")
        if creator_scopes is not None:
            beyond = sorted(set(scopes) - set(creator_scopes))
            if beyond:
                raise Forbidden(f"a key cannot grant scopes its creator lacks: {beyond}", code="scope_escalation")
        key_id, secret, full_key = new_key()
        now = datetime.now(UTC)
        expires_at = now + timedelta(days=expires_in_days) if expires_in_days else None
        if parent_key_id is not None:
            parent = await self._repository.get(parent_key_id)
            if parent is None or parent.revoked_at is not None:
                raise unauthenticated("api_key_revoked", "the API key has been revoked")
            if parent.expires_at is not None and (expires_at is None or expires_at > parent.expires_at):
                expires_at = parent.expires_at
        record = ApiKeyRecord(
            id=key_id,
            workspace_id=workspace_id,
            name=name,
            scopes=tuple(dict.fromkeys(scopes)),
            hash=hash_secret(self._pepper, secret),
            prefix=f"{KEY_PREFIX}_{key_id}",
            created_by=created_by,
            created_at=now,
            expires_at=expires_at,
            revoked_at=None,
            last_used_at=None,
            parent_key_id=parent_key_id,
        )
        if not await self._repository.add(record, self.max_per_workspace):
            raise Conflict(
                f"the workspace already has {self.max_per_workspace} active API keys; revoke one first",
                code="key_limit_reached",
            )
        logger.info("API key %s created in workspace %s by %s", key_id, workspace_id, created_by)
        return record, full_key

    async def list(self, workspace_id: str) -> list[ApiKeyRecord]:
        return await self._repository.list_for_workspace(workspace_id)

    async def revoke(self, workspace_id: str, key_id: str) -> ApiKeyRecord:
        record = await self._repository.revoke(workspace_id, key_id, datetime.now(UTC))
        if record is None:
            raise NotFound("API key", key_id)
        logger.info("API key %s revoked in workspace %s", key_id, workspace_id)
        return record
