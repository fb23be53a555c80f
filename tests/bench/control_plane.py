"""The control plane at scale: the real `switchyard-operator` process against the emulated API
with N providers, M policies and R routers whose usage it pulls.

    python -m tests.bench.control_plane                      # base size, then N, M, R doubled
    python -m tests.bench.control_plane --size 50,200,2000   # one size

The operator runs as its users start it (the console script, --standalone, a kubeconfig), so
its CPU time and RSS are its own (/proc/<pid>). The emulated API (tests/operator/emulator.py)
and the simulated routers (control_plane_fleet.py) run in this process; the requests counted
are the operator's alone (its kubeconfig token marks them), and this process's CPU is printed
apart: the emulator's speed is not the operator's. Policy j routes to provider 1 + j mod (N-1),
falling back to provider 0, which every policy therefore shares; router i serves policy i mod M.

Measured per size:
  start     operator start -> every policy's ConfigMap written / every router counted in
            status.routers (an operator restart over a populated namespace)
  steady    over `--window` seconds once settled: API writes/s, reads/s, operator CPU (share of
            one core) and RSS
  change    a spec change of the shared provider -> every ConfigMap carrying the new table;
            the operator's CPU seconds and the requests it made for it
Then each doubled size's numbers as ratios to the base size's.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import resource
import shutil
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import kopf
from kmock import ResourceInfo, Server
from switchyard_operator.kube import Kube, core_path, custom_path
from switchyard_operator.outputs import HASH_ANNOTATION, MANAGED_BY
from switchyard_router import clock

from tests.operator.manifests import policy, provider, secret

from .control_plane_fleet import (
    ACCOUNT,
    NS,
    CountingEmulator,
    RouterServer,
    SimulatedRouter,
    address,
    gather_limited,
    router_pod,
    writes,
)

VERBS = {"get", "list", "watch", "create", "update", "patch", "delete"}
TOKEN = "operator-bench"  # the operator's kubeconfig token: its requests are the ones counted
TICK = os.sysconf("SC_CLK_TCK")
SCRIPT = shutil.which("switchyard-operator") or str(Path(sys.executable).with_name("switchyard-operator"))


@dataclass(frozen=True)
class Size:
    providers: int
    policies: int
    routers: int

    def __str__(self) -> str:
        return f"N={self.providers} M={self.policies} R={self.routers}"


@dataclass
class Result:
    size: Size
    tables_s: float  # start -> every ConfigMap written
    routers_s: float  # start -> every router counted
    start_cpu_s: float
    start_requests: int
    writes_per_s: float
    reads_per_s: float
    steady_cpu: float  # share of one core
    rss_mb: float
    change_s: float
    change_cpu_s: float
    change_requests: int
    change_writes: int
    bench_cpu_s: float  # the emulator and the simulated routers (this process), whole run
    steady_kinds: dict[str, int]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def until(check: Callable[[], Awaitable[bool]], timeout: float, what: str, every: float = 0.2) -> float:
    """Seconds until `check` holds (polled every `every` s); fails after `timeout`."""
    began = clock.monotonic()
    while not await check():
        if clock.monotonic() - began > timeout:
            raise TimeoutError(f"{what}: not after {timeout:.0f}s")
        await asyncio.sleep(every)
    return clock.monotonic() - began


class Bench:
    def __init__(self, size: Size, interval: float, window: float, port: int, workdir: Path) -> None:
        self.size, self.interval, self.window, self.port, self.workdir = size, interval, window, port, workdir
        self.api = CountingEmulator()
        self.api.resources.load_bundled()
        for plural, kind in (("llmproviders", "LLMProvider"), ("routingpolicies", "RoutingPolicy")):
            self.api.resources[f"switchyard.dev/v1alpha1/{plural}"] = ResourceInfo(
                kind=kind, singular=kind.lower(), namespaced=True, verbs=VERBS, subresources={"status"},
            )
        self.providers = [f"p{i:04d}" for i in range(size.providers)]
        self.policies = [f"pol{j:04d}" for j in range(size.policies)]
        self.routers: dict[str, SimulatedRouter] = {}
        for i in range(size.routers):
            j = i % size.policies
            self.routers[address(i)] = SimulatedRouter(f"router-{i:05d}", self.policies[j], self.routes_of(j))
        self.server = RouterServer(port)

    def routes_of(self, j: int) -> list[str]:
        own = self.providers[1 + j % (len(self.providers) - 1)]
        return [own, self.providers[0]]

    @property
    def counts(self) -> collections.Counter[tuple[str, str]]:
        return self.api.counts

    # ------------------------------------------------------------------ the namespace

    async def populate(self, kube: Kube) -> None:
        base = f"http://127.0.0.1:{self.port}/v1"
        await kube.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        await kube.create(core_path("secrets", NS),
                          secret(grant=",".join(self.providers), OPENAI_API_KEY="sk-bench-not-a-key"))
        await gather_limited([
            kube.create(custom_path("llmproviders", NS), provider(p, baseURL=base, healthCheck={"interval": "1h"}))
            for p in self.providers
        ])
        await gather_limited([
            kube.create(custom_path("routingpolicies", NS), policy(name, targets=[(p, "m1") for p in self.routes_of(j)]))
            for j, name in enumerate(self.policies)
        ])
        rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{NS}"
        await kube.create(f"{rbac}/roles", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "routers"},
            "rules": [{"apiGroups": ["switchyard.dev"], "resources": ["routingpolicies"],
                       "resourceNames": self.policies, "verbs": ["use"]}],
        })
        await kube.create(f"{rbac}/rolebindings", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "routers"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "routers"},
            "subjects": [{"kind": "ServiceAccount", "name": ACCOUNT, "namespace": NS}],
        })

        async def pod(ip: str, router: SimulatedRouter) -> None:
            await kube.create(core_path("pods", NS), router_pod(router, self.port))
            await kube.patch(core_path("pods", NS, router.pod) + "/status",
                             {"status": {"phase": "Running", "podIP": ip}})

        await gather_limited([pod(ip, r) for ip, r in self.routers.items()])

    # ------------------------------------------------------------------ what the bench watches

    async def tables(self, kube: Kube) -> dict[str, str]:
        """Policy -> the table hash on its ConfigMap."""
        selector = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())
        out = {}
        for cm in await kube.list(core_path("configmaps", NS), selector):
            meta = cm["metadata"]
            out[meta["labels"]["switchyard.dev/policy"]] = (meta.get("annotations") or {}).get(HASH_ANNOTATION, "")
        return out

    async def routers_counted(self, kube: Kube) -> bool:
        want = collections.Counter(r.policy for r in self.routers.values())
        for body in await kube.list(custom_path("routingpolicies", NS)):
            routers = (body.get("status") or {}).get("routers") or {}
            if routers.get("total") != want[body["metadata"]["name"]]:
                return False
        return True

    # ------------------------------------------------------------------ the run

    async def operator(self) -> asyncio.subprocess.Process:
        kubeconfig = self.workdir / "kubeconfig"
        kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "emulated",
            "clusters": [{"name": "emulated", "cluster": {"server": str(self.api.url)}}],
            "contexts": [{"name": "emulated", "context": {"cluster": "emulated", "user": "operator"}}],
            "users": [{"name": "operator", "user": {"token": TOKEN}}],
        }))
        env = {**os.environ, "KUBECONFIG": str(kubeconfig), "SWITCHYARD_REPORT_INTERVAL": f"{self.interval:g}"}
        log = (self.workdir / f"operator-{self.size.providers}-{self.size.policies}-{self.size.routers}.log").open("wb")
        return await asyncio.create_subprocess_exec(
            SCRIPT, "-n", NS, "--standalone", "--allow-endpoint=http://127.0.0.1:*",
            env=env, stdout=log, stderr=asyncio.subprocess.STDOUT,
        )

    def counted(self) -> collections.Counter[tuple[str, str]]:
        return collections.Counter(self.api.counts)

    async def run(self) -> Result:
        bench_cpu = own_cpu()
        async with self.api, Server(self.api):
            kube = Kube.from_connection(kopf.ConnectionInfo(server=str(self.api.url)))
            await self.server.start(self.routers)
            try:
                await self.populate(kube)
                self.install_counter()
                process = await self.operator()
                try:
                    return await self.measure(kube, process, bench_cpu)
                finally:
                    if process.returncode is None:
                        process.send_signal(signal.SIGTERM)
                        try:
                            await asyncio.wait_for(process.wait(), 20)
                        except TimeoutError:
                            process.kill()
                            await process.wait()
            finally:
                await kube.close()
                await self.server.stop()

    def install_counter(self) -> None:
        """From here on, count only requests bearing the operator's token."""
        self.api.counts.clear()
        self.api.counted_token = TOKEN

    async def measure(self, kube: Kube, process: asyncio.subprocess.Process, bench_cpu: float) -> Result:
        pid = process.pid
        limit = 120 + self.size.routers / 10 + self.size.policies
        tables_s = await until(lambda: self._all_tables(kube), limit, "every table written")
        routers_s = tables_s + await until(lambda: self.routers_counted(kube), limit, "every router counted", every=0.5)
        start_cpu, start_requests = cpu_seconds(pid), sum(self.counts.values())

        await asyncio.sleep(self.interval)  # settle: one more round after the last router counted
        before, cpu0 = self.counted(), cpu_seconds(pid)
        await asyncio.sleep(self.window)
        steady = self.counted() - before
        steady_cpu = (cpu_seconds(pid) - cpu0) / self.window
        rss = rss_mb(pid)
        reads = sum(n for (verb, _), n in steady.items() if verb in ("get", "list"))

        old = await self.tables(kube)
        before, cpu0 = self.counted(), cpu_seconds(pid)
        spec = provider(self.providers[0])["spec"]
        models = [*spec["models"], {"name": "m2", "pricing": {"inputPerMillionTokens": "3", "outputPerMillionTokens": "4"}}]
        await kube.patch(custom_path("llmproviders", NS, self.providers[0]), {"spec": {"models": models}})

        async def all_new() -> bool:
            now = await self.tables(kube)
            return all(now.get(p) and now[p] != old.get(p) for p in self.policies)

        change_s = await until(all_new, limit, "every table updated after the change", every=0.1)
        change = self.counted() - before
        return Result(
            size=self.size, tables_s=tables_s, routers_s=routers_s, start_cpu_s=start_cpu,
            start_requests=start_requests, writes_per_s=writes(steady) / self.window,
            reads_per_s=reads / self.window, steady_cpu=steady_cpu, rss_mb=rss, change_s=change_s,
            change_cpu_s=cpu_seconds(pid) - cpu0, change_requests=sum(change.values()),
            change_writes=writes(change), bench_cpu_s=own_cpu() - bench_cpu,
            steady_kinds={f"{v} {w}": n for (v, w), n in sorted(steady.items())},
        )

    async def _all_tables(self, kube: Kube) -> bool:
        return len(await self.tables(kube)) == len(self.policies)


