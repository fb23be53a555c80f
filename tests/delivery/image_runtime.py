"""Build the image with buildah and start containers from it with runc, as a kubelet's runtime would.

No Docker engine is needed: `image/build.sh` (what `make image` runs) builds the Dockerfile with
buildah, and each container is an OCI bundle for runc over the image's root filesystem: the
image's user, entry environment and working directory, the pod's securityContext (read-only root,
no capabilities, no privilege escalation), a tmpfs at /tmp as the chart's emptyDir, and a network
namespace of its own or one shared with another container, as a pod's containers share one.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BUILDAH = ["buildah", "--storage-driver", "vfs"]
TOOLS = ("buildah", "debootstrap", "runc", "nsenter")


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def build(tag: str | None = None) -> str:
    """The image named by SWITCHYARD_IMAGE (CI builds it first with `make image`), or a fresh build
    of this work tree under a tag of its own (work trees on one machine do not share a tag)."""
    given = os.environ.get("SWITCHYARD_IMAGE")
    if given:
        return given
    tag = tag or f"localhost/switchyard:test-{hashlib.sha256(str(ROOT).encode()).hexdigest()[:10]}"
    result = subprocess.run(
        [str(ROOT / "image" / "build.sh")], env={**os.environ, "IMAGE": tag},
        capture_output=True, text=True, timeout=1200, check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"image/build.sh failed:\n{result.stderr[-4000:]}")
    return tag


def image_config(image: str) -> dict[str, Any]:
    out = subprocess.run([*BUILDAH, "inspect", "--type", "image", image],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    config: dict[str, Any] = json.loads(out)["OCIv1"]["config"]
    return config


@contextmanager
def mounted_rootfs(image: str) -> Iterator[Path]:
    """A working container of the image, mounted: the files every container here runs from."""
    name = f"switchyard-test-{os.getpid()}"
    subprocess.run([*BUILDAH, "rm", name], capture_output=True, check=False)
    subprocess.run([*BUILDAH, "from", "--pull-never", "--name", name, image],
                   capture_output=True, text=True, timeout=300, check=True)
    try:
        path = subprocess.run([*BUILDAH, "mount", name], capture_output=True, text=True,
                              timeout=60, check=True).stdout.strip()
        yield Path(path)
    finally:
        subprocess.run([*BUILDAH, "rm", name], capture_output=True, timeout=120, check=False)


def tree_bytes(path: Path) -> int:
    """Bytes of the files under path, each inode once (as a layer stores them, uncompressed)."""
    seen: set[int] = set()
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            st = os.lstat(os.path.join(folder, name))
            if st.st_ino not in seen:
                seen.add(st.st_ino)
                total += st.st_size
    return total


@dataclass
class Mount:
    source: Path
    destination: str
    writable: bool = False


@dataclass
class Container:
    id: str
    process: asyncio.subprocess.Process
    runtime: Runtime

    @property
    def pid(self) -> int:
        """The container's first process, as the host sees it (its namespaces are under /proc)."""
        return int(self.runtime.state(self.id)["pid"])

    async def line(self, timeout: float = 30) -> bytes:
        assert self.process.stdout is not None
        return await asyncio.wait_for(self.process.stdout.readline(), timeout)

    async def stop(self, timeout: float = 15) -> tuple[int, bytes]:
        """SIGTERM, as a kubelet stops a container (runc passes it on); the exit code and stderr."""
        self.process.terminate()
        try:
            _, err = await asyncio.wait_for(self.process.communicate(), timeout)
        finally:
            self.runtime.delete(self.id)
        assert self.process.returncode is not None
        return self.process.returncode, err


@dataclass
class Runtime:
    """runc over one read-only root filesystem; `security` is a Kubernetes securityContext."""

    rootfs: Path
    image: dict[str, Any]
    security: Mapping[str, Any]
    state_dir: Path
    bundles: Path
    started: list[str] = field(default_factory=list)

    def spec(self, args: Sequence[str], env: Mapping[str, str], mounts: Sequence[Mount],
             join_network_of: int | None) -> dict[str, Any]:
        subprocess.run(["runc", "spec", "--bundle", str(self.bundles)], check=True, timeout=30)
        spec: dict[str, Any] = json.loads((self.bundles / "config.json").read_text())
        (self.bundles / "config.json").unlink()
        uid, _, gid = str(self.image.get("User") or "0").partition(":")
        if "runAsUser" in self.security:  # a pod's runAsUser overrides the image's USER
            uid = gid = str(self.security["runAsUser"])
        process = spec["process"]
        process.update(
            terminal=False, args=list(args), cwd=self.image.get("WorkingDir") or "/",
            user={"uid": int(uid), "gid": int(gid or uid)},
            env=[*self.image.get("Env", []), *(f"{k}={v}" for k, v in env.items())],
            noNewPrivileges=not self.security.get("allowPrivilegeEscalation", True),
        )
        if "ALL" in self.security.get("capabilities", {}).get("drop", []):
            process["capabilities"] = {kind: [] for kind in process["capabilities"]}
        spec["root"] = {"path": str(self.rootfs), "readonly": bool(self.security.get("readOnlyRootFilesystem"))}
        spec["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                               "options": ["nosuid", "nodev", "mode=1777", "size=64m"]})
        for mount in mounts:
            spec["mounts"].append({"destination": mount.destination, "type": "bind", "source": str(mount.source),
                                   "options": ["rbind", "rw" if mount.writable else "ro"]})
        if join_network_of is not None:
            spec["linux"]["namespaces"] = [
                {"type": "network", "path": f"/proc/{join_network_of}/ns/net"} if ns["type"] == "network" else ns
                for ns in spec["linux"]["namespaces"]
            ]
        return spec

    async def start(self, name: str, args: Sequence[str], env: Mapping[str, str] | None = None,
                    mounts: Sequence[Mount] = (), join_network_of: int | None = None) -> Container:
        cid = f"sy{os.getpid()}-{name}"
        bundle = self.bundles / cid
        bundle.mkdir(parents=True, exist_ok=True)
        (bundle / "config.json").write_text(json.dumps(self.spec(args, env or {}, mounts, join_network_of)))
        process = await asyncio.create_subprocess_exec(
            "runc", "--root", str(self.state_dir), "run", "--bundle", str(bundle), cid,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        self.started.append(cid)
        return Container(cid, process, self)

    async def run(self, name: str, args: Sequence[str], env: Mapping[str, str] | None = None,
                  mounts: Sequence[Mount] = ()) -> tuple[int, str, str]:
        container = await self.start(name, args, env, mounts)
        try:
            out, err = await asyncio.wait_for(container.process.communicate(), 120)
        finally:
            self.delete(container.id)
        assert container.process.returncode is not None
        return container.process.returncode, out.decode(), err.decode()

    def state(self, cid: str) -> dict[str, Any]:
        out = subprocess.run(["runc", "--root", str(self.state_dir), "state", cid],
                             capture_output=True, text=True, timeout=30, check=True).stdout
        state: dict[str, Any] = json.loads(out)
        return state

    def delete(self, cid: str) -> None:
        subprocess.run(["runc", "--root", str(self.state_dir), "delete", "--force", cid],
                       capture_output=True, timeout=30, check=False)

    def close(self) -> None:
        for cid in self.started:
            self.delete(cid)
