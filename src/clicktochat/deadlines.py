"""Deadlines for many short waits, at the cost of a dict entry each.

`asyncio.timeout` makes a timer for every block it guards (about 4.5 µs a request on this
project's machines, see docs/performance.md: a twentieth of a webhook body's whole budget). A
`Deadlines` keeps one timer, set for the earliest deadline it holds; a block arms by writing
its task and deadline into a dict, and disarms by removing them. When the timer fires, every
task past its deadline is cancelled and, as with `asyncio.timeout`, the block it is in raises
`TimeoutError` instead of `CancelledError`; a cancellation from anyone else goes through.

One event loop's: no lock. A deadline fires on time (the timer is moved earlier when a shorter
deadline arrives), never before it."""

from __future__ import annotations

import asyncio
import math
from types import TracebackType
from typing import Any


class Deadlines:
    def __init__(self) -> None:
        self._due: dict[asyncio.Task[Any], float] = {}  # task -> loop.time() it must be done by
        self._expired: set[asyncio.Task[Any]] = set()  # cancelled by the timer, not yet out of their block
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf

    def within(self, seconds: float) -> Deadline:
        """`with deadlines.within(5.0): await ...`: TimeoutError if the block takes longer."""
        return Deadline(self, seconds)

    def _arm(self, task: asyncio.Task[Any], seconds: float) -> None:
        loop = task.get_loop()
        at = loop.time() + seconds
        self._due[task] = at
        if at < self._timer_at:  # the first, or a shorter deadline than the timer's
            if self._timer is not None:
                self._timer.cancel()
            self._timer, self._timer_at = loop.call_at(at, self._fire, loop), at

    def _disarm(self, task: asyncio.Task[Any]) -> bool:
        """Whether the timer cancelled the task inside the block."""
        self._due.pop(task, None)
        if self._expired:
            try:
                self._expired.remove(task)
                return True
            except KeyError:
                pass
        return False

    def _fire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer, self._timer_at = None, math.inf
        now = loop.time()
        late = [task for task, at in self._due.items() if at <= now]
        for task in late:
            del self._due[task]
            self._expired.add(task)
            task.cancel()
        if self._due:
            at = min(self._due.values())
            self._timer, self._timer_at = loop.call_at(at, self._fire, loop), at


class Deadline:
    __slots__ = ("_deadlines", "_seconds", "_task", "_cancelling")

    def __init__(self, deadlines: Deadlines, seconds: float) -> None:
        self._deadlines, self._seconds = deadlines, seconds
        self._task: asyncio.Task[Any] | None = None
        self._cancelling = 0

    def __enter__(self) -> Deadline:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a deadline guards code running in a task")
        self._task, self._cancelling = task, task.cancelling()
        self._deadlines._arm(task, self._seconds)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:  # fmt: skip
        assert self._task is not None
        # As asyncio.timeout: a cancellation of ours is taken back; if no one else asked for one
        # meanwhile, the block ran out of time.
        if self._deadlines._disarm(self._task) and self._task.uncancel() <= self._cancelling:
            if kind is asyncio.CancelledError:
                raise TimeoutError from exc
