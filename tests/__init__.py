"""Shared helpers for the test packages."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def console_script(name: str) -> str:
    """The installed console script `name`, as the README and the image start it (not `python -m`).

    Prefer the one next to this interpreter, so the test runs the venv's script, not another on PATH.
    """
    beside = Path(sys.executable).with_name(name)
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"console script {name!r} is not installed: run `pip install -e .` (make test does)")
    return found
