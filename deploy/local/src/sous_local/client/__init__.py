"""The client side of `sous`: recipes, executions and API keys through the gateway (see parser.py and commands.py)."""

from sous_local.client.parser import add_client_commands
from sous_local.client.profile import Profile, default_profile_path, load_profile, write_profile

__all__ = ["Profile", "add_client_commands", "default_profile_path", "load_profile", "write_profile"]