# ---------------------------------------------------------------------- the report

COLUMNS: list[tuple[str, str, Callable[[Result], float]]] = [
    ("start->tables s", "{:.1f}", lambda r: r.tables_s),
    ("start->routers s", "{:.1f}", lambda r: r.routers_s),
    ("start CPU s", "{:.1f}", lambda r: r.start_cpu_s),
    ("start reqs", "{:.0f}", lambda r: r.start_requests),
    ("writes/s", "{:.1f}", lambda r: r.writes_per_s),
    ("reads/s", "{:.1f}", lambda r: r.reads_per_s),
    ("steady CPU", "{:.0%}", lambda r: r.steady_cpu),
    ("RSS MB", "{:.0f}", lambda r: r.rss_mb),
    ("change->tables s", "{:.1f}", lambda r: r.change_s),
    ("change CPU s", "{:.1f}", lambda r: r.change_cpu_s),
    ("change reqs", "{:.0f}", lambda r: r.change_requests),
    ("change writes", "{:.0f}", lambda r: r.change_writes),
]


def table(results: list[Result]) -> str:
    head = ["size", *(c[0] for c in COLUMNS)]
    rows = [[str(r.size), *(fmt.format(get(r)) for _, fmt, get in COLUMNS)] for r in results]
    base = results[0]
    for r in results[1:]:
        rows.append([f"  x vs base ({r.size})", *(
            f"{get(r) / get(base):.2f}" if get(base) else "-" for _, _, get in COLUMNS
        )])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def parse_size(text: str) -> Size:
    n, m, r = (int(x) for x in text.split(","))
    if n < 2 or m < 1 or r < 1:
        raise argparse.ArgumentTypeError("N,M,R: at least 2 providers, 1 policy, 1 router")
    return Size(n, m, r)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.control_plane", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=parse_size, help="N,M,R: run this size only")
    parser.add_argument("--base", type=parse_size, default=Size(12, 50, 500),
                        help="N,M,R of the base size; then N, M and R are each doubled (default 12,50,500)")
    parser.add_argument("--interval", type=float, default=5.0, help="the operator's report interval, seconds")
    parser.add_argument("--window", type=float, default=15.0, help="steady-state window, seconds")
    parser.add_argument("--port", type=int, default=18080, help="the simulated routers' health port")
    args = parser.parse_args(argv)
    b = args.base
    sizes = [args.size] if args.size else [
        b, Size(2 * b.providers, b.policies, b.routers), Size(b.providers, 2 * b.policies, b.routers),
        Size(b.providers, b.policies, 2 * b.routers),
    ]
    print(f"cores {os.cpu_count()}, load {os.getloadavg()[0]:.1f} at start; report interval {args.interval:g}s, "
          f"window {args.window:g}s", flush=True)
    results = []
    logs = Path(tempfile.mkdtemp(prefix="bench-control-plane-"))
    print(f"operator logs in {logs}", flush=True)
    for size in sizes:
        result = asyncio.run(Bench(size, args.interval, args.window, args.port, logs).run())
        results.append(result)
        print(f"{size}: " + ", ".join(f"{name} {fmt.format(get(result))}" for name, fmt, get in COLUMNS)
              + f"; this process (emulator + routers) {result.bench_cpu_s:.0f} CPU s; "
              f"load {os.getloadavg()[0]:.1f}", flush=True)
        print("  steady requests: " + ", ".join(f"{k} {v}" for k, v in result.steady_kinds.items()), flush=True)
    print()
    print(table(results))
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
