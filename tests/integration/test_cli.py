"""The router as a real process: start-up errors, time to first request, reload, graceful stop."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import yaml

from .conftest import table_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def run_router(*args: str, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "switchyard_router", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )


async def test_invalid_env_stops_start_up_with_one_clear_message(tmp_path: Path):
    process = await run_router("--env-file", str(tmp_path / "none"), env={"PRIMARY_PROVIDER": "openia"})
    _, err = await process.communicate()
    assert process.returncode == 2
    assert b"PRIMARY_PROVIDER='openia' is invalid: expected one of openai, anthropic" in err


async def test_dotenv_in_the_working_directory_is_read_by_default(tmp_path: Path):
    (tmp_path / ".env").write_text("PRIMARY_PROVIDER=groq\nGROQ_API_KEY=gsk-x\nPROVIDER_TIMEOUT=never\n")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "switchyard_router", cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    _, err = await process.communicate()
    assert process.returncode == 2
    assert b"PROVIDER_TIMEOUT='never' is invalid" in err


async def test_invalid_table_file_names_the_field(tmp_path: Path):
    config = tmp_path / "t.yaml"
    config.write_text(yaml.safe_dump({"providers": [{"name": "x", "type": "nope"}]}))
    process = await run_router("--config", str(config))
    _, err = await process.communicate()
    assert process.returncode == 2
    assert b"providers[0].type" in err


async def test_serves_reloads_on_sighup_and_keeps_the_last_good_table(sim, tmp_path: Path):
    config = tmp_path / "t.yaml"
    config.write_text(yaml.safe_dump(table_for(sim.url)))
    port = free_port()
    env = {"primary.key": "sk-primary-secret-0001"}
    process = await run_router("--port", str(port), "--config", str(config), env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 10)
        assert b"listening" in line
        async with aiohttp.ClientSession() as http:
            body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
            async with http.post(f"{url}/v1/chat/completions", json=body) as resp:
                assert resp.status == 200
                assert resp.headers["x-switchyard-provider"] == "primary"
            async with http.get(f"{url}/readyz") as resp:
                first = await resp.text()
            # A broken table is refused: the old one keeps serving.
            config.write_text("routes: [\n")
            process.send_signal(signal.SIGHUP)
            await asyncio.sleep(0.3)
            async with http.get(f"{url}/readyz") as resp:
                assert await resp.text() == first
            # A valid new table is swapped in.
            config.write_text(yaml.safe_dump(table_for(sim.url, strategy="RoundRobin")))
            process.send_signal(signal.SIGHUP)
            for _ in range(50):
                await asyncio.sleep(0.05)
                async with http.get(f"{url}/readyz") as resp:
                    if await resp.text() != first:
                        break
            else:
                raise AssertionError("the new table was not loaded")
            async with http.get(f"{url}/metrics") as resp:
                metrics = await resp.text()
            assert 'switchyard_table_loads_total{outcome="rejected"} 1.0' in metrics
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 10)
    assert process.returncode == 0
    _, err = await process.communicate()
    assert b"sk-primary-secret-0001" not in err
    assert b"rejected" in err
