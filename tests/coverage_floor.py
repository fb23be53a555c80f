"""CI's coverage ratchet: fail when line coverage drops below the floors in coverage-floor.json.

Two floors: the provider logic (adapters, routing choices, retries, breaker, limits, cost) and
everything else. Raise a floor when coverage rises; never lower one.
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    floors = json.loads((ROOT / "coverage-floor.json").read_text())
    tree = ET.parse(ROOT / "coverage.xml")
    groups: dict[str, list[int]] = {"provider_logic": [0, 0], "total": [0, 0]}
    for cls in tree.iter("class"):
        filename = cls.get("filename", "")
        lines = cls.findall("lines/line")
        hit = sum(1 for line in lines if int(line.get("hits", "0")) > 0)
        groups["total"][0] += hit
        groups["total"][1] += len(lines)
        if any(fnmatch(filename, pattern) for pattern in floors["provider_logic_files"]):
            groups["provider_logic"][0] += hit
            groups["provider_logic"][1] += len(lines)
    failed = False
    for name, (hit, total) in groups.items():
        percent = 100.0 * hit / total if total else 100.0
        floor = float(floors[name])
        verdict = "ok" if percent + 1e-9 >= floor else "BELOW FLOOR"
        failed |= verdict != "ok"
        print(f"coverage {name}: {percent:.2f}% of {total} lines (floor {floor:.2f}%) {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
