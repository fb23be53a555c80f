"""The router as a real process: start-up errors, time to first request, reload, graceful stop."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
from pathlib import Path

import aiohttp
import yaml

from .. import console_script
from .conftest import KEYS, table_for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def run_router(*args: str, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        console_script("switchyard-router"), *args,
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
        console_script("switchyard-router"), cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    _, err = await process.communicate()
    assert process.returncode == 2
    assert b"PROVIDER_TIMEOUT='never' is invalid" in err


async def test_a_policy_without_its_table_stops_start_up(tmp_path: Path):
    # Following a policy, the environment never makes the table (nor the keys).
    process = await run_router("--policy", "chat", "--env-file", str(tmp_path / "none"),
                               env={"PRIMARY_PROVIDER": "openai", "OPENAI_API_KEY": "sk-env"})
    _, err = await process.communicate()
    assert process.returncode == 2
    assert b"--policy chat needs its table: give --config FILE, or API access" in err


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


async def wait_listening(process: asyncio.subprocess.Process) -> None:
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 10)
    assert b"listening" in line, line


async def stop(process: asyncio.subprocess.Process) -> bytes:
    process.send_signal(signal.SIGTERM)
    _, err = await asyncio.wait_for(process.communicate(), 10)
    assert process.returncode == 0, err
    return err


async def test_a_router_off_loopback_refuses_to_start_without_caller_tokens(tmp_path: Path, sim):
    config = tmp_path / "t.yaml"
    config.write_text(yaml.safe_dump(table_for(sim.url)))
    process = await run_router("--host", "0.0.0.0", "--config", str(config))
    _, err = await process.communicate()
    assert process.returncode == 2
    assert b"no caller tokens are set" in err


TOKEN_ONE, TOKEN_TWO = "caller-token-one-" + "a" * 20, "caller-token-two-" + "b" * 20


async def test_a_short_caller_token_stops_the_router_at_start(tmp_path: Path, sim):
    config = tmp_path / "t.yaml"
    config.write_text(yaml.safe_dump(table_for(sim.url)))
    process = await run_router("--host", "0.0.0.0", "--config", str(config), env={"SWITCHYARD_CALLER_TOKENS": "hunter2"})
    _, err = await process.communicate()
    assert process.returncode == 2
    assert b"SWITCHYARD_CALLER_TOKENS entry 1: a caller token is one word of at least 32 characters" in err
    assert b"hunter2" not in err


async def test_caller_tokens_guard_the_api_and_never_reach_a_provider(tmp_path: Path, sim):
    config = tmp_path / "t.yaml"
    config.write_text(yaml.safe_dump(table_for(sim.url)))
    tokens = tmp_path / "tokens"
    tokens.write_text(f"# callers\n{TOKEN_ONE}\n")
    port, health = free_port(), free_port()
    process = await run_router(
        "--host", "0.0.0.0", "--port", str(port), "--config", str(config), "--caller-tokens-file", str(tokens),
        "--health-port", str(health), env={"primary.key": "sk-primary-secret-0001", "SWITCHYARD_CALLER_TOKENS": TOKEN_TWO},
    )
    await wait_listening(process)
    body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
    try:
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{port}/v1/chat/completions"
            async with http.post(url, json=body) as resp:
                assert resp.status == 401
                assert (await resp.json())["error"]["code"] == "invalid_api_key"
            async with http.post(url, json=body, headers={"Authorization": "Bearer wrong"}) as resp:
                assert resp.status == 401
            async with http.post(url, json=body, headers={"Authorization": TOKEN_ONE}) as resp:
                assert resp.status == 401  # the token alone, without its scheme
            async with http.post(url, json=body, headers={"Authorization": f"Basic {TOKEN_ONE}"}) as resp:
                assert resp.status == 401
            for token in (TOKEN_ONE, TOKEN_TWO):
                async with http.post(url, json=body, headers={"Authorization": f"Bearer {token}"}) as resp:
                    assert resp.status == 200
            async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                assert resp.status == 200  # probes stay open
            async with http.get(f"http://127.0.0.1:{health}/readyz") as resp:
                assert resp.status == 200
            async with http.get(f"http://127.0.0.1:{health}/metrics") as resp:
                assert "switchyard_requests_total" in await resp.text()
            async with http.get(f"http://127.0.0.1:{health}/v1/models") as resp:
                assert resp.status == 404  # the health port serves no API
    finally:
        await stop(process)
    sent = sim.last_request("primary")
    assert all(TOKEN_ONE not in str(v) and TOKEN_TWO not in str(v) for v in sent["headers"].values())


async def test_a_kubelet_style_swap_of_mounted_files_reloads(tmp_path: Path, sim):
    """The kubelet writes a new timestamped directory and swaps the `..data` symlink."""
    mount = tmp_path / "table"
    first = mount / "..2026_11_26_00_00_00.000000001"
    first.mkdir(parents=True)
    (first / "table.yaml").write_text(yaml.safe_dump(table_for(sim.url)))
    (mount / "..data").symlink_to(first.name)
    (mount / "table.yaml").symlink_to("..data/table.yaml")
    creds = tmp_path / "creds"
    v1 = creds / "..v1"
    v1.mkdir(parents=True)
    (v1 / "primary.key").write_text("sk-primary-secret-0001")
    (creds / "..data").symlink_to(v1.name)
    (creds / "primary.key").symlink_to("..data/primary.key")
    port = free_port()
    process = await run_router(
        "--port", str(port), "--config", str(mount / "table.yaml"), "--credentials-dir", str(creds),
        "--watch-interval", "0.1", env={"claude.key": "sk-ant-claude-0002", "gem.key": "AIzaGemini000000000000003"},
    )
    await wait_listening(process)
    url = f"http://127.0.0.1:{port}"
    body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{url}/v1/chat/completions", json=body) as resp:
                assert resp.headers["x-switchyard-provider"] == "primary"
            # New table: claude first. New key for primary. Swapped in one rename each.
            second = mount / "..2026_11_26_00_01_00.000000002"
            second.mkdir()
            reordered = table_for(sim.url)
            reordered["routes"][0]["targets"].reverse()
            (second / "table.yaml").write_text(yaml.safe_dump(reordered))
            (mount / "..data_tmp").symlink_to(second.name)
            (mount / "..data_tmp").rename(mount / "..data")
            served = None
            for _ in range(50):
                await asyncio.sleep(0.05)
                async with http.post(f"{url}/v1/chat/completions", json=body) as resp:
                    served = resp.headers["x-switchyard-provider"]
                if served == "gem":
                    break
            assert served == "gem"
            # A broken table in the next swap is refused; the last good one keeps serving.
            third = mount / "..3"
            third.mkdir()
            (third / "table.yaml").write_text("routes: [")
            (mount / "..data_tmp").symlink_to(third.name)
            (mount / "..data_tmp").rename(mount / "..data")
            await asyncio.sleep(0.4)
            async with http.post(f"{url}/v1/chat/completions", json=body) as resp:
                assert resp.status == 200 and resp.headers["x-switchyard-provider"] == "gem"
            async with http.get(f"{url}/metrics") as resp:
                assert 'switchyard_table_loads_total{outcome="rejected"} 1.0' in await resp.text()
    finally:
        err = await stop(process)
    assert b"rejected" in err


async def test_a_stop_lets_a_stream_in_flight_finish_and_takes_no_new_requests(sim, tmp_path: Path):
    config = tmp_path / "t.yaml"
    config.write_text(yaml.safe_dump(table_for(sim.url)))
    port = free_port()
    process = await run_router("--port", str(port), "--config", str(config), env={"primary.key": "sk-primary-0001"})
    await wait_listening(process)
    sim.set_faults("primary", chunk_delay_ms=50)
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    body = {"model": "chat", "messages": [{"role": "user", "content": "a long answer"}], "stream": True}
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json=body) as resp:
            assert resp.status == 200
            first = await resp.content.readline()
            process.send_signal(signal.SIGTERM)  # as the kubelet does when the pod goes
            rest = await resp.content.read()
        try:
            async with http.post(url, json=body) as late:
                raise AssertionError(f"a request after the stop was served: HTTP {late.status}")
        except aiohttp.ClientConnectionError:
            pass
    events = [line for line in (first + rest).splitlines() if line.startswith(b"data: ")]
    assert len(events) > 3 and events[-1] == b"data: [DONE]", events  # whole, not cut
    assert b'"finish_reason":"stop"' in events[-2] or b'"finish_reason":"stop"' in events[-3]
    _, err = await asyncio.wait_for(process.communicate(), 10)
    assert process.returncode == 0, err


async def test_json_logs_are_one_object_a_line(sim, tmp_path: Path):
    config = tmp_path / "t.yaml"
    config.write_text(yaml.safe_dump(table_for(sim.url)))
    port = free_port()
    process = await run_router(
        "--port", str(port), "--config", str(config), "--log-format", "json", env=KEYS
    )
    await wait_listening(process)
    sim.set_faults("primary", error_rate=1.0, error_status=500)
    async with aiohttp.ClientSession() as http:
        body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
        async with http.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body) as resp:
            assert resp.headers["x-switchyard-provider"] == "claude"
    err = await stop(process)
    lines = [json.loads(line) for line in err.decode().splitlines()]
    failed = [line for line in lines if line["message"].startswith("attempt failed: route=chat provider=primary")]
    assert failed and failed[0]["level"] == "WARNING" and failed[0]["logger"] == "switchyard.router"
    assert all(set(line) >= {"time", "level", "logger", "message"} for line in lines)
    assert b"sk-primary-secret-0001" not in err
