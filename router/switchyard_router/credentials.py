"""Where API keys live: a mounted Secret directory and the environment, never the table."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path


class CredentialStore:
    """Resolves a credential's key name to its value.

    Looks in the credentials directory first (the operator's `<policy>-credentials` Secret,
    one file per key), then in the given environment. Values are never logged or repr'd.
    """

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self._values = dict(values or {})

    @classmethod
    def load(cls, directory: str | Path | None, environ: Mapping[str, str]) -> CredentialStore:
        values = {k: v for k, v in environ.items() if v}
        if directory is not None:
            for path in Path(directory).iterdir():
                # The kubelet's projection keeps `..data` and timestamped dirs beside the keys.
                if path.name.startswith(".") or not path.is_file():
                    continue
                value = path.read_text().strip()
                if value:
                    values[path.name] = value
        return cls(values)

    def get(self, key: str) -> str | None:
        return self._values.get(key)

    def __repr__(self) -> str:
        return f"CredentialStore({len(self._values)} keys)"
