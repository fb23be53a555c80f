"""Tracing's switch: off unless an OTLP endpoint is set, and then only over http/protobuf."""

from __future__ import annotations

import subprocess
import sys

import pytest
from switchyard_router import tracing
from switchyard_router.tracing import TracingConfigError, configure, endpoint_of


@pytest.mark.parametrize(
    ("env", "endpoint"),
    [
        ({}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": " "}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, "http://c:4318"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:4318/v1/traces"}, "http://t:4318/v1/traces"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, None),
    ],
)
def test_the_endpoint_decides_whether_to_trace(env, endpoint):
    assert endpoint_of(env) == endpoint


def test_grpc_is_refused_naming_the_variable_and_the_fix():
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"}
    with pytest.raises(TracingConfigError, match=r"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=grpc.*http/protobuf"):
        configure(env)
    assert not tracing.ENABLED


def test_an_endpoint_without_the_sdk_says_which_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)  # as if not installed
    with pytest.raises(TracingConfigError, match=r"switchyard\[tracing\]"):
        configure({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"})


def test_a_router_that_does_not_trace_never_imports_the_sdk():
    code = (
        "import asyncio, sys\n"
        "from switchyard_router import cli, tracing\n"
        "from switchyard_router.server import Router\n"
        "assert not tracing.configure({})\n"
        "async def main():\n"
        "    Router().server()\n"
        "asyncio.run(main())\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_console_script_refuses_an_unsupported_protocol_at_start():
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "PATH": ""}
    done = subprocess.run(
        [sys.executable, "-m", "switchyard_router", "--env-file", "/nonexistent"],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert done.returncode == 2
    assert "OTEL_EXPORTER_OTLP_PROTOCOL=grpc" in done.stderr


def test_the_operator_refuses_an_unsupported_protocol_at_start(monkeypatch, capsys):
    from switchyard_operator import cli

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    assert cli.main(["-A", "--standalone"]) == 2
    assert "OTEL_EXPORTER_OTLP_PROTOCOL=grpc" in capsys.readouterr().err
