"""Edits made by another process, seen here within a second: the caches of links and widgets
dropped, signing keys and WhatsApp numbers read again.

Every write to what a click resolves to (links, agents, their channels, businesses, widgets,
signing keys) bumps `routing_version` by triggers. `RoutingWatcher` compares it with the one it
saw: on SQLite it polls it every `interval` (one read a second, never one a click). On
PostgreSQL the triggers also NOTIFY the channel 'clicktochat' at commit, and `ChangeListener`
holds a connection of its own that LISTENs to it: a notification drops the caches at once and
wakes the watcher. While that connection is down (a restart of the server, a dropped network)
the watcher polls every `interval` again, and once it is back it checks once for whatever
changed meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from .database import log_failure

if TYPE_CHECKING:
    from .service import Service

log = logging.getLogger(__name__)
CHANNEL = "clicktochat"
SAFETY_POLL = 30.0  # seconds between polls while notifications arrive: a last resort, not the way
ALIVE_EVERY = 5.0  # seconds of silence after which the listening connection is checked
RETRY_EVERY = 1.0  # seconds between two tries to listen again


class RoutingWatcher:
    """Drops the link and widget caches and reloads signing keys and WhatsApp numbers when
    another process (the CLI, another instance) changed them."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.seen: int | None = None
        self.failing = False  # the last check could not read the database
        self.listener: ChangeListener | None = None
        self._wake = asyncio.Event()

    async def run_once(self) -> None:
        """One check; the first only notes the version. Errors are logged, never raised."""
        try:
            version = await self.service.store.routing_version()
            if self.seen is not None and version != self.seen:
                self.service.forget()
                await self.service.reload_signing_keys()
                await self.service.whatsapp.reload()
            self.seen = version
            self.failing = False
        except Exception:  # a locked database, a restarting server: try again at the next tick
            if not self.failing:
                log_failure(log, "could not check for changes made by other processes")
            self.failing = True

    def wake(self) -> None:
        """Check now."""
        self._wake.set()

    def heard(self) -> None:
        """A notification: links and widgets are read again from the next click on, and the
        keys and numbers at the check this wakes."""
        self.service.forget()
        self._wake.set()

    async def run(self, interval: float) -> None:
        while True:
            listening = self.listener is not None and self.listener.up
            with contextlib.suppress(TimeoutError):
                # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancellation that arrives as the
                # event is set (a notification at shutdown), and the server never stopped.
                async with asyncio.timeout(SAFETY_POLL if listening else interval):
                    await self._wake.wait()
            self._wake.clear()
            await self.run_once()


class ChangeListener:
    """LISTEN on `CHANNEL` on a connection of its own (psycopg's async one, on the event loop);
    `on_change()` for every notification. Reconnects every RETRY_EVERY seconds while the
    database is away; `up` says whether it listens now."""

    def __init__(self, url: str, on_change: Callable[[], None], on_state: Callable[[], None]) -> None:
        self.url = url
        self.on_change = on_change
        # Listening again (what changed meanwhile was not heard: check), or no longer (poll again).
        self.on_state = on_state
        self.up = False

    async def run(self) -> None:
        import psycopg

        quiet = False
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True, connect_timeout=5,
                                                             application_name="clicktochat listen")
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.up, quiet = True, False
                    log.info("listening for changes made by other instances")
                    self.on_state()
                    while True:
                        async for _ in conn.notifies(timeout=ALIVE_EVERY):
                            self.on_change()
                        await conn.execute("SELECT 1")  # silence: is anyone still there?
            except (psycopg.Error, OSError) as exc:
                if self.up or not quiet:
                    log.warning("not listening for changes by other instances (%s); polling every second", exc)
                if self.up:
                    self.up = False
                    self.on_state()
                quiet = True
            await asyncio.sleep(RETRY_EVERY)
