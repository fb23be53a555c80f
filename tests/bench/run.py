"""Router-core benchmark: the simulator direct, through the router, and through a floor proxy.

One run measures, side by side and interleaved (each cell's three modes back to back, each round
starting with the next), chat
completions as JSON and as streams at concurrency 1, 16 and 64: wrk for throughput and latency
percentiles, `ttfb_client` for streams' time to first body byte. The load generator and the
simulator share core 0; the proxy under test (router or floor, never loaded at the same time) is
alone on core 1. Then the router's RSS and its start-to-first-served-request time.

    python -m tests.bench.run [--duration 3] [--repeat 3] [--sched nice|rt] [--json results.json]
                              [--no-tracing]

A fourth mode, "traced", is a second router exporting a span per request and per attempt over
OTLP/HTTP to a local collector sink (tests/bench/otlp_sink.py, on core 0): tracing on against
the plain router's tracing off, each as a ratio to the floor. --no-tracing leaves it out.

About 5.5 minutes with the defaults: three interleaved rounds, so that each number is a median
and one slow moment of a shared VM does not decide a target. As root the bench runs at nice -20
(see `prioritise`) so that other work on a shared machine takes as little of its cores as
possible; the 'other' column shows the CPU it took anyway, and target lines say when that was much.
"""

from __future__ import annotations

import argparse
import compileall
import ctypes
import http.client
import json
import os
import platform
import re
import resource
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import urlopen

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PYTHON = sys.executable
LOADGEN_CORE, PROXY_CORE = 0, 1
MODES: tuple[str, ...] = ("direct", "router", "traced", "floor")
KINDS = ("json", "stream")
CONCURRENCY = (1, 16, 64)
PROVIDER = "bench"  # the simulator's path label for the one provider
MODEL = "gpt-4o-mini"  # also the route's name, so every mode gets the very same body
SIM_KEY_ENV = "BENCH_SIM_KEY"
SIM_KEY = "sk-bench-0123456789abcdef"
CLK_TCK = os.sysconf("SC_CLK_TCK")
MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant. Answer briefly."},
    {"role": "user", "content": "Say hello to the benchmark in one short sentence."},
]
# Client APIs other than chat completions: one JSON cell each, through the router only, at c=16,
# measured against the floor's chat completions (the floor cannot translate): what the API's
# translation and routing cost beside the floor's bare forwarding.
API_CELLS = {"messages": "/v1/messages", "responses": "/v1/responses"}
API_CONCURRENCY = 16
BODIES = {
    "messages": json.dumps(
        {"model": MODEL, "system": MESSAGES[0]["content"], "messages": MESSAGES[1:], "max_tokens": 64}
    ),
    "responses": json.dumps(
        {
            "model": MODEL,
            "instructions": MESSAGES[0]["content"],
            "input": MESSAGES[1]["content"],
            "max_output_tokens": 64,
        }
    ),
    "json": json.dumps({"model": MODEL, "messages": MESSAGES, "max_tokens": 64}),
    "stream": json.dumps({"model": MODEL, "messages": MESSAGES, "max_tokens": 64, "stream": True}),
}
MIB = 2**20
NOISY_OTHER_PCT = 25.0  # a comparison is flagged when other processes took more CPU than this
LISTENING = re.compile(r"listening on (http://[^\s/]+)")


# --- processes ------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    url: str
    log: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# Prepended to the servers' command lines (sim, router, floor) by `prioritise`, e.g. chrt -f 1.
SERVER_SCHED: list[str] = []


def pinned(core: int, argv: list[str], server: bool = False) -> list[str]:
    return ["taskset", "-c", str(core), *(SERVER_SCHED if server else []), *argv]


def start(name: str, argv: list[str], core: int, workdir: Path, **popen: Any) -> Server:
    """Spawn a server pinned to `core`; return once it prints `... listening on http://...`."""
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            pinned(core, argv, server=True), stdout=out, stderr=subprocess.STDOUT, **popen
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        match = LISTENING.search(log.read_text(errors="replace"))
        if match:
            return Server(name, proc, match.group(1), log)
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    proc.kill()
    tail = log.read_text(errors="replace")[-3000:]
    raise SystemExit(f"bench: {name} did not start ({' '.join(argv)}):\n{tail}")


def stop(server: Server) -> None:
    if server.proc.poll() is None:
        server.proc.terminate()
        try:
            server.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()


