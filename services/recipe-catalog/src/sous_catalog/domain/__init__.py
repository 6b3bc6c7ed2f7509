"""Catalog rules: pure functions and aggregates rebuilt from events; no I/O."""
