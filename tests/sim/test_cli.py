"""The command line: `python -m switchyard_sim`, `switchyard sim`, and main() in-process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from switchyard_sim.cli import main

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, deadline: float = 10.0) -> None:
    stop = time.monotonic() + deadline
    while time.monotonic() < stop:
        try:
            with urllib.request.urlopen(f"{url}/_sim/health", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.02)
    raise AssertionError("simulator did not come up")


def run_and_terminate(command: list[str]) -> tuple[str, int]:
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        url = line.rsplit(" ", 1)[-1]
        wait_healthy(url)
        process.send_signal(signal.SIGTERM)
        return line, process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-m", "switchyard_sim", "--port", "0", "--seed", "3"],
        [str(BIN / "switchyard"), "sim", "--port", "0"],
    ],
)
def test_entry_points_print_the_url_and_stop_on_sigterm(command: list[str]) -> None:
    line, code = run_and_terminate(command)
    assert line.startswith("switchyard-sim listening on http://127.0.0.1:")
    assert code == 0


def test_main_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"

    def stop_when_up() -> None:
        wait_healthy(url)
        os.kill(os.getpid(), signal.SIGTERM)  # caught by the simulator's loop, not by pytest

    helper = threading.Thread(target=stop_when_up)
    helper.start()
    assert main(["--port", str(port)]) == 0
    helper.join()
    assert capsys.readouterr().out == f"switchyard-sim listening on {url}\n"


def test_a_taken_port_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert main(["--port", str(port)]) == 1
    assert "switchyard-sim:" in capsys.readouterr().err


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--help"])
    assert caught.value.code == 0
    assert "--seed" in capsys.readouterr().out
