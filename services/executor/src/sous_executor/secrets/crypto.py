"""Envelope encryption: a fresh data key per secret, wrapped by a key-encryption key (KEK) with an id.

The value is sealed with AES-256-GCM under its data key; the data key is sealed under the active KEK.
Both bind the workspace and the secret name as associated data, so a row copied to another workspace
or name does not decrypt. Rotating a KEK re-wraps data keys only; values are never re-encrypted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

NONCE = 12


class SecretCryptoError(Exception):
    """A sealed secret cannot be opened (unknown KEK id, tampered row, wrong key)."""


@dataclass(frozen=True)
class Sealed:
    kek_id: str
    wrapped_key: bytes
    ciphertext: bytes


def _derive(material: str) -> bytes:
    # Operators hand over any high-entropy string; HKDF turns it into a uniform 256-bit key.
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"sous-secrets-kek-v1").derive(material.encode())


def parse_keks(value: str) -> list[tuple[str, bytes]]:
    """`id:material[,id:material...]`, the first one active; a bare material gets the id `default`."""
    keks: list[tuple[str, bytes]] = []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        kek_id, sep, material = part.partition(":")
        if not sep:
            kek_id, material = "default", part
        if not kek_id or len(material) < 16:
            raise ValueError("SOUS_SECRETS_KEK entries are id:material with at least 16 characters of material")
        if any(existing == kek_id for existing, _ in keks):
            raise ValueError(f"SOUS_SECRETS_KEK lists the id {kek_id!r} twice")
        keks.append((kek_id, _derive(material)))
    if not keks:
        raise ValueError("SOUS_SECRETS_KEK is empty")
    return keks


def _seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def _open(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(sealed[:NONCE], sealed[NONCE:], aad)
    except (InvalidTag, ValueError) as exc:
        raise SecretCryptoError("the secret cannot be decrypted") from exc


def _aad(workspace_id: str, name: str, kek_id: str | None = None) -> bytes:
    parts = [workspace_id, name] if kek_id is None else [kek_id, workspace_id, name]
    return "\x1f".join(parts).encode()


class Keyring:
    def __init__(self, keks: list[tuple[str, bytes]]) -> None:
        self.active_id, self._active = keks[0]
        self._keys = dict(keks)

    @classmethod
    def from_setting(cls, value: str) -> Keyring:
        return cls(parse_keks(value))

    def seal(self, workspace_id: str, name: str, value: str) -> Sealed:
        data_key = AESGCM.generate_key(bit_length=256)
        ciphertext = _seal(data_key, value.encode(), _aad(workspace_id, name))
        wrapped = _seal(self._active, data_key, _aad(workspace_id, name, self.active_id))
        return Sealed(self.active_id, wrapped, ciphertext)

    def _unwrap(self, workspace_id: str, name: str, sealed: Sealed) -> bytes:
        kek = self._keys.get(sealed.kek_id)
        if kek is None:
            raise SecretCryptoError(f"unknown key-encryption key id {sealed.kek_id!r}")
        return _open(kek, sealed.wrapped_key, _aad(workspace_id, name, sealed.kek_id))

    def open(self, workspace_id: str, name: str, sealed: Sealed) -> str:
        data_key = self._unwrap(workspace_id, name, sealed)
        return _open(data_key, sealed.ciphertext, _aad(workspace_id, name)).decode()

    def rewrap(self, workspace_id: str, name: str, sealed: Sealed) -> Sealed:
        """The same data key and ciphertext, wrapped by the active KEK."""
        if sealed.kek_id == self.active_id:
            return sealed
        data_key = self._unwrap(workspace_id, name, sealed)
        wrapped = _seal(self._active, data_key, _aad(workspace_id, name, self.active_id))
        return Sealed(self.active_id, wrapped, sealed.ciphertext)
