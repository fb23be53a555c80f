"""Peak memory under every hostile-input attack of issue 19 at once, against the pods' limits.

The router: the real `switchyard-router` console script (default settings, as a sidecar runs it)
in front of hostile loopback upstreams (tests/hostile.py), while one client process, concurrently
and for `--seconds`: asks for a gzip bomb (512 MB in about 500 KB) as JSON and as a stream, a
300 MB JSON answer, an SSE event that never ends, a stream that never ends, 5,000 different model
names, and keeps 300 half-sent requests and 5,000 idle connections open. Its peak RSS (VmHWM) is
held against the sidecar's 256 Mi limit.

The probe: the operator's `probe()` in a process of its own that imported the operator, probing
hostile endpoints (the gzip bomb, an endless 500 body, a 300 MB answer, a trickle, a redirect)
concurrently for `--seconds`; its peak RSS against the operator's 512 Mi limit.

    python -m tests.bench.hostile_rss [--seconds 20] [--concurrency 4]

Numbers, not pass/fail tests: run on demand (`make bench-hostile`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import resource
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from aiohttp import web

from ..hostile import HostileUpstream
from .run import free_port

MIB = 2**20
SIDECAR_LIMIT_MIB = 256
OPERATOR_LIMIT_MIB = 512
BIN = Path(sys.executable).parent
LISTENING = re.compile(r"listening on (http://[^\s/]+)")
KEY = "sk-hostile-bench-key-0123456789"
CHUNK = (
    b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m",'
    b'"choices":[{"index":0,"delta":{"content":"xxxxxxxx"},"finish_reason":null}]}\n\n'
)
OK_BODY = {
    "id": "c",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


# --- hostile upstreams ------------------------------------------------------------------------


def gzip_bomb(unpacked: int = 512 * MIB) -> bytes:
    """`unpacked` bytes of zeros, gzip-compressed a MiB at a time (never whole in memory)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zeros = bytes(MIB)
    return b"".join(packer.compress(zeros) for _ in range(unpacked // MIB)) + packer.flush()


async def _send(request: web.BaseRequest, status: int, headers: dict[str, str], blocks) -> web.StreamResponse:
    """Write `blocks` until they end or the reader hangs up (which is what containment looks like)."""
    response = web.StreamResponse(status=status, headers=headers)
    await response.prepare(request)
    with contextlib.suppress(ConnectionError, OSError):
        async for block in blocks:
            await response.write(block)
    return response


def bomb(status: int = 200) -> Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]:
    packed = gzip_bomb()

    async def behaviour(request: web.BaseRequest) -> web.StreamResponse:
        body = await request.read()  # cached: the upstream recorded it already
        stream = b'"stream": true' in body or b'"stream":true' in body
        kind = "text/event-stream" if stream else "application/json"
        headers = {"Content-Encoding": "gzip", "Content-Type": kind, "Content-Length": str(len(packed))}
        return web.Response(status=status, body=packed, headers=headers)

    return behaviour


async def _blocks(head: bytes, block: bytes, total: int, tail: bytes = b""):
    yield head
    for _ in range(total // len(block)):
        yield block
    if tail:
        yield tail


async def big_json(request: web.BaseRequest) -> web.StreamResponse:
    """300 MB of one JSON answer, chunked (no length to refuse it by)."""
    head = b'{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"'
    return await _send(request, 200, {"Content-Type": "application/json"},
                       _blocks(head, b"x" * 65536, 300 * 1000 * 1000, b'"}}]}'))


async def endless_event(request: web.BaseRequest) -> web.StreamResponse:
    return await _send(request, 200, {"Content-Type": "text/event-stream"},
                       _blocks(b"data: ", b"x" * 65536, 10**12))


async def endless_stream(request: web.BaseRequest) -> web.StreamResponse:
    return await _send(request, 200, {"Content-Type": "text/event-stream"},
                       _blocks(CHUNK, CHUNK * 400, 10**12))


async def endless_error(request: web.BaseRequest) -> web.StreamResponse:
    return await _send(request, 500, {"Content-Type": "application/json"},
                       _blocks(b'{"error":{"message":"', b"x" * 65536, 10**12))


async def trickle(request: web.BaseRequest) -> web.StreamResponse:
    async def slowly():
        for _ in range(10_000):
            yield b"x"
            await asyncio.sleep(0.05)

    return await _send(request, 500, {}, slowly())


async def redirect(request: web.BaseRequest) -> web.StreamResponse:
    return web.Response(status=307, headers={"Location": "http://localhost:9/steal"})


async def fine(request: web.BaseRequest) -> web.StreamResponse:
    return web.json_response(OK_BODY)


# --- measuring --------------------------------------------------------------------------------


def vm_kib(pid: int, name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    raise KeyError(name)


def raise_fd_limit() -> None:
    """5,000 idle connections need as many descriptors, here and (inherited) in the router."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def until_listening(proc: subprocess.Popen[bytes], log: Path) -> str:
    for _ in range(1500):
        match = LISTENING.search(await asyncio.to_thread(log.read_text, errors="replace"))
        if match:
            return match.group(1)
        if proc.poll() is not None:
            break
        await asyncio.sleep(0.02)
    tail = (await asyncio.to_thread(log.read_text, errors="replace"))[-3000:]
    raise SystemExit(f"hostile_rss: {log.name} did not start:\n{tail}")


class Tally:
    def __init__(self) -> None:
        self.counts: dict[str, dict[str, int]] = {}

    def add(self, attack: str, outcome: str) -> None:
        per = self.counts.setdefault(attack, {})
        per[outcome] = per.get(outcome, 0) + 1

    def lines(self) -> list[str]:
        return [f"  {attack:<16} {', '.join(f'{k}: {v}' for k, v in sorted(per.items()))}"
                for attack, per in sorted(self.counts.items())]


# --- the router under attack -------------------------------------------------------------------

ROUTES = {  # route -> (behaviour, stream?)
    "bomb-json": ("bomb", False),
    "bomb-stream": ("bomb", True),
    "big-json": ("big", False),
    "endless-event": ("event", True),
    "endless-stream": ("endless", True),
}


def router_table(urls: dict[str, str]) -> dict:
    providers = [
        {
            "name": name,
            "type": "openai-compatible",
            "baseURL": url + "/v1",
            "credentials": [{"name": "main", "key": "key"}],
            "models": [{"name": "m"}],
            **({"allowAnyModel": True} if name == "free" else {}),
        }
        for name, url in urls.items()
    ]
    routes = [
        {"name": route, "targets": [{"provider": provider, "model": "m"}], "retry": {"attempts": 1}}
        for route, (provider, _) in ROUTES.items()
    ]
    return {"providers": providers, "routes": routes}


ATTACKS = (*ROUTES, "5000-names", "half-sent", "idle")


async def attack_router(seconds: float, concurrency: int, workdir: Path, only: tuple[str, ...] = ATTACKS) -> list[str]:
    upstreams = {
        "bomb": await HostileUpstream(bomb()).start(),
        "big": await HostileUpstream(big_json).start(),
        "event": await HostileUpstream(endless_event).start(),
        "endless": await HostileUpstream(endless_stream).start(),
        "free": await HostileUpstream(fine).start(),
    }
    for upstream in upstreams.values():
        upstream.seen = _Forgetful()
    table = workdir / "table.json"
    table.write_text(json.dumps(router_table({name: u.url for name, u in upstreams.items()})))
    keys = workdir / "keys"
    keys.mkdir()
    (keys / "key").write_text(KEY)
    log = workdir / "router.log"
    argv = [str(BIN / "switchyard-router"), "--port", str(free_port()), "--config", str(table),
            "--credentials-dir", str(keys), "--log-level", "ERROR"]
    with log.open("wb") as out:
        # Popen, not asyncio's: the router's output goes to a file, nothing here waits on a pipe.
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=workdir)  # noqa: ASYNC220
    try:
        url = await until_listening(proc, log)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
            await chat(http, url, "bomb-json", False)  # warm: imports and first connections done
            baseline = vm_kib(proc.pid, "VmRSS")
            tally = Tally()
            stop = asyncio.Event()
            port = int(url.rsplit(":", 1)[1])
            tasks = [
                *(repeat(stop, tally, route, lambda r=route, s=stream: chat(http, url, r, s))
                  for route, (_, stream) in ROUTES.items() for _ in range(concurrency) if route in only),
                *([many_names(stop, tally, http, url, 5000)] if "5000-names" in only else []),
                *([half_sent(stop, tally, port, 300)] if "half-sent" in only else []),
                *([idle(stop, tally, port, 5000)] if "idle" in only else []),
            ]
            sampler = asyncio.create_task(sample(proc.pid))
            running = [asyncio.create_task(t) for t in tasks]
            await asyncio.sleep(seconds)
            stop.set()
            await asyncio.gather(*running, return_exceptions=True)  # the 5,000 names may take longer
            sampler.cancel()
            peak_sampled = await asyncio.gather(sampler, return_exceptions=True)
            hwm = vm_kib(proc.pid, "VmHWM")
            after = vm_kib(proc.pid, "VmRSS")
            async with http.get(f"{url}/metrics") as resp:
                metrics = len(await resp.read())
            async with http.get(f"{url}/usage") as resp:
                usage = len(await resp.read())
            alive = proc.poll() is None
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        if proc.poll() is None:
            proc.kill()
        for upstream in upstreams.values():
            await upstream.stop()
    sampled = peak_sampled[0] if isinstance(peak_sampled[0], int) else 0
    verdict = "within" if hwm / 1024 < SIDECAR_LIMIT_MIB else "OVER"
    return [
        f"router (switchyard-router, default settings), {seconds:g}s of every attack at once, "
        f"{concurrency} concurrent requests per attack route:",
        *tally.lines(),
        f"  RSS before attacks {baseline / 1024:.1f} MiB, peak (VmHWM) {hwm / 1024:.1f} MiB "
        f"(sampled peak {sampled / 1024:.1f} MiB), after {after / 1024:.1f} MiB; "
        f"{verdict} the sidecar's {SIDECAR_LIMIT_MIB} Mi limit ({100 * hwm / 1024 / SIDECAR_LIMIT_MIB:.0f}%)",
        f"  still serving: {alive}; /metrics {metrics / 1024:.1f} KiB, /usage {usage} bytes after 5,000 names",
    ]


class _Forgetful(list):  # type: ignore[type-arg]
    """The bench's upstreams keep no record of what they were sent (300 MB answers add up)."""

    def append(self, item: object) -> None:
        pass


async def sample(pid: int) -> int:
    peak = 0
    try:
        while True:
            peak = max(peak, vm_kib(pid, "VmRSS"))
            await asyncio.sleep(0.02)
    except asyncio.CancelledError:
        return peak


async def repeat(stop: asyncio.Event, tally: Tally, attack: str, once: Callable[[], Awaitable[str]]) -> None:
    while not stop.is_set():
        try:
            outcome = await once()
        except (TimeoutError, aiohttp.ClientError) as exc:
            outcome = type(exc).__name__
        tally.add(attack, outcome)


async def chat(http: aiohttp.ClientSession, url: str, route: str, stream: bool) -> str:
    body = {"model": route, "messages": [{"role": "user", "content": "x"}], "stream": stream}
    async with http.post(f"{url}/v1/chat/completions", json=body) as resp:
        raw = await resp.read()
    if resp.status == 200 and stream:
        last = raw.rstrip(b"\n").rpartition(b"\n\n")[2]
        return "200, stream ended by an error event" if b'"error"' in last else "200 stream"
    return f"{resp.status}"


async def many_names(stop: asyncio.Event, tally: Tally, http: aiohttp.ClientSession, url: str, n: int) -> None:
    async def one(i: int) -> None:
        body = {"model": f"free/name-{i}", "messages": [{"role": "user", "content": "x"}]}
        try:
            async with http.post(f"{url}/v1/chat/completions", json=body) as resp:
                await resp.read()
                tally.add("5000-names", str(resp.status))
        except aiohttp.ClientError as exc:
            tally.add("5000-names", type(exc).__name__)

    for start in range(0, n, 50):  # all of them, however long the other attacks run
        await asyncio.gather(*(one(i) for i in range(start, start + 50)))


async def half_sent(stop: asyncio.Event, tally: Tally, port: int, n: int) -> None:
    """`n` requests whose heads never finish, opened again as the router cuts them off."""

    async def one() -> None:
        while not stop.is_set():
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: app")
                while not stop.is_set():
                    try:
                        async with asyncio.timeout(1):
                            if not await reader.read(65536):
                                tally.add("half-sent", "cut off")
                                break
                    except TimeoutError:
                        writer.write(b"l")  # still trickling
                writer.close()
            except OSError as exc:
                tally.add("half-sent", type(exc).__name__)
                await asyncio.sleep(0.5)

    await asyncio.gather(*(one() for _ in range(n)))


async def idle(stop: asyncio.Event, tally: Tally, port: int, n: int) -> None:
    """`n` connections that send nothing."""
    readers, writers = [], []
    for _ in range(n):
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            readers.append(reader)
            writers.append(writer)
        except OSError as exc:
            tally.add("idle", type(exc).__name__)
    tally.add("idle", f"{len(writers)} opened")
    await stop.wait()
    closed = sum(1 for reader in readers if reader.at_eof())
    tally.add("idle", f"{closed} closed by the router")
    for writer in writers:
        writer.close()


# --- the probe under attack --------------------------------------------------------------------

PROBE_CHILD = """
import asyncio, sys, httpx
import switchyard_operator.cli  # the operator's imports, as its process has them
from switchyard_operator.endpoints import EndpointPolicy
from switchyard_operator.models import HealthCheckSpec
from switchyard_operator.probe import probe
from switchyard_router.table import Provider

def kib(name):
    for line in open("/proc/self/status"):
        if line.startswith(name + ":"):
            return int(line.split()[1])

async def main(seconds, concurrency, urls):
    policy = EndpointPolicy.parse(("http://127.0.0.1:*",))
    print("baseline", kib("VmRSS"), flush=True)
    outcomes = {}
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    async with httpx.AsyncClient() as http:
        async def worker(name, url):
            provider = Provider(name=name, type="openai-compatible", base_url=url + "/v1")
            while loop.time() < end:
                out = await probe(http, provider, "sk-probe-bench-key-0123456789", HealthCheckSpec(timeout="2s"), policy)
                key = (name, (out.error or "ok").split(":")[0])
                outcomes[key] = outcomes.get(key, 0) + 1
        await asyncio.gather(*(worker(n, u) for n, u in urls for _ in range(concurrency)))
    for (name, kind), count in sorted(outcomes.items()):
        print("outcome", name, kind, count, flush=True)
    print("hwm", kib("VmHWM"), flush=True)

pairs = [a.split("=", 1) for a in sys.argv[3:]]
asyncio.run(main(float(sys.argv[1]), int(sys.argv[2]), pairs))
"""


async def attack_probe(seconds: float, concurrency: int) -> list[str]:
    upstreams = {
        "gzip-bomb": await HostileUpstream(bomb(status=500)).start(),
        "endless-500": await HostileUpstream(endless_error).start(),
        "big-answer": await HostileUpstream(big_json).start(),
        "trickle": await HostileUpstream(trickle).start(),
        "redirect": await HostileUpstream(redirect).start(),
    }
    for upstream in upstreams.values():
        upstream.seen = _Forgetful()
    argv = [sys.executable, "-c", PROBE_CHILD, str(seconds), str(concurrency),
            *(f"{name}={u.url}" for name, u in upstreams.items())]
    try:
        proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE)
        out, _ = await proc.communicate()
    finally:
        for upstream in upstreams.values():
            await upstream.stop()
    lines = out.decode().splitlines()
    values = {line.split()[0]: int(line.split()[1]) for line in lines if line.split()[0] in ("baseline", "hwm")}
    if proc.returncode != 0 or "hwm" not in values:
        raise SystemExit(f"hostile_rss: the probe process failed ({proc.returncode}):\n{out.decode()}")
    outcomes = [line.split(None, 1)[1] for line in lines if line.startswith("outcome ")]
    hwm = values["hwm"] / 1024
    verdict = "within" if hwm < OPERATOR_LIMIT_MIB else "OVER"
    return [
        f"operator's probe (switchyard_operator.probe.probe in a process that imported the operator), "
        f"{seconds:g}s, {concurrency} concurrent probes per endpoint:",
        *(f"  {line}" for line in outcomes),
        f"  RSS before probing {values['baseline'] / 1024:.1f} MiB, peak (VmHWM) {hwm:.1f} MiB; "
        f"{verdict} the operator's {OPERATOR_LIMIT_MIB} Mi limit ({100 * hwm / OPERATOR_LIMIT_MIB:.0f}%)",
    ]


async def run(seconds: float, concurrency: int, only: tuple[str, ...]) -> None:
    raise_fd_limit()
    with tempfile.TemporaryDirectory(prefix="hostile-rss-") as tmp:
        for line in await attack_router(seconds, concurrency, Path(tmp), only):
            print(line, flush=True)
    if only != ATTACKS:
        return
    for line in await attack_probe(seconds, concurrency):
        print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="how long every attack runs (default 20)")
    parser.add_argument("--concurrency", type=int, default=4, help="concurrent requests per attack (default 4)")
    parser.add_argument("--only", action="append", choices=ATTACKS, help="run only this attack on the router (again for more)")
    args = parser.parse_args(argv)
    asyncio.run(run(args.seconds, args.concurrency, tuple(args.only or ATTACKS)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
