"""`switchyard demo`: the simulator and the router as real processes, and a short story.

With no keys, three simulated providers (OpenAI-compatible, Anthropic, Gemini wire formats) stand
behind one route; the primary starts failing, traffic falls back, it recovers. With keys in `.env`
(PRIMARY_PROVIDER and its key), the same requests go to the real providers instead.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from dotenv import dotenv_values
from switchyard_router import clock

SAMPLES = Path(__file__).resolve().parents[2] / "samples" / "demo"
SIM_PORT = 9100  # where samples/demo expects the simulator
DEMO_KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "OPENROUTER_API_KEY", "GROQ_API_KEY")
BOLD, DIM, GREEN, RED, RESET = "\033[1m", "\033[2m", "\033[32m", "\033[31m", "\033[0m"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Story:
    def __init__(self, http: aiohttp.ClientSession, router: str, sim: str | None) -> None:
        self.http, self.router, self.sim = http, router, sim
        self.served: dict[str, int] = {}

    def say(self, text: str) -> None:
        print(f"\n{BOLD}{text}{RESET}", flush=True)

    async def ask(self, prompt: str, model: str = "chat", stream: bool = False) -> None:
        body = {"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": 60}
        if stream:
            body["stream"] = True
        started = clock.monotonic()
        async with self.http.post(f"{self.router}/v1/chat/completions", json=body) as resp:
            raw = await resp.read()
            ms = (clock.monotonic() - started) * 1000
            provider = resp.headers.get("x-switchyard-provider", "-")
            attempts = resp.headers.get("x-switchyard-attempts", "-")
        if resp.status != 200:
            message = orjson.loads(raw)["error"]["message"]
            print(f"  {RED}HTTP {resp.status}{RESET} after {ms:6.1f} ms: {message}")
            return
        self.served[provider] = self.served.get(provider, 0) + 1
        text = _stream_text(raw) if stream else orjson.loads(raw)["choices"][0]["message"]["content"]
        mode = "stream" if stream else "json  "
        print(
            f"  {GREEN}200{RESET} {mode} {ms:6.1f} ms  provider={provider:<10} attempts={attempts}  "
            f"{DIM}{(text or '')[:60]}{RESET}"
        )

    async def fault(self, name: str, **faults: Any) -> None:
        assert self.sim is not None
        async with self.http.put(f"{self.sim}/_sim/faults/{name}", json=faults) as resp:
            resp.raise_for_status()

    async def clear(self) -> None:
        assert self.sim is not None
        async with self.http.delete(f"{self.sim}/_sim/faults") as resp:
            resp.raise_for_status()

    async def spend(self) -> None:
        async with self.http.get(f"{self.router}/usage") as resp:
            report = await resp.json()
        self.say("The spend so far (GET /usage: what the router reports to the operator)")
        print(f"  {'provider':<10} {'model':<24} {'requests':>8} {'in':>6} {'out':>6} {'cost USD':>12}")
        for c in report["counters"]:
            print(
                f"  {c['provider']:<10} {c['model']:<24} {c['requests']:>8} {c['inputTokens']:>6} "
                f"{c['outputTokens']:>6} {c['costUSD']:>12}"
            )

    async def report(self) -> None:
        self.say("Providers compared (switchyard report --metrics-url .../metrics)")
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "import sys; from switchyard_cli import main; sys.exit(main(sys.argv[1:]))",
            "report",
            "--metrics-url",
            f"{self.router}/metrics",
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await process.communicate()
        print("  " + out.decode().rstrip().replace("\n", "\n  "))


def _stream_text(raw: bytes) -> str:
    text = ""
    for line in raw.split(b"\n"):
        if line.startswith(b"data: {"):
            for choice in orjson.loads(line[6:]).get("choices", []):
                text += choice.get("delta", {}).get("content") or ""
    return text


async def simulated_story(story: Story) -> None:
    story.say("1. All healthy: the route `chat` sends everything to its primary")
    for i in range(3):
        await story.ask(f"question {i + 1}")
    await story.ask("and a streamed answer", stream=True)

    story.say("2. The primary starts failing (HTTP 503): retried, then Anthropic; after 3 failures")
    print("   in a row its circuit opens and it is skipped without being asked")
    await story.fault("openai", error_rate=1.0, error_status=503)
    for i in range(3):
        await story.ask(f"question {i + 4}")
    await story.ask("streams fall back too, before their first byte", stream=True)

    story.say("3. Anthropic is rate-limited too (429, Retry-After: 2): its key rests, Gemini answers")
    await story.fault("anthropic", error_rate=1.0, error_status=429, retry_after=2)
    await story.ask("anyone there?")
    await story.ask("still there?")

    story.say("4. The faults clear; after the 2 s cooldown one trial request closes the circuit")
    await story.clear()
    await asyncio.sleep(2.1)
    for i in range(3):
        await story.ask(f"back to normal {i + 1}")

    story.say("5. The primary hangs: the 1.5 s attempt timeout gives up on it")
    await story.fault("openai", hang_rate=1.0)
    await story.ask("a patient question")
    await story.clear()

    story.say("6. A client error (HTTP 400) comes back as it is, never retried elsewhere")
    await story.fault("openai", error_rate=1.0, error_status=400)
    await story.ask("a request the provider refuses")
    await story.clear()
    await story.ask("an unknown model", model="nobody/some-model")
    await story.spend()
    await story.report()


async def real_story(story: Story) -> None:
    story.say("Routing to the real providers from .env (route `default`)")
    await story.ask("Say hello in five words.", model="default")
    await story.ask("Count to five.", model="default", stream=True)
    await story.spend()


async def _compile(workdir: Path, env: dict[str, str]) -> None:
    """`switchyard compile`, exactly as a GitOps pipeline would run it on the sample manifests."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import sys; from switchyard_cli import main; sys.exit(main(sys.argv[1:]))",
        "compile",
        "-f",
        str(SAMPLES),
        "--policy",
        "demo",
        "--output-dir",
        str(workdir),
        # The simulator is on loopback: allow-listed, as the chart's endpoints.allowed would.
        f"--allow-endpoint=http://127.0.0.1:{SIM_PORT}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"switchyard compile failed:\n{err.decode()}{out.decode()}")


