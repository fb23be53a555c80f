"""Keeping the served table current: the router's background tasks.

- Files: the kubelet swaps a mounted ConfigMap or Secret atomically through `..data`; a cheap
  poll of the files' identity notices it (a second at most).
- The API: when the router can reach the API server, a watch on `<policy>-routes` and
  `<policy>-credentials` sees a change as soon as the operator writes it.
Either way a new valid table is swapped in whole; an invalid one is counted, logged and refused,
and the last good one keeps serving.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

import yaml

from .credentials import CredentialStore
from .envconfig import EnvConfigError
from .kube import JSON, KubeClient, KubeError
from .server import Router
from .sources import Sources, read_table_file, table_from_document
from .table import TableError

log = logging.getLogger("switchyard.router")


def reload_from(router: Router, load: Callable[[], tuple[Any, CredentialStore]], source: str) -> bool:
    """Load a new table; on any error keep serving the last good one. True when it changed."""
    try:
        table, credentials = load()
    except (TableError, EnvConfigError, OSError, yaml.YAMLError, ValueError) as exc:
        router.metrics.table_loads.labels("rejected").inc()
        log.error("new routing table from %s rejected, still serving the last good one: %s", source, exc)
        return False
    return router.load(table, credentials) is not None


def _identity(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = path.stat()  # follows the `..data` symlinks to the current projection
    except OSError:
        return None
    return (stat.st_ino, stat.st_mtime_ns, stat.st_size)


def files_signature(sources: Sources) -> tuple[object, ...]:
    parts: list[object] = []
    if sources.config is not None:
        parts.append(_identity(sources.config))
    if sources.credentials_dir is not None:
        data = sources.credentials_dir / "..data"
        if data.is_symlink():
            parts.append(os.readlink(data))
        else:
            parts.extend(_identity(p) for p in sorted(sources.credentials_dir.iterdir()) if p.is_file())
    if sources.env_file is not None:
        parts.append(_identity(sources.env_file))
    return tuple(parts)


async def watch_files(
    router: Router,
    sources: Sources,
    interval: float,
    load: Callable[[], tuple[Any, CredentialStore]] | None = None,
) -> None:
    seen = files_signature(sources)
    while True:
        await asyncio.sleep(interval)
        current = files_signature(sources)
        if current != seen:
            seen = current
            reload_from(router, load or sources.load, "files")


def credentials_from_secret(secret: JSON | None) -> CredentialStore:
    """The policy's keys from its Secret, and nothing else (never the router's environment)."""
    values: dict[str, str] = {}
    for key, encoded in ((secret or {}).get("data") or {}).items():
        value = base64.b64decode(encoded).decode().strip()
        if value:
            values[key] = value
    return CredentialStore(values)


class APIWatch:
    """Follows the policy's table (`<policy>-routes`) through the API server, and its keys
    (`<policy>-credentials`) too when they come from the API (`credentialsDelivery: APIWatch`).

    The newest table wins: the one the watch delivered, else the mounted file. Keys come from
    the Secret through the API, or from the mounted credentials directory; never from the
    router's environment. A ConfigMap the pod may not read (no `routerAccess` grant) leaves the
    mounted file as the only source, said once; a Secret it may not read is an error, retried.
    """

    def __init__(
        self,
        router: Router,
        kube: KubeClient,
        policy: str,
        *,
        config: Path | None = None,
        credentials_dir: Path | None = None,
        credentials_from_api: bool = False,
    ) -> None:
        self.router = router
        self.kube = kube
        self.names = {"configmaps": f"{policy}-routes", "secrets": f"{policy}-credentials"}
        self.objects: dict[str, JSON | None] = {"configmaps": None, "secrets": None}
        self.config = config
        self.credentials_dir = credentials_dir
        self.credentials_from_api = credentials_from_api

    def load(self) -> tuple[Any, CredentialStore]:
        configmap = self.objects["configmaps"]
        if configmap is not None:
            table = table_from_document(configmap)
        elif self.config is not None:
            table = read_table_file(self.config)
        else:
            raise TableError(f"no routing table yet: {self.names['configmaps']} has not arrived")
        if self.credentials_from_api:
            return table, credentials_from_secret(self.objects["secrets"])
        return table, CredentialStore.load(self.credentials_dir, {})

    def _apply(self) -> None:
        if self.objects["configmaps"] is not None or self.config is not None:  # keys alone make no table
            reload_from(self.router, self.load, "the API")

    async def follow(self, kind: str, retry_delay: float = 1.0) -> None:
        name = self.names[kind]
        delay = retry_delay
        while True:
            try:
                current = await self.kube.get(kind, name)
                if current is not None:
                    self.objects[kind] = current
                    self._apply()
                version = ((current or {}).get("metadata") or {}).get("resourceVersion")
                async for event in self.kube.watch(kind, name, version):
                    if event.get("type") in ("ADDED", "MODIFIED"):
                        self.objects[kind] = event["object"]
                        self._apply()
                    elif event.get("type") == "DELETED":
                        log.warning("%s/%s was deleted: still serving the last good table", kind, name)
                delay = retry_delay
            except asyncio.CancelledError:
                raise
            except KubeError as exc:
                if exc.status == 403 and kind == "configmaps":
                    log.info("this pod may not read %s/%s: following the mounted table only", kind, name)
                    return
                level = logging.ERROR if exc.status == 403 else logging.WARNING
                log.log(level, "watching %s/%s failed (%s): retrying in %gs", kind, name, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
            except Exception as exc:  # the API may be down: keep serving, retry with backoff
                log.warning("watching %s/%s failed (%s): retrying in %gs", kind, name, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def run(self) -> None:
        kinds = ["configmaps", "secrets"] if self.credentials_from_api else ["configmaps"]
        await asyncio.gather(*(self.follow(kind) for kind in kinds))


async def cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


def start(coroutines: Sequence[Coroutine[Any, Any, None]]) -> list[asyncio.Task[None]]:
    return [asyncio.ensure_future(c) for c in coroutines]
