"""Where a router's table and keys come from: a YAML file, or the environment (and `.env`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml
from dotenv import dotenv_values

from .credentials import CredentialStore
from .envconfig import credential_values, table_from_env
from .table import RoutingTable, TableError, load_table


@dataclass(frozen=True)
class Sources:
    """Standalone, a table credential names a key file or an environment variable. Following a
    policy in a cluster (`keys_from_env` off), keys come only from the policy's credentials:
    a table that names `HTTPS_PROXY` or any other variable of the router gets nothing."""

    config: Path | None
    env_file: Path | None
    credentials_dir: Path | None
    keys_from_env: bool = True

    def environment(self) -> dict[str, str]:
        """The process environment over the `.env` file: what is set explicitly wins."""
        merged: dict[str, str] = {}
        if self.env_file is not None and self.env_file.exists():
            merged.update({k: v for k, v in dotenv_values(self.env_file).items() if v is not None})
        merged.update(os.environ)
        return merged

    def load(self) -> tuple[RoutingTable, CredentialStore]:
        env = self.environment()
        if self.config is None:
            table = table_from_env(env)
            return table, CredentialStore(credential_values(env))
        keys_env = env if self.keys_from_env else {}
        return read_table_file(self.config), CredentialStore.load(self.credentials_dir, keys_env)


def read_table_file(path: Path) -> RoutingTable:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise TableError(f"cannot read routing table {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise TableError(f"{path} is not valid YAML: {exc}") from None
    return table_from_document(data)


def table_from_document(data: object) -> RoutingTable:
    """The table from a bare table document or from the operator's ConfigMap as it is."""
    if isinstance(data, Mapping) and (
        data.get("kind") == "ConfigMap" or "table.yaml" in (data.get("data") or {})
    ):
        inner = (data.get("data") or {}).get("table.yaml")
        try:
            data = yaml.safe_load(inner) if isinstance(inner, str) else inner
        except yaml.YAMLError as exc:
            raise TableError(f"table.yaml in the ConfigMap is not valid YAML: {exc}") from None
    return load_table(data)
