"""Shared plumbing for every Sous service: settings, database, internal context, health, logging, errors."""