async def _wait_for(process: asyncio.subprocess.Process, marker: bytes) -> None:
    assert process.stdout is not None
    while True:
        line = await asyncio.wait_for(process.stdout.readline(), 20)
        if not line:
            raise RuntimeError(f"process exited before printing {marker!r}")
        if marker in line:
            return


async def run(use_keys: bool) -> int:
    processes: list[asyncio.subprocess.Process] = []
    env = dict(os.environ)
    workdir = Path(tempfile.mkdtemp(prefix="switchyard-demo-"))
    router_port = _free_port()
    try:
        sim_url = None
        if use_keys:
            router_args = ["--env-file", ".env"]
        else:
            sim_url = f"http://127.0.0.1:{SIM_PORT}"
            sim = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "switchyard_sim",
                "--port",
                str(SIM_PORT),
                stdout=asyncio.subprocess.PIPE,
            )
            processes.append(sim)
            await _wait_for(sim, b"listening")
            # The simulator takes any key; the sample manifests read theirs from the environment.
            env.update({name: f"sk-demo-{name.lower()}" for name in DEMO_KEYS})
            await _compile(workdir, env)
            router_args = [
                "--config",
                str(workdir / "table.yaml"),
                "--credentials-dir",
                str(workdir / "credentials"),
            ]
            print(f"{DIM}simulator on {sim_url}; table compiled from {SAMPLES} into {workdir}{RESET}")
        router = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "switchyard_router",
            "--port",
            str(router_port),
            "--log-level",
            "ERROR",
            *router_args,
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )
        processes.append(router)
        await _wait_for(router, b"listening")
        print(f"{DIM}router on http://127.0.0.1:{router_port} (OpenAI-compatible){RESET}")
        async with aiohttp.ClientSession() as http:
            story = Story(http, f"http://127.0.0.1:{router_port}", sim_url)
            await (real_story(story) if use_keys else simulated_story(story))
        return 0
    finally:
        for process in reversed(processes):
            if process.returncode is None:
                process.terminate()
                await process.wait()


def has_keys(env_file: Path) -> bool:
    values = {**dotenv_values(env_file), **os.environ} if env_file.exists() else dict(os.environ)
    primary = (values.get("PRIMARY_PROVIDER") or "").upper()
    return bool(primary and (values.get(f"{primary}_API_KEY") or values.get(f"{primary}_API_KEYS")))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="switchyard demo", description=__doc__)
    parser.add_argument("--simulator", action="store_true", help="use the simulator even when keys are set")
    args = parser.parse_args(argv)
    use_keys = not args.simulator and has_keys(Path(".env"))
    return asyncio.run(run(use_keys))
