"""End to end: a webhook answered 200 is never lost, whatever kills the server after the 200.

A real server process on 127.0.0.1 is sent many signed bodies (messages and statuses, some
bodies posted twice, some messages delivered again inside another body), then killed with
SIGKILL right after the last 200. Restarted on the same database, it applies what was left, and
the API shows every message exactly once and every status applied.

Two ways of killing, so the test means something whichever way the race goes:

- `stored-only`: the same app served by uvicorn in a real process with its WhatsApp tasks off
  (`create_app(..., background=False)`, the switch the in-process tests use), so at the kill
  every body is stored and none applied: all of the work is left for the restarted server;
- `processing`: `clicktochat serve` itself, processor on, killed whatever it was doing; the
  test then checks that every body was applied whole or not at all (one transaction a body).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from clicktochat.conversations import STATUS_RANK
from clicktochat.graph_standin import GraphStandIn
from clicktochat.journal import journal_dir, read_frames, segments
from clicktochat.payloads import batch, encode, inbound_message, new_wamid, sign, status_update, webhook_body
from clicktochat.service import Service
from clicktochat.settings import Settings
from conftest import NUMBER, POSTGRES, VERIFY_TOKEN, connect_db, free_port, running

pytestmark = pytest.mark.e2e

CUSTOMERS = 40
REPLIED = 8  # customers the business replied to: their messages get statuses
MESSAGES = 600
CHANGES_PER_BODY = 25
# The app with its WhatsApp tasks off, served as `serve` serves it: the processor cannot run.
STORED_ONLY = (
    "import sys, uvicorn\n"
    "from clicktochat.app import create_app\n"
    "from clicktochat.settings import Settings\n"
    "settings = Settings.from_env(db=sys.argv[1], port=int(sys.argv[2]))\n"
    "uvicorn.run(create_app(settings, background=False), host='127.0.0.1', port=settings.port,\n"
    "            log_level='warning', access_log=False, http='httptools', lifespan='on')\n"
)


def cli(db: str, *args: str) -> str:
    """As in test_e2e: the installed command, its last line of output."""
    done = subprocess.run([sys.executable, "-m", "clicktochat", *args, "--db", db], capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def serve(db: str, port: int, env: dict[str, str]) -> Any:
    argv = [sys.executable, "-m", "clicktochat", "serve", "--db", db, "--port", str(port)]
    return running([*argv, "--log-level", "warning"], port, env)


def serve_stored_only(db: str, port: int, env: dict[str, str]) -> Any:
    return running([sys.executable, "-c", STORED_ONLY, db, str(port)], port, env)


def change(value: dict[str, Any]) -> dict[str, Any]:
    return webhook_body(waba_id=NUMBER.waba_id, phone_number_id=NUMBER.phone_number_id,
                        display_phone_number=NUMBER.display_phone_number, value=value)  # fmt: skip


def text(wa_id: str, n: int, at: int, wamid: str | None = None) -> dict[str, Any]:
    return change(inbound_message(wamid=wamid or new_wamid(wa_id), timestamp=at, wa_id=wa_id, user_id=None,
                                  name=f"Customer {wa_id[-3:]}", text=f"Message {n} from {wa_id}"))  # fmt: skip


def post_all(base: str, bodies: list[bytes], threads: int = 4) -> list[int]:
    """POST every body, signed, from a few keep-alive connections; the status of each."""

    def worker(part: list[bytes]) -> list[int]:
        with httpx.Client(base_url=base, timeout=30) as http:
            return [http.post("/webhooks/whatsapp", content=raw, headers={
                "Content-Type": "application/json", "X-Hub-Signature-256": sign(raw, NUMBER.app_secret),
            }).status_code for raw in part]  # fmt: skip

    with ThreadPoolExecutor(threads) as pool:
        return [status for part in pool.map(worker, [bodies[i::threads] for i in range(threads)]) for status in part]


def wamids_of(body: bytes) -> tuple[set[str], set[tuple[str, str]]]:
    """The inbound message ids and (wamid, status) pairs in one stored body."""
    messages, statuses = set(), set()
    for entry in json.loads(body)["entry"]:
        for item in entry["changes"]:
            messages |= {m["id"] for m in item["value"].get("messages", [])}
            statuses |= {(s["id"], s["status"]) for s in item["value"].get("statuses", [])}
    return messages, statuses


class Api:
    def __init__(self, base: str, key: str) -> None:
        self.http = httpx.Client(base_url=f"{base}/api/v1", headers={"Authorization": f"Bearer {key}"}, timeout=30)

    def close(self) -> None:
        self.http.close()

    def conversations(self) -> list[dict[str, Any]]:
        response = self.http.get("/conversations", params={"limit": 500})
        assert response.status_code == 200, response.text
        return response.json()["conversations"]  # type: ignore[no-any-return]

    def messages(self) -> list[dict[str, Any]]:
        found = []
        for conversation in self.conversations():
            response = self.http.get(f"/conversations/{conversation['id']}")
            assert response.status_code == 200, response.text
            found += [{**m, "wa_id": conversation["wa_id"]} for m in response.json()["messages"]]
        return found


def until(what: str, check: Any, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        time.sleep(0.1)


def setup_replied(
    db: str, standin: GraphStandIn, env: dict[str, str], key: str, now: int
) -> tuple[dict[str, str], set[str]]:
    """A business, its number connected (checked against the Graph stand-in), and REPLIED customers who
    wrote and were answered through the API by a running server: ({their wa_id: our reply's wamid},
    the wamids of their first messages)."""

    async def connect() -> None:
        service = await Service.open(Settings(db=db, graph_url=standin.url))  # type: ignore[attr-defined]
        try:
            business = await service.add_business("Pasticceria Dolce Vita", "Europe/Rome")
            await service.whatsapp.connect(business.id, NUMBER.phone_number_id, NUMBER.waba_id, NUMBER.access_token,
                                           NUMBER.app_secret, VERIFY_TOKEN)  # fmt: skip
        finally:
            await service.close()

    asyncio.run(connect())
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    replied = [f"39347{i:07d}" for i in range(REPLIED)]
    with serve(db, port, env) as process, contextlib.closing(Api(base, key)) as api:
        first = {new_wamid(wa_id): wa_id for wa_id in replied}
        bodies = [encode(text(wa_id, 0, now - 3600, wamid)) for wamid, wa_id in first.items()]
        assert post_all(base, bodies) == [200] * REPLIED
        until("the first messages applied", lambda: len(api.conversations()) == REPLIED)
        for conversation in api.conversations():
            response = api.http.post(f"/conversations/{conversation['id']}/messages", json={"text": "Buongiorno!"})
            assert response.status_code == 202, response.text
        until("the replies sent", lambda: sum(m["direction"] == "out" and m["status"] == "sent"
                                              for m in api.messages()) == REPLIED)  # fmt: skip
        sent = {m["wa_id"]: m["wamid"] for m in api.messages() if m["direction"] == "out"}
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    assert len(sent) == REPLIED and all(sent.values())
    return sent, set(first)


@pytest.mark.parametrize("kill_while", ["stored-only", "processing"])
def test_webhooks_answered_200_survive_sigkill_applied_exactly_once(
    db_path: str, standin: GraphStandIn, kill_while: str
) -> None:
    db = db_path  # a SQLite file, or a PostgreSQL database (CLICKTOCHAT_TEST_DB)
    env = {"CLICKTOCHAT_GRAPH_URL": standin.url}  # type: ignore[attr-defined]
    key = cli(db, "apikey", "create", "e2e")
    now = int(time.time())
    sent, first_messages = setup_replied(db, standin, env, key, now)
    rng = random.Random(9)

    # The load: MESSAGES texts from CUSTOMERS people (the replied ones among them), Meta's
    # statuses of our replies in any order and repeated, all shuffled into bodies of
    # CHANGES_PER_BODY changes; some messages come again inside another body, and some bodies
    # are posted twice, byte for byte.
    customers = [f"39347{i:07d}" for i in range(CUSTOMERS)]
    writers = [rng.choice(customers) for _ in range(MESSAGES)]
    messages = [text(wa_id, n, now - 3000 + n) for n, wa_id in enumerate(writers)]
    expected_wamids = Counter(m["entry"][0]["changes"][0]["value"]["messages"][0]["id"] for m in messages)
    furthest = {wamid: rng.choice(["delivered", "read"]) for wamid in sent.values()}
    statuses = [change(status_update(wamid=wamid, status=status, timestamp=now - 2000 + STATUS_RANK[status],
                                     recipient_id=wa_id))
                for wa_id, wamid in sent.items()
                for status in ("sent", "delivered", "read")[:STATUS_RANK[furthest[wamid]]]
                for _ in range(2)]  # fmt: skip
    again = rng.sample(messages, MESSAGES // 20)
    changes = messages + statuses + again
    rng.shuffle(changes)
    bodies = [encode(batch(changes[i:i + CHANGES_PER_BODY])) for i in range(0, len(changes), CHANGES_PER_BODY)]
    bodies += rng.sample(bodies, len(bodies) // 10)
    rng.shuffle(bodies)
    assert len(set(bodies)) < len(bodies) and len(expected_wamids) == MESSAGES

    with connect_db(db) as conn:
        before = conn.execute("SELECT max(id) FROM webhook_events").fetchone()[0]
    port = free_port()
    start = serve_stored_only if kill_while == "stored-only" else serve
    with start(db, port, env) as process:
        answers = post_all(f"http://127.0.0.1:{port}", bodies)
        process.send_signal(signal.SIGKILL)  # right after the last 200
        process.wait(10)
    assert answers == [200] * len(bodies)
    assert process.returncode == -signal.SIGKILL

    # At the kill: every distinct body kept (in the database, or on SQLite maybe still in the
    # journal's files, read here as the next server will); each applied whole or not at all.
    with connect_db(db) as conn:
        if not POSTGRES:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = conn.execute("SELECT body, processed_at FROM webhook_events WHERE id > ?", (before,)).fetchall()
        in_db = {w for (w,) in conn.execute("SELECT wamid FROM wa_messages WHERE direction = 'in'")}
        statuses_in_db = set(conn.execute("SELECT wamid, status FROM wa_statuses"))
    journaled = [] if POSTGRES else [f.body for path in segments(journal_dir(db)) for f in read_frames(path)]
    assert len({bytes(body) for body, _ in stored}) == len(stored)  # none twice in the database
    assert {bytes(body) for body, _ in stored} | set(journaled) == set(bodies)
    stored += [(body, None) for body in set(journaled) - {bytes(body) for body, _ in stored}]
    applied = [wamids_of(bytes(body)) for body, processed in stored if processed is not None]
    pending = [wamids_of(bytes(body)) for body, processed in stored if processed is None]
    assert in_db - first_messages == set().union(*(m for m, _ in applied))
    assert statuses_in_db == set().union(*(s for _, s in applied))
    if kill_while == "stored-only":
        assert not applied and len(pending) == len(set(bodies))
    print(f"{kill_while}: at the kill {len(applied)} bodies applied, {len(pending)} pending")  # shown with -s

    # Restarted: what was left is applied, once; the API shows every message once.
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with serve(db, port, env) as process, contextlib.closing(Api(base, key)) as api:
        until("every stored body applied", lambda: _pending(db) == 0)
        found = api.messages()
        people = sorted(c["wa_id"] for c in api.conversations())
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    with connect_db(db) as conn:
        statuses_in_db = set(conn.execute("SELECT wamid, status FROM wa_statuses"))
    assert statuses_in_db == set().union(*(wamids_of(body)[1] for body in bodies))  # every status, once (its key)
    inbound = Counter(m["wamid"] for m in found if m["direction"] == "in")
    assert inbound == expected_wamids + Counter(first_messages)  # each exactly once
    assert {m["wamid"]: m["status"] for m in found if m["direction"] == "out"} == furthest
    assert people == sorted(set(writers) | set(sent))  # one conversation per customer


def _pending(db: str) -> int:
    with connect_db(db) as conn:
        return int(conn.execute("SELECT count(*) FROM webhook_events WHERE processed_at IS NULL").fetchone()[0])

