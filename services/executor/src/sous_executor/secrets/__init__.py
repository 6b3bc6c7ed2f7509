"""Workspace secrets: envelope-encrypted at rest, write-only through the API, resolved by name."""
