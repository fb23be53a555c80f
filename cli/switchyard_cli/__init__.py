"""`switchyard`: the project's tools in one command (demo, sim, compile, report).

Each subcommand imports its own package only when chosen, so `switchyard sim` never loads kopf.
"""

from __future__ import annotations

import importlib
import sys

_COMMANDS = {
    "demo": ("switchyard_cli.demo", "run the simulator and the router and tell a short routing story"),
    "sim": ("switchyard_sim.cli", "run the provider simulator (OpenAI, Anthropic, Gemini wire formats)"),
    "compile": ("switchyard_operator.compile_cli", "compile LLMProvider/RoutingPolicy manifests offline"),
    "report": (
        "switchyard_operator.report_cli",
        "compare providers from the cluster's status or a router's metrics",
    ),
}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help") or args[0] not in _COMMANDS:
        print("usage: switchyard {" + ",".join(_COMMANDS) + "} [options]\n")
        for name, (_, help_text) in _COMMANDS.items():
            print(f"  {name:<9} {help_text}")
        return 0 if args and args[0] in ("-h", "--help") else 2
    module = importlib.import_module(_COMMANDS[args[0]][0])
    result: int = module.main(args[1:])
    return result
