"""The one clock: every reader goes through it, and a manual clock moves them all."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from switchyard_router import clock

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [p for d in ("router", "operator", "simulator", "cli") for p in (ROOT / d).rglob("*.py")]
# Reading the time anywhere but clock.py escapes the tests' clock (and the CI runs that move it).
DIRECT = re.compile(r"\btime\.(time|monotonic|perf_counter|time_ns|monotonic_ns)\(|\b(datetime|date)\.(now|utcnow|today)\(")


def test_no_module_reads_the_time_but_the_clock():
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in SOURCES
        if path.name != "clock.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if DIRECT.search(line)
    ]
    assert SOURCES and not offenders, "read the time through switchyard_router.clock:\n" + "\n".join(offenders)


def test_the_system_clock_reads_the_system():
    system = clock.current()
    assert abs(system.now() - datetime.now(UTC)) < timedelta(seconds=5)
    first = clock.monotonic()
    assert clock.monotonic() >= first and abs(clock.time() - system.time()) < 5


def test_a_manual_clock_moves_every_reader_and_is_restored():
    leap_day = datetime(2028, 2, 29, 23, 59, 59, tzinfo=UTC)
    before = clock.current()
    with clock.use(clock.ManualClock(leap_day)) as manual:
        assert clock.now() == leap_day and clock.time() == leap_day.timestamp()
        start = clock.monotonic()
        manual.advance(1.5)
        assert clock.now() == datetime(2028, 3, 1, 0, 0, 0, 500000, tzinfo=UTC)
        assert clock.monotonic() - start == 1.5
        manual.set(datetime(2027, 12, 31, tzinfo=UTC))  # the wall clock may go back...
        assert clock.now().year == 2027 and clock.monotonic() - start == 1.5  # ...durations never
    assert clock.current() is before


def test_a_manual_clock_refuses_what_it_cannot_mean():
    with pytest.raises(ValueError, match="timezone-aware"):
        clock.ManualClock(datetime(2026, 12, 1))
    with pytest.raises(ValueError, match="set"):
        clock.ManualClock(datetime(2026, 12, 1, tzinfo=UTC)).advance(-1)
