"""Envelope encryption of workspace secrets: per-secret data keys, bound to workspace and name, rotation."""

from __future__ import annotations

import pytest

from sous_executor.secrets.crypto import Keyring, SecretCryptoError, parse_keks

pytestmark = pytest.mark.unit

OLD = "old:" + "o" * 32
NEW = "new:" + "n" * 32


def test_sealed_values_open_only_for_their_workspace_and_name() -> None:
    ring = Keyring.from_setting(OLD)
    sealed = ring.seal("w1", "openai", "sk-live-123")
    assert b"sk-live-123" not in sealed.ciphertext + sealed.wrapped_key
    assert ring.open("w1", "openai", sealed) == "sk-live-123"
    for workspace, name in (("w2", "openai"), ("w1", "other")):
        with pytest.raises(SecretCryptoError):
            ring.open(workspace, name, sealed)


def test_each_secret_gets_its_own_data_key() -> None:
    ring = Keyring.from_setting(OLD)
    a, b = ring.seal("w", "a", "same"), ring.seal("w", "a", "same")
    assert a.wrapped_key != b.wrapped_key and a.ciphertext != b.ciphertext


def test_tampered_rows_do_not_open() -> None:
    ring = Keyring.from_setting(OLD)
    sealed = ring.seal("w", "n", "value")
    flipped = bytes([sealed.ciphertext[-1] ^ 1])
    with pytest.raises(SecretCryptoError):
        ring.open("w", "n", type(sealed)(sealed.kek_id, sealed.wrapped_key, sealed.ciphertext[:-1] + flipped))


def test_rotation_rewraps_the_data_key_and_keeps_the_ciphertext() -> None:
    sealed = Keyring.from_setting(OLD).seal("w", "n", "value")
    rotated_ring = Keyring.from_setting(f"{NEW},{OLD}")
    assert rotated_ring.open("w", "n", sealed) == "value"
    rewrapped = rotated_ring.rewrap("w", "n", sealed)
    assert rewrapped.kek_id == "new" and rewrapped.ciphertext == sealed.ciphertext
    assert Keyring.from_setting(NEW).open("w", "n", rewrapped) == "value"
    with pytest.raises(SecretCryptoError, match="unknown key-encryption key"):
        Keyring.from_setting(NEW).open("w", "n", sealed)


def test_kek_setting_is_validated() -> None:
    assert parse_keks("m" * 20)[0][0] == "default"
    for bad in ("", "k:short", "a:" + "x" * 20 + ",a:" + "y" * 20):
        with pytest.raises(ValueError):
            parse_keks(bad)
