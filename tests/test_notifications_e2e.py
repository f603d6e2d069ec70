"""End to end: a notification reaches Meta exactly once, whatever kills the sender.

`clicktochat serve` sends 120 queued notifications to the Graph stand-in (a real port), paced
at 10 a second. The stand-in answers only the first 20 sends: past those it takes each message
and leaves its answer hanging, as when Meta took a message and the answer was lost, and holds
its status webhooks too. Once it holds one such send, the server gets SIGKILL (so at least one
send is in doubt, whatever the machine's speed), then it is started again on the same database
and the stand-in lets go. The server started again is the app `serve` runs, on `serve`'s uvicorn
configuration and the same port, but in this process, on a clock the test moves (the leases are
at least 20 s: waited out on the wall clock, they took 45 s of the test).
Messages the stand-in took but the dead server never recorded are known by the status
webhooks the stand-in sends, and sends again until the server takes them, as Meta does (each
names our outbox row in `biz_opaque_callback_data`); once they are all heard, and the rows never
claimed are sent, time is moved past the leases, and the rest are sent again. In the end the
stand-in has taken every notification exactly once."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import uvicorn

from clicktochat.app import create_app
from clicktochat.graph_standin import GraphStandIn
from clicktochat.server import config
from clicktochat.service import Service
from clicktochat.settings import Settings
from conftest import NUMBER, VERIFY_TOKEN, Clock, connect_db, free_port, running

pytestmark = pytest.mark.e2e
COUNT, KILL_AFTER, LEASE = 120, 20, 20  # the sender claims 32 rows a round: the kill lands inside the first


async def prepare(db: str, graph_url: str) -> None:
    """A business, its number connected (checked by the stand-in), templates synced, everyone
    opted in, and the notifications queued, before any server runs."""
    service = await Service.open(Settings(db=db, base_url="http://127.0.0.1", graph_url=graph_url))
    try:
        business = await service.add_business("Pasticceria Dolce Vita", "Europe/Rome")
        await service.whatsapp.connect(business.id, NUMBER.phone_number_id, NUMBER.waba_id, NUMBER.access_token,
                                       NUMBER.app_secret, VERIFY_TOKEN)  # fmt: skip
        await service.whatsapp.notifications.sync_templates()
        for n in range(COUNT):
            phone = f"3934{7100000 + n:08d}"
            await service.whatsapp.chats.add_consent(business.id, phone, None, "orders", "in",
                                                     int(time.time()) - 5, "api", "Order updates")  # fmt: skip
            await service.whatsapp.notifications.queue(to=f"+{phone}", topic="orders", template="hello_world",
                                                       language="en_US", idempotency_key=f"order-{n}")  # fmt: skip
    finally:
        await service.close()


def states(db: str) -> Counter[str]:
    with connect_db(db) as conn:
        return Counter(state for (state,) in conn.execute("SELECT state FROM outbox"))


def unheard(db: str, taken: Callable[[], int], restarted_at: int) -> bool:
    """Whether something may still change before time moves: a status of a message the stand-in took
    (`taken`, counted after the database was read) not yet applied, a row never claimed not yet claimed, or
    a claim of the server started again at `restarted_at` (its clock stands still until the test moves it:
    its leases end at restarted_at + LEASE, the dead server's before) still on its way."""
    with connect_db(db) as conn:
        sent, queued, ours = conn.execute(
            "SELECT count(*) FILTER (WHERE state = 'sent'), count(*) FILTER (WHERE state = 'queued'),"
            " count(*) FILTER (WHERE state = 'sending' AND lease_until >= ?) FROM outbox", (restarted_at + LEASE,),
        ).fetchone()  # fmt: skip
    return bool(sent < taken() or queued or ours)


@contextmanager
def serving(settings: Settings, clock: Clock) -> Iterator[None]:
    """The app `clicktochat serve` runs, with `serve`'s uvicorn configuration, on `clock`, in a thread."""
    server = uvicorn.Server(config(create_app(settings, clock), settings, "warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:  # start-up of a real server: bounded, not a timing assumption
            assert thread.is_alive(), "the server did not start"
            threading.Event().wait(0.01)
        yield
    finally:
        server.should_exit = True
        thread.join(30)
        assert not thread.is_alive(), "the server did not stop"


def wait_for(condition: object, what: str, seconds: float = 120) -> None:
    """Bounded polling of real processes (not a timing assumption: the bound is generous)."""
    deadline = time.time() + seconds
    while not condition():  # type: ignore[operator]
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_every_notification_reaches_meta_once_though_the_sender_is_killed(db_path: str, standin: GraphStandIn,
                                                                          clock: Clock) -> None:  # fmt: skip
    db, port = db_path, free_port()
    standin.webhook_url = f"http://127.0.0.1:{port}/webhooks/whatsapp"
    standin.auto_statuses = True
    asyncio.run(prepare(db, standin.url))  # type: ignore[attr-defined]
    standin.withhold_answers_after(KILL_AFTER)
    env = {"CLICKTOCHAT_GRAPH_URL": standin.url, "CLICKTOCHAT_MESSAGES_PER_SECOND": "10",  # type: ignore[attr-defined]
           "CLICKTOCHAT_OUTBOX_LEASE": str(LEASE), "CLICKTOCHAT_BASE_URL": f"http://127.0.0.1:{port}"}  # fmt: skip
    argv = [sys.executable, "-m", "clicktochat", "serve", "--db", db, "--port", str(port),
            "--log-level", "warning"]  # fmt: skip
    with running(argv, port, env) as first:
        wait_for(lambda: len(standin.sent) > KILL_AFTER, f"{KILL_AFTER + 1} sends")
        first.kill()  # SIGKILL: no clean-up, whatever it was doing
        first.wait(10)
    standin.withhold_answers_after(None)
    killed_at = len(standin.sent)
    assert killed_at < COUNT, "the kill came after the last send: nothing left to test"
    assert states(db)["sent"] < killed_at, "no send in doubt at the kill: nothing to test"
    # The server started again, on a clock past the dead one's every claim (whole seconds), which stands still
    # until every message the stand-in took is heard of and the rows never claimed are sent...
    clock.now = restarted_at = int(time.time()) + 1
    # (At the default pace, 80 a second: 10 a second only made the kill land inside the first round.)
    settings = Settings(db=db, base_url=f"http://127.0.0.1:{port}", host="127.0.0.1", port=port,
                        graph_url=standin.url, outbox_lease=LEASE)  # type: ignore[attr-defined]  # fmt: skip
    with serving(settings, clock):
        wait_for(lambda: not unheard(db, lambda: len(standin.sent), restarted_at), "the statuses of what was sent")
        assert states(db)["sending"] == COUNT - len(standin.sent)  # those never sent: their lease not yet ended
        clock.move(2 * LEASE)  # ...then the dead server's leases end (taken back at twice the lease)
        wait_for(lambda: states(db)["sent"] == COUNT, "every notification sent")
    taken = Counter(m.body["biz_opaque_callback_data"] for m in standin.sent)
    assert len(taken) == COUNT and max(taken.values()) == 1, f"doubled: {[k for k, v in taken.items() if v > 1]}"
    assert states(db) == Counter({"sent": COUNT})
