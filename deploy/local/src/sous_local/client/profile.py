"""Where the client commands find the gateway and a credential: a profile file, the environment, flags.

The profile is a small TOML file (default `$XDG_CONFIG_HOME/sous/profile.toml`, else
`~/.config/sous/profile.toml`; `SOUS_PROFILE` or `--profile` name another one):

    url = "http://127.0.0.1:8000"
    workspace = "default"
    api_key = "sous_..."      # or: token = "eyJ..."

`sous up` writes it. Each value can be overridden by `SOUS_URL`, `SOUS_WORKSPACE`, `SOUS_API_KEY`,
`SOUS_TOKEN`, and those by the flags `--url`, `--workspace`, `--api-key`, `--token`.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8000"
FIELDS = ("url", "workspace", "api_key", "token")


class ProfileError(Exception):
    pass


@dataclass(frozen=True)
class Profile:
    url: str = DEFAULT_URL
    workspace: str = ""
    api_key: str = ""
    token: str = ""
    path: Path | None = None

    def headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.api_key:
            headers["X-API-Key"] = self.api_key
        elif self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.workspace:
            headers["X-Workspace-ID"] = self.workspace
        return headers


def default_profile_path(env: Mapping[str, str] | None = None) -> Path:
    source = os.environ if env is None else env
    if source.get("SOUS_PROFILE"):
        return Path(source["SOUS_PROFILE"]).expanduser()
    base = source.get("XDG_CONFIG_HOME") or str(Path(source.get("HOME") or Path.home()) / ".config")
    return Path(base).expanduser() / "sous" / "profile.toml"


def read_profile_file(path: Path) -> dict[str, str]:
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ProfileError(f"cannot read the profile {path}: {exc}") from exc
    return {key: str(data[key]) for key in FIELDS if key in data and data[key] is not None}


def write_profile(path: Path, **values: str) -> Path:
    """Writes (replaces) the profile file, readable by its owner only."""
    lines = ["# Written by `sous up`; see `sous --help` for the client commands."]
    for key in FIELDS:
        value = values.get(key)
        if value:
            lines.append(f"{key} = {json.dumps(value)}")  # a JSON string is a valid TOML basic string
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text("\n".join(lines) + "\n")
    temporary.chmod(0o600)
    temporary.replace(path)
    return path


def load_profile(
    path: Path | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, str | None] | None = None,
) -> Profile:
    """The profile file, then `SOUS_URL`/`SOUS_WORKSPACE`/`SOUS_API_KEY`/`SOUS_TOKEN`, then flags."""
    source = os.environ if env is None else env
    where = path or default_profile_path(source)
    values: dict[str, str] = read_profile_file(where)
    for key in FIELDS:
        from_env = source.get(f"SOUS_{key.upper()}")
        if from_env:
            values[key] = from_env
    for key, value in (flags or {}).items():
        if value:
            values[key] = value
    if values.get("token") and (flags or {}).get("token") and not (flags or {}).get("api_key"):
        values.pop("api_key", None)  # an explicit --token wins over a key from the file
    return Profile(
        url=(values.get("url") or DEFAULT_URL).rstrip("/"),
        workspace=values.get("workspace", ""),
        api_key=values.get("api_key", ""),
        token=values.get("token", ""),
        path=where,
    )
