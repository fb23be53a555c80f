"""The README's first command: the demo tells its story with real processes."""

from __future__ import annotations

import asyncio
import re

from .. import console_script


async def test_the_demo_story_on_the_simulator():
    process = await asyncio.create_subprocess_exec(
        console_script("switchyard"), "demo", "--simulator",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.decode())
    steps = re.split(r"\n(?=\d\. )", text)
    served = [re.findall(r"provider=(\w+)", step) for step in steps[1:]]
    assert set(served[0]) == {"openai"}
    assert set(served[1]) == {"anthropic"} and "attempts=1" in steps[2]  # the circuit opened
    assert set(served[2]) == {"gemini"}
    assert set(served[3]) == {"openai"}  # recovered after the cooldown
    assert served[4] == ["anthropic"]
    assert "HTTP 400" in steps[6] and "HTTP 404" in steps[6]
    assert "cost USD" in text
