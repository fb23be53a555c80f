"""Run a server module while counting the bytecodes each function executes (Python >= 3.12).

    python -m tests.bench.counted OUT MODULE [ARGS...]

Counting is off (and costs nothing) until SIGUSR1, which starts it afresh; SIGUSR2 stops it and
writes {"file:function": count} to OUT as JSON. sys.monitoring's INSTRUCTION event sees every
bytecode of every thread, so what it counts does not depend on how fast or loaded the machine is.
"""

from __future__ import annotations

import json
import os
import runpy
import signal
import sys
from collections import Counter
from types import CodeType, FrameType


def short_name(code: CodeType) -> str:
    path = code.co_filename
    for marker in ("site-packages/", "/router/", "/simulator/", "/tests/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{path}:{code.co_qualname}"


def main() -> None:
    if sys.version_info < (3, 12):
        raise SystemExit("counted: needs Python 3.12 or later (sys.monitoring)")
    out, module = sys.argv[1], sys.argv[2]
    sys.argv = [module, *sys.argv[3:]]
    counts: Counter[CodeType] = Counter()
    monitoring = sys.monitoring
    tool = monitoring.PROFILER_ID

    def on_instruction(code: CodeType, offset: int) -> None:
        counts[code] += 1

    def restart(signum: int, frame: FrameType | None) -> None:
        counts.clear()
        monitoring.set_events(tool, monitoring.events.INSTRUCTION)

    def dump(signum: int, frame: FrameType | None) -> None:
        monitoring.set_events(tool, 0)  # the dump itself is not counted
        by_name: Counter[str] = Counter()
        for code, n in list(counts.items()):
            by_name[short_name(code)] += n
        with open(out + ".tmp", "w") as f:
            json.dump(by_name, f)
        os.replace(out + ".tmp", out)  # whoever waits for OUT never reads half of it

    monitoring.use_tool_id(tool, "switchyard-bench")
    monitoring.register_callback(tool, monitoring.events.INSTRUCTION, on_instruction)
    signal.signal(signal.SIGUSR1, restart)
    signal.signal(signal.SIGUSR2, dump)
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
