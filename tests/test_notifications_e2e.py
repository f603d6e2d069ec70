"""End to end: a notification reaches Meta exactly once, whatever kills the sender.

`clicktochat serve` sends 120 queued notifications to the Graph stand-in (a real port), paced
at 10 a second. The stand-in answers only the first 20 sends: past those it takes each message
and leaves its answer hanging, as when Meta took a message and the answer was lost, and holds
its status webhooks too. Once it holds one such send, the server gets SIGKILL (so at least one
send is in doubt, whatever the machine's speed), then it is started again on the same database
and the stand-in lets go.
Messages the stand-in took but the dead server never recorded are known by the status
webhooks the stand-in sends, and sends again until the server takes them, as Meta does (each
names our outbox row in `biz_opaque_callback_data`); the rest are sent again once their lease
has passed. In the end the stand-in has taken every notification exactly once."""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter

import pytest

from clicktochat.graph_standin import GraphStandIn
from clicktochat.service import Service
from clicktochat.settings import Settings
from conftest import NUMBER, VERIFY_TOKEN, connect_db, free_port, running

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


def wait_for(condition: object, what: str, seconds: float = 120) -> None:
    """Bounded polling of real processes (not a timing assumption: the bound is generous)."""
    deadline = time.time() + seconds
    while not condition():  # type: ignore[operator]
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_every_notification_reaches_meta_once_though_the_sender_is_killed(db_path: str,
                                                                          standin: GraphStandIn) -> None:  # fmt: skip
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
    with running(argv, port, env):
        wait_for(lambda: states(db)["sent"] == COUNT, "every notification sent", seconds=LEASE + 120)
    taken = Counter(m.body["biz_opaque_callback_data"] for m in standin.sent)
    assert len(taken) == COUNT and max(taken.values()) == 1, f"doubled: {[k for k, v in taken.items() if v > 1]}"
    assert states(db) == Counter({"sent": COUNT})
