import asyncio

import pytest
from switchyard_router.watchdog import _TICKERS, TICK, Watchdog


async def test_silence_while_reading_cancels_the_read_and_is_owned_up_to():
    watchdog = Watchdog(idle=0.05, deadline=asyncio.get_running_loop().time() + 10)
    with pytest.raises(asyncio.CancelledError), watchdog:
        await asyncio.sleep(1)
    assert watchdog.fired()
    assert asyncio.current_task().cancelling() == 0  # taken back: the task carries on
    watchdog.stop()


async def test_time_spent_outside_reads_does_not_count_and_activity_rearms():
    watchdog = Watchdog(idle=0.05, deadline=asyncio.get_running_loop().time() + 10)
    await asyncio.sleep(0.12)  # writing to a slow client: not upstream silence
    for _ in range(3):
        with watchdog:
            await asyncio.sleep(0.03)  # each read well within the idle time
    assert not watchdog.fired()
    watchdog.stop()


async def test_the_deadline_cuts_even_a_lively_stream():
    watchdog = Watchdog(idle=10, deadline=asyncio.get_running_loop().time() + 0.05)
    with pytest.raises(asyncio.CancelledError), watchdog:
        await asyncio.sleep(1)
    assert watchdog.fired()
    watchdog.stop()


async def test_one_ticker_serves_every_watchdog_of_a_loop_and_rests_when_none_is_left():
    async def read(idle: float) -> bool:
        watchdog = Watchdog(idle=idle, deadline=asyncio.get_running_loop().time() + 10)
        try:
            with watchdog:
                await asyncio.sleep(0.2)
            return False
        except asyncio.CancelledError:
            return watchdog.fired()
        finally:
            watchdog.stop()

    assert await asyncio.gather(read(0.05), read(1), read(0.05)) == [True, False, True]
    ticker = _TICKERS[asyncio.get_running_loop()]
    assert not ticker.watched
    await asyncio.sleep(3 * TICK)
    assert ticker.handle is None  # no timer runs while nothing is watched
