"""The offline model server: an OpenAI-compatible endpoint with deterministic answers and tool calls.

Run it with `python -m sous_local.model_server --host 127.0.0.1 --port N`; the prompt directives it
understands are documented in deploy/local/README.md.
"""

from sous_local.model_server.app import DEFAULT_MODEL, MODEL_ALIASES, create_app

__all__ = ["DEFAULT_MODEL", "MODEL_ALIASES", "create_app"]
