"""Machine instructions per request: the whole work of a proxy, C included, counted under callgrind.

The bytecode count (`tests.bench.bytecodes`) cannot see work done in C: a `bytes.find` over a
5 KB stream is one bytecode and ten thousand instructions. Callgrind counts every instruction the
process runs in user space (the interpreter, aiohttp's parser and writer, orjson, uvloop), and the
count repeats to within about 0.5% from run to run, where timings on a shared VM drift by a
quarter. Kernel time (syscalls) is not in it. This runs the router and the floor proxy under
valgrind on the bench's interpreter, counts only while the measured requests run, and prints
instructions per request side by side with the router/floor ratio.

    python -m tests.bench.instructions [--requests 300] [--warmup 100] [--concurrency 16] [--keep DIR]

`--keep DIR` keeps the callgrind files: `callgrind_annotate DIR/router.out.2` (one dump per kind).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .bytecodes import counting_parser, send, start_simulator
from .run import (
    KINDS,
    LOADGEN_CORE,
    PROVIDER,
    PROXY_CORE,
    PYTHON,
    REPO,
    SIM_KEY,
    SIM_KEY_ENV,
    Server,
    start,
    stop,
)

MODES = ("router", "floor")


def under_callgrind(argv: list[str], out: Path) -> list[str]:
    """The server run by callgrind, counting nothing until told to."""
    return ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}", *argv]


def load(url: str, kind: str, n: int, concurrency: int) -> None:
    """`n` requests over `concurrency` keep-alive connections."""
    with ThreadPoolExecutor(concurrency) as pool:
        for done in [pool.submit(send, url, kind, n // concurrency) for _ in range(concurrency)]:
            done.result()


def control(pid: int, *options: str) -> None:
    subprocess.run(["callgrind_control", *options, str(pid)], check=True, capture_output=True)


def count(server: Server, out: Path, url: str, kind: str, n: int, concurrency: int) -> int:
    """Instructions the server ran while serving `n` requests of `kind`."""
    pid = server.proc.pid
    control(pid, "--instr=on")
    load(url, kind, n, concurrency)
    control(pid, "--instr=off")
    before = set(out.parent.glob(out.name + ".*"))
    control(pid, "--dump")
    deadline = time.monotonic() + 60
    while not (dumps := set(out.parent.glob(out.name + ".*")) - before):
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: callgrind wrote no dump for {server.name}")
        time.sleep(0.1)
    dump = dumps.pop()
    time.sleep(0.5)  # the dump is written in one go, but let it finish
    for line in dump.read_text().splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
    raise SystemExit(f"bench: no totals in {dump}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = counting_parser("python -m tests.bench.instructions", __doc__, requests=300, warmup=100)
    parser.add_argument("--concurrency", type=int, default=16, help="connections sending at once")
    parser.add_argument("--keep", type=Path, help="keep the callgrind files in this directory")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("bench: counting instructions needs valgrind (apt-get install valgrind)")
    os.sched_setaffinity(0, {LOADGEN_CORE})
    per_request: dict[tuple[str, str], float] = {}
    servers: list[Server] = []
    with tempfile.TemporaryDirectory(prefix="switchyard-instructions-") as tmp:
        workdir = Path(tmp)
        keep = args.keep or workdir
        keep.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, SIM_KEY_ENV: SIM_KEY, "PYTHONPATH": str(REPO)}
        try:
            sim, argvs = start_simulator(workdir)
            servers.append(sim)
            n = args.requests // args.concurrency * args.concurrency
            for mode in MODES:
                out = keep / f"{mode}.out"
                for old in keep.glob(f"{mode}.out*"):  # a dump of an earlier run is not this one's
                    old.unlink()
                server = start(
                    mode, under_callgrind(argvs[mode], out), PROXY_CORE, workdir, env=env, cwd=workdir
                )
                servers.append(server)
                url = f"{server.url}/v1/chat/completions"
                for kind in KINDS:
                    load(url, kind, args.warmup, args.concurrency)
                for kind in KINDS:
                    print(f"bench: counting {mode} {kind}", file=sys.stderr, flush=True)
                    per_request[mode, kind] = count(server, out, url, kind, n, args.concurrency) / n
                stop(server)
        finally:
            for server in servers:
                stop(server)
    version = ".".join(map(str, sys.version_info[:3]))
    print(
        f"Instructions per request (callgrind, user space): {args.requests} requests per cell over "
        f"{args.concurrency} connections after {args.warmup} of each kind, Python {version} "
        f"({os.path.realpath(PYTHON)}); the simulator as '{PROVIDER}'"
    )
    print()
    print(f"{'kind':<8}{'router':>10}{'floor':>10}{'router/floor':>14}")
    for kind in KINDS:
        router, floor = per_request["router", kind], per_request["floor", kind]
        print(f"{kind:<8}{router:>10.0f}{floor:>10.0f}{router / floor:>13.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
