"""Bytecodes per request: the router's own Python work, counted instead of timed.

On a shared VM the same code times ±25% apart from one run to the next; the bytecodes a proxy
executes per request hardly move (±0.5%). This runs the router and the floor proxy under
`tests.bench.counted` (sys.monitoring, Python >= 3.12), sends each the same sequential chat
completions, JSON and streamed, from core 0, and prints bytecodes per request side by side, the
router/floor ratio and where the router's own share goes. A count is not a time (C code such as
the HTTP parser and orjson is not in it), but a change that removes bytecodes from the request
path shows here at once, where the timing bench would need many rounds to see it.

    python -m tests.bench.bytecodes [--requests 500] [--warmup 200] [--top 12] [--json FILE]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

from .run import (
    BODIES,
    KINDS,
    LOADGEN_CORE,
    PROVIDER,
    PROXY_CORE,
    PYTHON,
    REPO,
    SIM_KEY,
    SIM_KEY_ENV,
    Server,
    floor_argv,
    free_port,
    router_argv,
    start,
    stop,
    write_table,
)

OURS = "switchyard_router/"
MODES = ("router", "floor")


def start_simulator(workdir: Path) -> tuple[Server, dict[str, list[str]]]:
    """The simulator, running on the load generator's core, and how to start each proxy on it."""
    sim_argv = [PYTHON, "-m", "switchyard_sim", "--port", str(free_port())]
    sim = start("simulator", sim_argv, LOADGEN_CORE, workdir, cwd=workdir)
    table = write_table(workdir, sim.url)
    return sim, {"router": router_argv(free_port(), table), "floor": floor_argv(free_port(), sim.url)}


def counted(argv: list[str], out: Path) -> list[str]:
    """`python -m module args` run under the counter instead."""
    assert argv[1] == "-m", argv
    return [PYTHON, "-m", "tests.bench.counted", str(out), *argv[2:]]


def send(url: str, kind: str, n: int) -> None:
    """`n` chat completions one after another on one keep-alive connection, each read whole."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {SIM_KEY}"}
    try:
        for _ in range(n):
            conn.request("POST", parts.path, BODIES[kind], headers)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise SystemExit(f"bench: {url} answered {response.status}")
    finally:
        conn.close()


def count(server: Server, out: Path, url: str, kind: str, n: int) -> Counter[str]:
    os.kill(server.proc.pid, signal.SIGUSR1)
    time.sleep(0.3)  # the handler runs on the server's next loop turn
    send(url, kind, n)
    out.unlink(missing_ok=True)
    os.kill(server.proc.pid, signal.SIGUSR2)
    deadline = time.monotonic() + 30
    while not out.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: {server.name} wrote no counts to {out}")
        time.sleep(0.05)
    return Counter(json.loads(out.read_text()))


def per_request(counts: Counter[str], n: int, only: str = "") -> float:
    return sum(v for k, v in counts.items() if only in k) / n


def report(results: dict[tuple[str, str], Counter[str]], n: int, top: int) -> str:
    lines = [f"{'kind':<8}{'router':>9}{'floor':>9}{'router/floor':>14}{'router, own code':>18}"]
    for kind in KINDS:
        router, floor = (per_request(results[mode, kind], n) for mode in MODES)
        own = per_request(results["router", kind], n, OURS)
        lines.append(f"{kind:<8}{router:>9.0f}{floor:>9.0f}{router / floor:>13.2f}x{own:>18.0f}")
    for kind in KINDS:
        lines += ["", f"the router's own code, {kind}: bytecodes per request"]
        mine = results["router", kind]
        ranked = sorted(((v / n, k) for k, v in mine.items() if OURS in k), reverse=True)
        lines += [f"{v:8.1f}  {k.removeprefix(OURS)}" for v, k in ranked[:top]]
    return "\n".join(lines)


def counting_parser(prog: str, doc: str | None, requests: int, warmup: int) -> argparse.ArgumentParser:
    """The options the counting tools (bytecodes, instructions) share."""
    parser = argparse.ArgumentParser(
        prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=requests, help="requests counted per cell")
    parser.add_argument("--warmup", type=int, default=warmup, help="requests of each kind before counting")
    return parser


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = counting_parser("python -m tests.bench.bytecodes", __doc__, requests=500, warmup=200)
    parser.add_argument("--top", type=int, default=12, help="the router's busiest functions listed")
    parser.add_argument("--json", type=Path, help="also write the per-request counts as JSON")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if sys.version_info < (3, 12):
        raise SystemExit("bench: counting bytecodes needs Python 3.12 or later (sys.monitoring)")
    os.sched_setaffinity(0, {LOADGEN_CORE})
    results: dict[tuple[str, str], Counter[str]] = {}
    servers: list[Server] = []
    with tempfile.TemporaryDirectory(prefix="switchyard-bytecodes-") as tmp:
        workdir = Path(tmp)
        env = {**os.environ, SIM_KEY_ENV: SIM_KEY, "PYTHONPATH": str(REPO)}
        try:
            sim, argvs = start_simulator(workdir)
            servers.append(sim)
            for mode in MODES:
                out = workdir / f"{mode}.json"
                server = start(mode, counted(argvs[mode], out), PROXY_CORE, workdir, env=env, cwd=workdir)
                servers.append(server)
                url = f"{server.url}/v1/chat/completions"
                for kind in KINDS:
                    send(url, kind, args.warmup)
                for kind in KINDS:
                    print(f"bench: counting {mode} {kind}", file=sys.stderr, flush=True)
                    results[mode, kind] = count(server, out, url, kind, args.requests)
                stop(server)
        finally:
            for server in servers:
                stop(server)
    version = ".".join(map(str, sys.version_info[:3]))
    print(
        f"Bytecodes per request: {args.requests} sequential requests per cell after "
        f"{args.warmup} of each kind, Python {version}; the simulator as '{PROVIDER}'"
    )
    print()
    print(report(results, args.requests, args.top))
    if args.json:
        data = {
            f"{mode} {kind}": {k: v / args.requests for k, v in counts.most_common()}
            for (mode, kind), counts in results.items()
        }
        args.json.write_text(json.dumps(data, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