def ensure_tools() -> str:
    if shutil.which("taskset") is None:
        raise SystemExit("bench: taskset (util-linux) is required to pin processes to cores")
    if not {LOADGEN_CORE, PROXY_CORE} <= os.sched_getaffinity(0):
        raise SystemExit(
            f"bench: needs cores {LOADGEN_CORE} and {PROXY_CORE}; have {os.sched_getaffinity(0)}"
        )
    wrk = shutil.which("wrk")
    if wrk is not None:
        return wrk
    if os.geteuid() != 0:
        raise SystemExit("bench: wrk is not installed and we are not root: run `sudo apt-get install -y wrk`")
    print("bench: installing wrk with apt-get ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}

    def apt(*argv: str) -> int:
        return subprocess.run(["apt-get", *argv], stdout=subprocess.DEVNULL, env=env, check=False).returncode

    if apt("install", "-y", "-q", "wrk") != 0 and (
        apt("update", "-q") != 0 or apt("install", "-y", "-q", "wrk")
    ):
        raise SystemExit("bench: `apt-get install -y wrk` failed; install wrk and re-run")
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("bench: apt-get installed no wrk binary")
    return wrk


def write_table(workdir: Path, sim_url: str) -> Path:
    """One OpenAI-compatible provider at the simulator, one route. JSON is valid YAML."""
    table = {
        "providers": [
            {
                "name": PROVIDER,
                "type": "openai-compatible",
                "baseURL": f"{sim_url}/{PROVIDER}/v1",
                "credentials": [{"name": "main", "key": SIM_KEY_ENV}],
                "models": [{"name": MODEL}],
            }
        ],
        "routes": [{"name": MODEL, "targets": [{"provider": PROVIDER, "model": MODEL}]}],
    }
    path = workdir / "table.yaml"
    path.write_text(json.dumps(table, indent=2))
    return path


def router_argv(port: int, table: Path) -> list[str]:
    options = ["--port", str(port), "--config", str(table), "--log-level", "ERROR"]
    return [PYTHON, "-m", "switchyard_router", *options]


def sink_argv(port: int) -> list[str]:
    return [PYTHON, "-m", "tests.bench.otlp_sink", "--port", str(port)]


def traced_env(env: dict[str, str], sink_url: str) -> dict[str, str]:
    """The traced router's environment: an OTLP endpoint, as the chart's tracing value sets it."""
    return {**env, "OTEL_EXPORTER_OTLP_ENDPOINT": sink_url, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}


def floor_argv(port: int, sim_url: str) -> list[str]:
    upstream = f"{sim_url}/{PROVIDER}"
    return [PYTHON, "-m", "tests.bench.floor_proxy", "--port", str(port), "--upstream", upstream]


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --- measurements ---------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


@dataclass
class Snapshot:
    """CPU seconds so far: per core (busy, elapsed), per server of ours, of this process and its children.

    Every process of the bench is pinned, so what a core did beyond our processes on it is other work.
    """

    cores: dict[int, tuple[float, float]]
    servers: dict[int, float]
    mine: float  # this orchestrator and its waited-for children (wrk, ttfb_client), all on core 0

    @classmethod
    def take(cls, servers: dict[int, int]) -> Snapshot:
        cores = {}
        for line in Path("/proc/stat").read_text().splitlines():
            name, *values = line.split()
            if name.startswith("cpu") and name != "cpu":
                ticks = [int(v) for v in values[:8]]  # guest time is already counted in user
                idle = ticks[3] + ticks[4]  # idle + iowait
                cores[int(name[3:])] = ((sum(ticks) - idle) / CLK_TCK, sum(ticks) / CLK_TCK)
        own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        mine = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
        return cls(cores, {pid: cpu_seconds(pid) for pid in servers}, mine)

    def since(self, before: Snapshot, servers: dict[int, int]) -> Usage:
        elapsed = max(1e-9, self.cores[LOADGEN_CORE][1] - before.cores[LOADGEN_CORE][1])
        used = {pid: self.servers[pid] - before.servers[pid] for pid in servers}
        ours = {LOADGEN_CORE: self.mine - before.mine, PROXY_CORE: 0.0}
        for pid, core in servers.items():
            ours[core] += used[pid]
        busy = {core: (self.cores[core][0] - before.cores[core][0]) / elapsed for core in ours}
        other = {core: max(0.0, busy[core] - ours[core] / elapsed) for core in ours}
        return Usage(busy, used, other)


@dataclass
class Usage:
    busy: dict[int, float]  # share of each core that was busy
    servers: dict[int, float]  # CPU seconds per server of ours
    other: dict[int, float]  # share of each core used by processes that are not the bench's


@dataclass
class Rig:
    wrk: str
    args: argparse.Namespace
    sim: int
    servers: dict[int, int]  # pid -> core, for every server of the bench


def run_wrk(wrk: str, url: str, kind: str, concurrency: int, seconds: float) -> dict[str, Any]:
    options = ["-t1", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "5s", "-s", str(HERE / "chat.lua")]
    argv = [wrk, *options, url]
    env = {**os.environ, "BENCH_BODY": BODIES[kind]}
    done = subprocess.run(pinned(LOADGEN_CORE, argv), capture_output=True, text=True, env=env, check=False)
    line = next((x for x in done.stdout.splitlines() if x.startswith("BENCH ")), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(f"bench: wrk failed on {url}:\n{done.stdout}\n{done.stderr}")
    result: dict[str, Any] = json.loads(line.removeprefix("BENCH "))
    return result


def run_ttfb(url: str, concurrency: int, seconds: float) -> dict[str, Any]:
    argv = [PYTHON, "-m", "tests.bench.ttfb_client", "--url", url, "--concurrency", str(concurrency)]
    argv += ["--duration", str(seconds)]
    env = {**os.environ, "BENCH_BODY": BODIES["stream"]}
    done = subprocess.run(
        pinned(LOADGEN_CORE, argv), capture_output=True, text=True, env=env, cwd=REPO, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"bench: ttfb_client failed on {url}:\n{done.stdout}\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@dataclass
class Cell:
    mode: str
    kind: str
    concurrency: int
    runs: list[dict[str, Any]] = field(default_factory=list)

    def value(self, key: str) -> float | None:
        """The median over repeats (a single run's value when not repeated)."""
        values = [run[key] for run in self.runs if run.get(key) is not None]
        return statistics.median(values) if values else None


def measure(rig: Rig, url: str, kind: str, concurrency: int, proxy: int | None) -> dict[str, Any]:
    """Warm up, then one measured run of wrk (and of ttfb_client for streams)."""
    args = rig.args
    run_wrk(rig.wrk, url, kind, concurrency, args.warmup)
    before = Snapshot.take(rig.servers)
    out = run_wrk(rig.wrk, url, kind, concurrency, args.duration)
    used = Snapshot.take(rig.servers).since(before, rig.servers)
    requests = max(1, out["requests"])
    # Other work counts where it competed: core 0 always, core 1 only when a proxy was under load.
    cores = [LOADGEN_CORE, PROXY_CORE] if proxy else [LOADGEN_CORE]
    result = {
        "rps": out["requests"] / (out["duration_us"] / 1e6),
        "p50_ms": out["p50_us"] / 1000,
        "p99_ms": out["p99_us"] / 1000,
        "max_ms": out["max_us"] / 1000,
        "errors": sum(out["errors"].values()),
        "requests": out["requests"],
        "proxy_cpu_us": used.servers[proxy] * 1e6 / requests if proxy else None,
        "sim_cpu_us": used.servers[rig.sim] * 1e6 / requests,
        "core0_pct": 100 * used.busy[LOADGEN_CORE],
        "core1_pct": 100 * used.busy[PROXY_CORE],
        "other_pct": 100 * sum(used.other[core] for core in cores),
    }
    if kind == "stream":
        before = Snapshot.take(rig.servers)
        ttfb = run_ttfb(url, concurrency, args.ttfb_duration)
        other = Snapshot.take(rig.servers).since(before, rig.servers).other
        result |= {"ttfb_p50_ms": ttfb.get("ttfb_p50_ms"), "ttfb_p99_ms": ttfb.get("ttfb_p99_ms")}
        result["errors"] += ttfb["errors"]
        result["other_pct"] = max(result["other_pct"], 100 * sum(other[core] for core in cores))
    return result


def post(url: str, kind: str = "json") -> int:
    """One chat completion, read to its end: the status, or 0 when nothing answered."""
    parts = urlsplit(url)
    headers = {"Content-Type": "application/json", "Authorization": "Bearer sk-bench-client"}
    try:
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=5)
        conn.request("POST", parts.path, BODIES[kind], headers)
        response = conn.getresponse()
        response.read()
        conn.close()
        return response.status
    except OSError:
        return 0


def compile_sources() -> None:
    """Byte-compile the router's sources as the image does: with PYTHONDONTWRITEBYTECODE set (as
    on this machine), an editable install would otherwise compile them again at every start."""
    compileall.compile_dir(REPO / "router", quiet=1)


def startup_ms(table: Path, env: dict[str, str], workdir: Path) -> float:
    """From spawning the router to its first answered chat completion."""
    port = free_port()
    log = workdir / "router-start.log"
    with log.open("wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(
            pinned(PROXY_CORE, router_argv(port, table), server=True),
            env=env,
            cwd=workdir,
            stdout=out,
            stderr=out,
        )
    try:
        while (status := post(f"http://127.0.0.1:{port}/v1/chat/completions")) != 200:
            if status or proc.poll() is not None or time.perf_counter() - started > 30:
                tail = log.read_text(errors="replace")[-3000:]
                raise SystemExit(f"bench: the router did not serve (last status {status}):\n{tail}")
            time.sleep(0.002)
        return (time.perf_counter() - started) * 1000
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def vm_mib(pid: int, name: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(name)


# --- report ---------------------------------------------------------------------------------


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


# (title, unit, cell key, width, format)
COLUMNS = [
    ("req/s", "", "rps", 8, ".0f"),
    ("p50", "ms", "p50_ms", 8, ".2f"),
    ("p99", "ms", "p99_ms", 8, ".2f"),
    ("TTFB p50", "ms", "ttfb_p50_ms", 10, ".2f"),
    ("TTFB p99", "ms", "ttfb_p99_ms", 10, ".2f"),
    ("proxy CPU", "us/req", "proxy_cpu_us", 11, ".0f"),
    ("sim CPU", "us/req", "sim_cpu_us", 9, ".0f"),
    ("core0", "%", "core0_pct", 7, ".0f"),
    ("core1", "%", "core1_pct", 7, ".0f"),
    ("other", "%", "other_pct", 7, ".0f"),
    ("errors", "", "errors", 8, ".0f"),
]


def results_table(cells: dict[tuple[str, str, int], Cell]) -> str:
    lines = [
        f"{'kind':<7}{'c':>3}  {'mode':<7}" + "".join(f"{t:>{w}}" for t, _, _, w, _ in COLUMNS),
        f"{'':<19}" + "".join(f"{u:>{w}}" for _, u, _, w, _ in COLUMNS),
    ]
    for kind in KINDS:
        for c in CONCURRENCY:
            for mode in MODES:
                cell = cells[mode, kind, c]
                values = "".join(f"{fmt(cell.value(key), spec):>{w}}" for _, _, key, w, spec in COLUMNS)
                lines.append(f"{kind:<7}{c:>3}  {mode:<7}{values}")
            lines.append("")
    for kind in API_CELLS:
        cell = cells["router", kind, API_CONCURRENCY]
        values = "".join(f"{fmt(cell.value(key), spec):>{w}}" for _, _, key, w, spec in COLUMNS)
        lines.append(f"{kind[:7]:<7}{API_CONCURRENCY:>3}  {'router':<7}{values}")
    return "\n".join(lines)


@dataclass
class Target:
    name: str
    measured: float | None
    limit: float
    unit: str
    at_least: bool = False
    other: float = 0.0  # the most CPU other processes took during the cells compared (% of a core)

    @property
    def passed(self) -> bool:
        if self.measured is None:
            return False
        return self.measured >= self.limit if self.at_least else self.measured <= self.limit

    def line(self) -> str:
        sign = ">=" if self.at_least else "<="
        measured = f"{fmt(self.measured)} {self.unit}".strip()
        bound = f"{sign} {self.limit:g} {self.unit}".strip()
        verdict = "PASS" if self.passed else "MISS"
        noise = (
            f"  (other work took up to {self.other:.0f}% of a core)" if self.other > NOISY_OTHER_PCT else ""
        )
        return f"{self.name:<52}{measured:>14}  {bound:<14}{verdict}{noise}"


Cells = dict[tuple[str, str, int], Cell]


def compare(
    cells: Cells, name: str, key: str, a: str, b: str, kind: str, c: int, limit: float, unit: str
) -> Target:
    """Mode `a` against mode `b` in one cell: a ratio (unit "x", at least) or a difference (at most)."""
    x, y = cells[a, kind, c].value(key), cells[b, kind, c].value(key)
    value: float | None = None
    if x is not None and y is not None:
        value = x - y if unit != "x" else (x / y if x and y else None)
    other = max(cells[m, kind, c].value("other_pct") or 0.0 for m in (a, b))
    return Target(name, value, limit, unit, at_least=unit == "x", other=other)


def targets(cells: Cells, rss: float, start_ms: float) -> list[Target]:
    out = [
        compare(cells, f"throughput router/floor, c=16, {kind}", "rps", "router", "floor", kind, 16, 0.6, "x")
        for kind in KINDS
    ]
    for kind in KINDS:
        for pct, limit in (("p50", 0.6), ("p99", 3.0)):
            name = f"added latency router-direct, c=1, {kind} {pct}"
            out.append(compare(cells, name, f"{pct}_ms", "router", "direct", kind, 1, limit, "ms"))
    for kind in API_CELLS:  # the same 0.6 floor ratio as chat completions
        ratio = Target(f"throughput router {kind}/floor chat, c=16, json", None, 0.6, "x", at_least=True)
        x, y = cells["router", kind, API_CONCURRENCY].value("rps"), cells["floor", "json", 16].value("rps")
        ratio.measured = x / y if x and y else None
        out.append(ratio)
    name = "stream TTFB router-floor, c=16, p50"
    out.append(compare(cells, name, "ttfb_p50_ms", "router", "floor", "stream", 16, 1.0, "ms"))
    if "traced" in MODES:
        for kind in KINDS:
            name = f"throughput traced/floor, c=16, {kind}"
            out.append(compare(cells, name, "rps", "traced", "floor", kind, 16, 0.6, "x"))
        for kind in KINDS:
            name = f"added latency traced-direct, c=1, {kind} p50"
            out.append(compare(cells, name, "p50_ms", "traced", "direct", kind, 1, 0.6, "ms"))
    # The issue says 60 MB: read strictly, as 10^6 bytes (57.2 MiB), not the looser 60 MiB.
    out.append(Target("router RSS after the run (VmRSS)", rss * MIB / 1e6, 60, "MB"))
    out.append(Target("router start to first served request (median of 3)", start_ms, 1000, "ms"))
    return out


def floor_reference(cells: Cells) -> list[Target]:
    """The floor proxy against the same c=1 latency limits: what this machine allows any aiohttp
    proxy, so a router MISS can be told from a machine too slow for the limit."""
    name = "added latency floor-direct, c=1, {} p50"
    return [compare(cells, name.format(k), "p50_ms", "floor", "direct", k, 1, 0.6, "ms") for k in KINDS]


def prioritise(policy: str) -> str:
    """Put the bench ahead of other work on the machine; returns what was done, for the report.

    nice (default): every process of the bench at nice -20 with a 0.1 ms EEVDF slice, so it takes
    the core from other work as soon as it wakes; only other work's leftover share remains.
    rt: on top of that the servers (simulator, router, floor) run SCHED_FIFO, which shuts other work
    out entirely (cleaner p50 and throughput on a busy machine) but has artifacts once a core
    saturates (c >= 16): the kernel's RT throttling (50 ms a second) and softirq work starved behind
    the FIFO tasks show up as p99 and max latencies of 50 ms to seconds. The load generators never
    run FIFO: with wrk and the simulator both FIFO, core 0 saturates even at c=1.
    none: as started.
    """
    if policy == "none":
        return "default priority"
    try:
        os.nice(-20)  # inherited by every process the bench starts
    except PermissionError:
        progress(
            f"bench: not allowed to raise priority ({policy}); other work on the machine may skew results"
        )
        return "default priority"
    done = "nice -20" + (", 0.1 ms slice" if short_slice() else "")
    if policy == "rt" and shutil.which("chrt"):
        SERVER_SCHED[:] = ["chrt", "-f", "1"]
        return f"servers SCHED_FIFO 1, load generators {done}"
    return done


def short_slice(nanoseconds: int = 100_000) -> bool:
    """Ask for a short EEVDF slice (Linux >= 6.12), inherited by children; False where unsupported."""
    number = {"x86_64": 314, "aarch64": 274}.get(platform.machine())  # sched_setattr
    if number is None:
        return False
    # struct sched_attr (version 0): size, policy, flags, nice, priority, runtime, deadline, period
    attr = struct.pack(
        "IIQiIQQQ", 48, os.SCHED_OTHER, 0, os.getpriority(os.PRIO_PROCESS, 0), 0, nanoseconds, 0, 0
    )
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.syscall(number, 0, ctypes.create_string_buffer(attr), 0) == 0)


def source_revision() -> str:
    """The commit measured, marked when router or simulator files differ from it."""

    def git(*argv: str) -> str:
        done = subprocess.run(["git", *argv], cwd=REPO, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "router", "simulator")
    return commit + ("+uncommitted router/simulator changes" if dirty else "")


def as_json(
    revision: str,
    settings: dict[str, Any],
    cells: dict[tuple[str, str, int], Cell],
    router: dict[str, Any],
    checks: list[Target],
) -> dict[str, Any]:
    return {
        "revision": revision,
        "settings": settings,
        "cells": [
            {"mode": m, "kind": k, "concurrency": c, **{key: cell.value(key) for key in cell.runs[0]}}
            | {"runs": cell.runs}
            for (m, k, c), cell in cells.items()
        ],
        "router": router,
        "targets": [asdict(t) | {"passed": t.passed} for t in checks],
    }


# --- orchestration --------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--duration", type=int, default=3, help="seconds wrk measures per cell (default 3)")
    parser.add_argument("--warmup", type=int, default=1, help="seconds of load before each cell (default 1)")
    parser.add_argument(
        "--ttfb-duration", type=float, default=3.0, help="seconds of TTFB sampling per stream cell"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds over every cell; medians are reported (default 3)"
    )
    parser.add_argument(
        "--sched",
        choices=["nice", "rt", "none"],
        default="nice",
        help="priority over other work on the machine (default nice; needs root; see prioritise())",
    )
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    parser.add_argument(
        "--no-tracing", action="store_true", help="leave out the traced router (mode 'traced')"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    global MODES
    args = parse_args(argv)
    if args.no_tracing:
        MODES = tuple(m for m in MODES if m != "traced")
    wrk = ensure_tools()
    os.sched_setaffinity(0, {LOADGEN_CORE})  # keep this orchestrator off the proxy's core
    sched = prioritise(args.sched)
    began = time.monotonic()
    servers: list[Server] = []
    with tempfile.TemporaryDirectory(prefix="switchyard-bench-") as tmp:
        workdir = Path(tmp)
        try:
            sim = start(
                "simulator",
                [PYTHON, "-m", "switchyard_sim", "--port", str(free_port())],
                LOADGEN_CORE,
                workdir,
                cwd=workdir,
            )
            servers.append(sim)
            table = write_table(workdir, sim.url)
            router_env = {**os.environ, SIM_KEY_ENV: SIM_KEY}
            router = start(
                "router", router_argv(free_port(), table), PROXY_CORE, workdir, env=router_env, cwd=workdir
            )
            servers.append(router)
            floor = start("floor", floor_argv(free_port(), sim.url), PROXY_CORE, workdir, cwd=REPO)
            servers.append(floor)
            urls = {
                "direct": f"{sim.url}/{PROVIDER}/v1/chat/completions",
                "router": f"{router.url}/v1/chat/completions",
                "floor": f"{floor.url}/v1/chat/completions",
            }
            proxies = {"direct": None, "router": router.proc.pid, "floor": floor.proc.pid}
            pins = {sim.proc.pid: LOADGEN_CORE, router.proc.pid: PROXY_CORE, floor.proc.pid: PROXY_CORE}
            traced: Server | None = None
            sink: Server | None = None
            if "traced" in MODES:
                sink = start("otlp-sink", sink_argv(free_port()), LOADGEN_CORE, workdir, cwd=REPO)
                servers.append(sink)
                env = traced_env(router_env, sink.url)
                traced = start(
                    "traced", router_argv(free_port(), table), PROXY_CORE, workdir, env=env, cwd=workdir
                )
                servers.append(traced)
                urls["traced"] = f"{traced.url}/v1/chat/completions"
                proxies["traced"] = traced.proc.pid
                pins[traced.proc.pid] = PROXY_CORE
                pins[sink.proc.pid] = LOADGEN_CORE
            for mode, url in urls.items():
                if any(post(url, kind) != 200 for kind in KINDS):
                    raise SystemExit(f"bench: a chat completion to {mode} ({url}) failed")
            api_urls = {kind: f"{router.url}{path}" for kind, path in API_CELLS.items()}
            for kind, url in api_urls.items():
                if post(url, kind) != 200:
                    raise SystemExit(f"bench: a {kind} request to the router ({url}) failed")
            rig = Rig(wrk, args, sim.proc.pid, pins)
            cells = {(m, k, c): Cell(m, k, c) for m in MODES for k in KINDS for c in CONCURRENCY}
            cells |= {("router", k, API_CONCURRENCY): Cell("router", k, API_CONCURRENCY) for k in API_CELLS}
            for round_ in range(args.repeat):
                for kind in KINDS:
                    for c in CONCURRENCY:
                        # Each round starts with another mode: no mode always follows the same one.
                        turn = round_ % len(MODES)
                        for mode in MODES[turn:] + MODES[:turn]:
                            progress(f"bench: round {round_ + 1}/{args.repeat} {kind} c={c} {mode}")
                            run = measure(rig, urls[mode], kind, c, proxies[mode])
                            cells[mode, kind, c].runs.append(run)
                for kind, url in api_urls.items():
                    progress(f"bench: round {round_ + 1}/{args.repeat} {kind} c={API_CONCURRENCY} router")
                    run = measure(rig, url, kind, API_CONCURRENCY, proxies["router"])
                    cells["router", kind, API_CONCURRENCY].runs.append(run)
            rss, hwm = vm_mib(router.proc.pid, "VmRSS"), vm_mib(router.proc.pid, "VmHWM")
            traced_rss = vm_mib(traced.proc.pid, "VmRSS") if traced is not None else None
            for server in (router, floor):
                stop(server)
            exported = None
            if traced is not None and sink is not None:
                stop(traced)  # its last spans go out as it stops
                with urlopen(f"{sink.url}/spans") as answer:
                    exported = int(answer.read())
            progress("bench: router start-up times")
            compile_sources()
            starts = [startup_ms(table, router_env, workdir) for _ in range(3)]
        finally:
            for server in servers:
                stop(server)
    start_ms = statistics.median(starts)
    checks = targets(cells, rss, start_ms)
    revision = source_revision()
    print(
        f"Switchyard router-core benchmark at {revision} on Python {platform.python_version()} "
        f"({os.path.realpath(PYTHON)}): {args.duration:g}s per cell after "
        f"{args.warmup:g}s warm-up, {args.repeat} round(s), each starting with the next mode; wrk -t1 and the simulator on core "
        f"{LOADGEN_CORE}, the proxy under test on core {PROXY_CORE}, at {sched}; 'other' is CPU that "
        f"processes outside the bench took on the cores a cell used (% of one core)"
    )
    print()
    print(results_table(cells))
    print(
        f"router RSS after the run: {rss:.1f} MiB = {rss * MIB / 1e6:.1f} MB (peak {hwm:.1f} MiB); start to first served request: "
        f"{', '.join(f'{s:.0f}' for s in starts)} ms -> median {start_ms:.0f} ms"
    )
    if traced_rss is not None:
        print(
            f"traced router RSS after the run: {traced_rss:.1f} MiB = {traced_rss * MIB / 1e6:.1f} MB; "
            f"spans the sink received: {exported}"
        )
    print()
    for check in checks:
        print(check.line())
    reference = floor_reference(cells)
    print("\nfor scale, the floor proxy itself against the same limits (not targets):")
    for check in reference:
        print(check.line())
    print(f"\nbench took {time.monotonic() - began:.0f}s")
    if args.json:
        settings = {k: v for k, v in vars(args).items() if k != "json"} | {"priority": sched}
        settings["python"] = f"{platform.python_version()} {os.path.realpath(PYTHON)}"
        router_facts = {
            "traced_rss_mib": traced_rss,
            "spans_exported": exported,
            "rss_mib": rss,
            "peak_rss_mib": hwm,
            "startup_ms": starts,
            "startup_median_ms": start_ms,
        }
        report = as_json(revision, settings, cells, router_facts, checks)
        report["floor_reference"] = [asdict(t) | {"passed": t.passed} for t in reference]
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
