"""listen.py: the watcher that drops caches when another process changed what clicks resolve to."""

from __future__ import annotations

import asyncio

import pytest
from starlette.testclient import TestClient

from clicktochat.listen import RoutingWatcher
from clicktochat.service import Service
from conftest import call


def test_a_watcher_woken_as_it_is_cancelled_stops(client: TestClient, service: Service) -> None:
    """A notification that arrives as the server stops (the wake and the cancel in one turn of
    the loop): the watcher ends. asyncio.wait_for swallowed such a cancel on Python 3.11, and the
    server's shutdown waited for it for ever."""

    async def wake_and_cancel() -> None:
        watcher = RoutingWatcher(service)
        task = asyncio.create_task(watcher.run(3600))
        await asyncio.sleep(0)  # it now waits for its event
        watcher.wake()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)

    call(client, wake_and_cancel())
