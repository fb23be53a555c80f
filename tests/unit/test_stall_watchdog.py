import asyncio

import pytest
from switchyard_router.dispatch import _StallWatchdog


async def test_silence_while_reading_cancels_the_read_and_is_owned_up_to():
    watchdog = _StallWatchdog(idle=0.05, deadline=asyncio.get_running_loop().time() + 10)
    with pytest.raises(asyncio.CancelledError), watchdog:
        await asyncio.sleep(1)
    assert watchdog.fired()
    assert asyncio.current_task().cancelling() == 0  # taken back: the task carries on
    watchdog.stop()


async def test_time_spent_outside_reads_does_not_count_and_activity_rearms():
    watchdog = _StallWatchdog(idle=0.05, deadline=asyncio.get_running_loop().time() + 10)
    await asyncio.sleep(0.12)  # writing to a slow client: not upstream silence
    for _ in range(3):
        with watchdog:
            await asyncio.sleep(0.03)  # each read well within the idle time
    assert not watchdog.fired()
    watchdog.stop()


async def test_the_deadline_cuts_even_a_lively_stream():
    watchdog = _StallWatchdog(idle=10, deadline=asyncio.get_running_loop().time() + 0.05)
    with pytest.raises(asyncio.CancelledError), watchdog:
        await asyncio.sleep(1)
    assert watchdog.fired()
    watchdog.stop()
