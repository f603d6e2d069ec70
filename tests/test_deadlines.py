"""deadlines.Deadlines: one timer for many waits, each a TimeoutError past its deadline, as
asyncio.timeout would raise. Each wait that should time out waits on something that never
comes, so the outcome does not depend on how fast the machine is; GUARD only stops a broken
timer from hanging the suite."""

from __future__ import annotations

import asyncio

import pytest

from clicktochat.deadlines import Deadlines

GUARD = 30.0  # seconds: far past every deadline below


async def wait_for_ever(deadlines: Deadlines, seconds: float) -> None:
    with deadlines.within(seconds):
        await asyncio.Event().wait()


def test_a_wait_past_its_deadline_raises_timeout_error_and_leaves_no_cancellation() -> None:
    async def main() -> int:
        deadlines = Deadlines()
        async with asyncio.timeout(GUARD):
            with pytest.raises(TimeoutError):
                await wait_for_ever(deadlines, 0.01)
        await asyncio.sleep(0)  # a cancellation left pending would be raised here
        task = asyncio.current_task()
        assert task is not None
        return task.cancelling()

    assert asyncio.run(main()) == 0


def test_a_shorter_deadline_than_the_timers_fires_first() -> None:
    async def main() -> None:
        deadlines = Deadlines()
        long = asyncio.create_task(wait_for_ever(deadlines, 3600))
        await asyncio.sleep(0)  # armed: the timer is set an hour from now
        async with asyncio.timeout(GUARD):
            with pytest.raises(TimeoutError):
                await wait_for_ever(deadlines, 0.01)
        assert not long.done()
        long.cancel()
        with pytest.raises(asyncio.CancelledError):
            await long

    asyncio.run(main())


def test_every_late_task_times_out_and_only_those() -> None:
    async def main() -> None:
        deadlines = Deadlines()
        arrived = asyncio.Event()

        async def wait_for(event: asyncio.Event, seconds: float) -> str:
            try:
                with deadlines.within(seconds):
                    await event.wait()
            except TimeoutError:
                return "late"
            return "in time"

        late = [asyncio.create_task(wait_for(asyncio.Event(), 0.01 * (i % 3 + 1))) for i in range(30)]
        on_time = [asyncio.create_task(wait_for(arrived, 3600)) for _ in range(10)]
        await asyncio.sleep(0)
        arrived.set()
        async with asyncio.timeout(GUARD):
            results = await asyncio.gather(*late, *on_time)
        assert results == ["late"] * 30 + ["in time"] * 10
        assert not deadlines._due and not deadlines._expired  # nothing kept

    asyncio.run(main())


def test_a_cancellation_from_elsewhere_goes_through_as_one() -> None:
    async def main() -> None:
        deadlines = Deadlines()
        task = asyncio.create_task(wait_for_ever(deadlines, 3600))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not deadlines._due

    asyncio.run(main())


def test_a_block_that_ended_in_time_is_not_cancelled_later() -> None:
    async def main() -> str:
        deadlines = Deadlines()
        with deadlines.within(0.0):  # due at once, but the block ends before the timer runs
            pass
        for _ in range(5):
            await asyncio.sleep(0.001)  # the timer runs meanwhile: it must find nothing to cancel
        assert deadlines._timer is None  # it has run
        return "not cancelled"

    assert asyncio.run(main()) == "not cancelled"
