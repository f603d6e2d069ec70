"""The WhatsApp commands (issue 9): click's CliRunner against a real SQLite file and the Graph
stand-in on a real port; conversations made by signed webhooks to the app over the same file;
and, marked e2e, the README's simulator walkthrough with `serve` and `simulate graph` as processes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from click.testing import CliRunner, Result

from clicktochat.cli import cli, cli_whatsapp  # cli first: it registers cli_whatsapp's groups
from clicktochat.cli_whatsapp import CUSTOMER_NAMES, customer_name
from clicktochat.graph_standin import GraphStandIn
from clicktochat.payloads import referral
from clicktochat.service import timestamp
from conftest import IPHONE, NUMBER, VERIFY_TOKEN, Clock, WhatsAppSetup, free_port

SECRETS = (NUMBER.access_token, NUMBER.app_secret, VERIFY_TOKEN)
PNID, WABA = NUMBER.phone_number_id, NUMBER.waba_id


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("CLICKTOCHAT_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def clock() -> Clock:
    """Real now, not moved: the CLI reads time.time() while the app's side uses this clock."""
    return Clock(time.time())


@pytest.fixture
def db(db_path: str) -> str:
    return db_path


@pytest.fixture
def wa(standin: GraphStandIn, db: str) -> Callable[..., Result]:
    """Run `clicktochat ARGS --db DB` with the Graph API on the stand-in; all output is checked
    for secrets."""
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        graph = {"CLICKTOCHAT_GRAPH_URL": standin.url}  # type: ignore[attr-defined]
        result = runner.invoke(cli, [*args, "--db", db], input=input, env=graph | (env or {}))
        assert "Traceback" not in result.output
        leaked = [s for s in SECRETS if s in result.stdout or s in result.stderr]
        assert not leaked, f"printed a secret: {result.output}"
        return result

    assert CliRunner().invoke(cli, ["business", "add", "Pasticceria Dolce Vita", "--db", db]).exit_code == 0
    return invoke


def ok(result: Result) -> Result:
    assert result.exit_code == 0 and result.exception is None, f"{result.output!r} {result.exception!r}"
    return result


def fails(result: Result, code: int, *fragments: str) -> Result:
    assert result.exit_code == code, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.stdout == ""
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr
    return result


IDS = ("--phone-number-id", PNID, "--waba-id", WABA)
FLAGS = ("--token", NUMBER.access_token, "--app-secret", NUMBER.app_secret, "--verify-token", VERIFY_TOKEN)
ENV = {"CLICKTOCHAT_WA_TOKEN": NUMBER.access_token, "CLICKTOCHAT_WA_APP_SECRET": NUMBER.app_secret,
       "CLICKTOCHAT_WA_VERIFY_TOKEN": VERIFY_TOKEN}  # fmt: skip
STDIN = f"{NUMBER.access_token}\n{NUMBER.app_secret}\n{VERIFY_TOKEN}\n"


# -- whatsapp connect, list, disconnect ------------------------------------------------------


@pytest.mark.parametrize("how", ["flags", "env", "stdin"])
def test_connect_prints_the_number_and_the_webhook_url_never_a_secret(wa: Callable[..., Result], how: str) -> None:
    args = {"flags": (*IDS, *FLAGS), "env": IDS, "stdin": (*IDS, "--secrets-stdin")}[how]
    result = ok(wa("whatsapp", "connect", *args, "--base-url", "https://chat.example.com",
                   env=ENV if how == "env" else None, input=STDIN if how == "stdin" else None))  # fmt: skip
    assert "display number:   +393470001111" in result.stdout
    assert "verified name:    Pasticceria Dolce Vita" in result.stdout
    assert "webhook URL:      https://chat.example.com/webhooks/whatsapp" in result.stdout
    # Connected to a stand-in, it does not send the user to a Meta app (a new user's confusion).
    assert "nothing to set up in a Meta app" in result.stderr and "subscribe to" not in result.stderr
    rows = json.loads(ok(wa("whatsapp", "list", "--json")).stdout)
    assert [(r["phone_number_id"], r["waba_id"], r["display_phone_number"]) for r in rows] == [
        (PNID, WABA, "393470001111")
    ]


def test_connect_json_and_list_hold_no_secret(wa: Callable[..., Result]) -> None:
    row = json.loads(ok(wa("whatsapp", "connect", *IDS, "--json", env=ENV)).stdout)
    assert row["id"] == 1 and row["business_id"] == 1 and row["webhook_url"].endswith("/webhooks/whatsapp")
    assert not {"access_token", "app_secret", "verify_token"} & set(row)
    table = ok(wa("whatsapp", "list")).stdout
    assert "393470001111" in table and PNID in table


def test_a_flag_wins_over_the_environment(wa: Callable[..., Result]) -> None:
    fails(wa("whatsapp", "connect", *IDS, "--token", "EAAG" + "y" * 40, env=ENV), 1, "--token: Meta refused it")


def test_missing_secrets_say_where_to_give_them(wa: Callable[..., Result]) -> None:
    env = {k: v for k, v in ENV.items() if k != "CLICKTOCHAT_WA_APP_SECRET"}
    fails(wa("whatsapp", "connect", *IDS, env=env), 2,
          "missing the app secret: give --app-secret, set CLICKTOCHAT_WA_APP_SECRET, or pipe the three secrets "
          "with --secrets-stdin")  # fmt: skip
    fails(wa("whatsapp", "connect", *IDS, "--secrets-stdin", input=f"{NUMBER.access_token}\n"), 2,
          "standard input has no app secret on line 2")  # fmt: skip
    fails(wa("whatsapp", "connect", *IDS, "--secrets-stdin", "--token", NUMBER.access_token, input=STDIN), 2,
          "--secrets-stdin or with --token, not both")  # fmt: skip
    assert ok(wa("whatsapp", "list")).stdout.strip() == "(none)"


def test_missing_secrets_are_asked_for_without_echo_at_a_terminal(
    wa: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_whatsapp, "interactive", lambda: True)
    result = ok(wa("whatsapp", "connect", *IDS, "--token", NUMBER.access_token,
                   input=f"{NUMBER.app_secret}\n{VERIFY_TOKEN}\n"))  # fmt: skip
    assert "App secret: \nVerify token: \n" in result.output  # hidden input: the prompt, never the value


def test_bad_values_are_field_errors_with_exit_1(wa: Callable[..., Result]) -> None:
    fails(wa("whatsapp", "connect", "--phone-number-id", "12ab", "--waba-id", "1", "--token", "short",
             "--app-secret", "x" * 16, "--verify-token", "has a space"), 1,
          "--phone-number-id: must be Meta's numeric id", "--waba-id: must be Meta's numeric id",
          "--token: must be 20 to 1000 characters",
          "--verify-token: must be printable ASCII without spaces")  # fmt: skip
    fails(wa("whatsapp", "connect", "--phone-number-id", "999999999", "--waba-id", WABA, *FLAGS), 1,
          "--phone-number-id: Meta refused it")  # fmt: skip
    fails(wa("whatsapp", "connect", *IDS, "--business", "7", *FLAGS), 1, "There is no business 7.")
    ok(wa("business", "add", "Another shop"))
    fails(wa("whatsapp", "connect", *IDS, *FLAGS), 1, "--business: give the business this number answers for: "
          "1 (Pasticceria Dolce Vita), 2 (Another shop) (clicktochat business list)")  # fmt: skip


def test_with_no_business_yet_connect_says_to_add_one(standin: GraphStandIn, tmp_path: Path) -> None:
    """Found by a new user: "there are 0; see clicktochat business list" said nothing to do."""
    result = CliRunner().invoke(cli, ["whatsapp", "connect", *IDS, *FLAGS, "--db", str(tmp_path / "new.db")],
                                env={"CLICKTOCHAT_GRAPH_URL": standin.url})  # type: ignore[attr-defined]  # fmt: skip
    fails(result, 1, "--business: there is no business yet: add the one this number answers for first "
                     "(clicktochat business add NAME)")  # fmt: skip


def test_an_unreachable_graph_api_is_a_message(wa: Callable[..., Result]) -> None:
    unreachable = {"CLICKTOCHAT_GRAPH_URL": f"http://127.0.0.1:{free_port()}/v26.0"}
    fails(wa("whatsapp", "connect", *IDS, *FLAGS, env=unreachable), 1, "Could not reach the Graph API")


def test_disconnect(wa: Callable[..., Result]) -> None:
    ok(wa("whatsapp", "connect", *IDS, env=ENV))
    fails(wa("whatsapp", "disconnect", "1"), 1, "Nothing was disconnected. Answer y at the prompt, or pass --yes")
    assert ok(wa("whatsapp", "list")).stdout.count("\n") == 2  # no terminal to ask on: still connected
    assert ok(wa("whatsapp", "disconnect", "1", "--yes")).stdout == "Disconnected number 1; its conversations stay.\n"
    assert ok(wa("whatsapp", "list")).stdout.strip() == "(none)"
    fails(wa("whatsapp", "disconnect", "1", "--yes"), 1, "There is no connected number 1.")


# -- conversations, on data made by signed webhooks ---------------------------------------------


@pytest.fixture
def chat(whatsapp: WhatsAppSetup) -> Callable[..., Result]:
    """The app's database, with Giulia's message applied; the CLI on the same file."""
    assert whatsapp.run(whatsapp.customer().send_text("Ciao! Avete i cannoli?")).status_code == 200
    assert whatsapp.process() == 1
    runner, db = CliRunner(), whatsapp.service.settings.db

    def invoke(*args: str) -> Result:
        result = runner.invoke(cli, [*args, "--db", db], env={"CLICKTOCHAT_GRAPH_URL": whatsapp.standin.url})  # type: ignore[attr-defined]
        assert not [s for s in SECRETS if s in result.output]
        return result

    return invoke


def test_conversations_show_says_the_latest_ad_the_customer_came_from(chat: Callable[..., Result],
                                                                     whatsapp: WhatsAppSetup) -> None:  # fmt: skip
    """The chat began without an ad; an ad tapped while the window was open is named as the latest."""
    assert "latest from" not in ok(chat("conversations", "show", "1")).stdout
    whatsapp.clock.move(600)
    ad = referral(source_url="https://fb.me/x", source_id="1202", headline="Cannoli -20%", body="", ctwa_clid="ARAk")
    assert whatsapp.run(whatsapp.customer().send_text("E i cannoli?", referral=ad)).status_code == 200
    whatsapp.process()
    shown = ok(chat("conversations", "show", "1")).stdout
    at = timestamp(int(whatsapp.clock()))
    assert "came from:" in shown and f"latest from: ad: Cannoli -20% (a message of {at})" in shown


def test_whatsapp_list_says_which_number_to_connect_again(chat: Callable[..., Result], whatsapp: WhatsAppSetup
                                                         ) -> None:  # fmt: skip
    """Meta refused a number's token (190): `whatsapp list` says so, and what to do, never the token."""
    assert ok(chat("whatsapp", "list")).stdout.splitlines()[1].endswith("ok")
    assert whatsapp.run(whatsapp.service.whatsapp.reply(1, "Sì, li abbiamo!")) and whatsapp.send() == 1
    whatsapp.standin.expire_token(PNID, "EAAG" + "n" * 40)
    assert whatsapp.run(whatsapp.service.whatsapp.reply(1, "Alla ricotta?")) and whatsapp.send() == 1
    listed = ok(chat("whatsapp", "list"))
    assert listed.stdout.splitlines()[1].endswith("connect again: token refused")
    assert f"Number {whatsapp.number_id} must be connected again" in listed.stderr and "n" * 40 not in listed.output
    (row,) = json.loads(ok(chat("whatsapp", "list", "--json")).stdout)
    assert row["needs_reconnect"] and "connect the number again" in row["token_error"]


def test_conversations_list_and_show(chat: Callable[..., Result], whatsapp: WhatsAppSetup) -> None:
    table = ok(chat("conversations", "list")).stdout.splitlines()
    assert table[0].split() == ["ID", "BUSINESS_ID", "CUSTOMER", "WINDOW", "MAY_SEND", "OPTED_OUT", "CAME_FROM", "LAST"]
    assert table[1].split()[:2] == ["1", str(whatsapp.business_id)]  # which client each is (an agency review)
    assert "Giulia +393471234567" in table[1] and "open until" in table[1] and " text " in table[1]
    assert table[1].rstrip().endswith("Ciao! Avete i cannoli?")
    rows = json.loads(ok(chat("conversations", "list", "--open", "--business", str(whatsapp.business_id),
                              "--json")).stdout)  # fmt: skip
    assert [(r["id"], r["wa_id"], r["window"]["may_send"], r["opted_out"]) for r in rows] == [
        (1, "393471234567", "text", False)
    ]
    fails(chat("conversations", "list", "--business", "99"), 1, "--business: there is no business 99")  # not "(none)"
    shown = ok(chat("conversations", "show", "1")).stdout
    assert "customer:    Giulia +393471234567" in shown and f"business id: {whatsapp.business_id}\n" in shown
    detail = json.loads(ok(chat("conversations", "show", "1", "--json")).stdout)
    assert [(m["direction"], m["text"]) for m in detail["messages"]] == [("in", "Ciao! Avete i cannoli?")]
    fails(chat("conversations", "show", "5"), 1, "There is no conversation 5.")


def test_conversations_list_shortens_a_long_last_message(chat: Callable[..., Result], whatsapp: WhatsAppSetup) -> None:
    """Found by a review: a 4,096-character message made one line of the table 4,096 characters wide."""
    long = "Vorrei ordinare " + "una torta Sacher, " * 220
    assert whatsapp.run(whatsapp.customer().send_text(long[:4096])).status_code == 200
    marco = whatsapp.customer(wa_id="393470000002", user_id="IT.2", name="Marco")
    assert whatsapp.run(marco.send_text("Ciao\nsono io")).status_code == 200
    whatsapp.process()
    lines = ok(chat("conversations", "list")).stdout.splitlines()
    assert len(lines) == 3 and all(len(line) < 200 for line in lines)
    assert any(line.rstrip().endswith("Vorrei ordinare una torta Sacher, una torta Sacher, una tor…") for line in lines)
    assert any(line.rstrip().endswith("Ciao…") for line in lines)  # its first line, and a sign of more
    shown = ok(chat("conversations", "show", "1")).stdout
    assert long[:4096].rstrip() in shown  # `show` gives it whole


def test_reply_is_queued_then_sent_by_the_server_with_its_statuses(
    chat: Callable[..., Result], whatsapp: WhatsAppSetup
) -> None:
    result = ok(chat("conversations", "reply", "1", "Sì, fino alle 19!", "--idempotency-key", "k1"))
    assert result.stdout == "Queued reply 1 (queued); a running server sends it (conversations show: its REPLY).\n"
    again = ok(chat("conversations", "reply", "1", "Sì, fino alle 19!", "--idempotency-key", "k1"))
    assert again.stdout == "Already queued with this idempotency key: reply 1 (queued).\n"
    fails(chat("conversations", "reply", "1", "Altro testo", "--idempotency-key", "k1"), 1,
          "--idempotency-key: was used for a request with other content; send it again as it was")  # fmt: skip
    assert "queued" in ok(chat("conversations", "show", "1")).stdout
    whatsapp.clock.now = max(whatsapp.clock.now, time.time())  # the CLI queued it at the real now
    assert whatsapp.send() == 1  # what the server's sender does
    (sent,) = whatsapp.standin.sent
    assert whatsapp.status(sent.wamid, "delivered").status_code == 200 and whatsapp.process() == 1
    detail = json.loads(ok(chat("conversations", "show", "1", "--json")).stdout)
    assert [(m["direction"], m["status"]) for m in detail["messages"]] == [("in", None), ("out", "delivered")]
    assert "business  1      cli  delivered" in ok(chat("conversations", "show", "1")).stdout  # who wrote it, too


def test_replies_are_refused_after_stop_and_when_the_window_closed(
    chat: Callable[..., Result], whatsapp: WhatsAppSetup
) -> None:
    fails(chat("conversations", "reply", "1", " "), 2, "Invalid value for TEXT: must not be empty")  # an argument
    fails(chat("conversations", "reply", "9", "Ciao"), 1, "There is no conversation 9.")
    assert whatsapp.run(whatsapp.customer().send_text("STOP")).status_code == 200 and whatsapp.process() == 1
    assert "yes" in ok(chat("conversations", "list")).stdout.splitlines()[1]
    fails(chat("conversations", "reply", "1", "Ciao"), 1, "opted out")
    old = whatsapp.customer(wa_id="393480000000", user_id=None, name="Marco")
    old.clock = Clock(time.time() - 25 * 3600)
    assert whatsapp.run(old.send_text("Buongiorno")).status_code == 200 and whatsapp.process() == 1
    fails(chat("conversations", "reply", "2", "Ciao"), 1, "The 24-hour window is closed")
    assert "closed" in ok(chat("conversations", "show", "2")).stdout


def test_simulate_message_needs_a_connected_number(wa: Callable[..., Result]) -> None:
    fails(wa("simulate", "message", "--from", "+393471234567"), 1, "No WhatsApp number is connected: connect one")
    fails(wa("simulate", "message", "--from", "12"), 2, "with its country code")


# -- e2e: the README's walkthrough -------------------------------------------------------------


def cli_run(db: str, graph_url: str, *args: str, input: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLICKTOCHAT_")} | {
        "CLICKTOCHAT_GRAPH_URL": graph_url, "CLICKTOCHAT_DB": db}  # fmt: skip
    return subprocess.run([sys.executable, "-m", "clicktochat", *args], input=input, capture_output=True, text=True,
                          timeout=60, env=env)  # fmt: skip


@contextmanager
def process(args: list[str], env: dict[str, str], ready_url: str) -> Iterator[subprocess.Popen[str]]:
    started = subprocess.Popen([sys.executable, "-m", "clicktochat", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env=env)  # fmt: skip
    try:
        deadline = time.monotonic() + 30  # start-up of a real process: bounded
        while True:
            try:
                httpx.get(ready_url, timeout=1)
                break
            except httpx.HTTPError:
                assert started.poll() is None, started.stdout.read() if started.stdout else ""
                assert time.monotonic() < deadline, f"{args[0]} did not start"
                time.sleep(0.1)
        yield started
    finally:
        started.terminate()
        started.printed = started.communicate(timeout=15)[0]  # type: ignore[attr-defined]  # for the test to read


def until(what: str, check: Callable[[], Any], seconds: float = 20) -> Any:
    """Poll `check` until it returns something truthy; fail with `what` after the deadline."""
    deadline = time.monotonic() + seconds
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return found


@pytest.mark.e2e
def test_the_stand_in_answers_sends_with_the_errors_asked_for(tmp_path: Path) -> None:
    """`simulate graph --fail CODE`, once per option and in order, so that a newcomer can watch retries and
    Meta's refusals without writing Python (a review's report); then sends are taken again."""
    port = free_port()
    graph_url = f"http://127.0.0.1:{port}/v26.0"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLICKTOCHAT_")}
    args = ["simulate", "graph", "--port", str(port), "--db", str(tmp_path / "none.db"), "--fail", "131026",
            "--fail", "130429"]  # fmt: skip
    demo = cli_whatsapp.DEMO
    with process(args, env, graph_url) as standin, httpx.Client(
            base_url=graph_url, headers={"Authorization": f"Bearer {demo.access_token}"}) as graph:  # fmt: skip
        note = {"phone_number_id": demo.phone_number_id, "wa_id": "393471234567", "at": time.time()}
        assert graph.post(cli_whatsapp.NOTE_PATH, json=note).status_code == 200  # the customer wrote
        body = {"messaging_product": "whatsapp", "to": "393471234567", "type": "text", "text": {"body": "Ciao"}}
        answers = [graph.post(f"/{demo.phone_number_id}/messages", json=body) for _ in range(3)]
    assert [(a.status_code, a.json().get("error", {}).get("code")) for a in answers] == [
        (400, 131026), (429, 130429), (200, None)]  # fmt: skip
    assert answers[2].json()["messages"][0]["id"].startswith("wamid.")
    printed = standin.printed  # type: ignore[attr-defined]
    assert "Refused a send to +393471234567: error 131026, as asked (--fail; HTTP 400)" in printed, printed
    assert "Refused a send to +393471234567: error 130429, as asked (--fail; HTTP 429)" in printed
    assert "Sent to +393471234567: text 'Ciao'" in printed


@pytest.mark.e2e
def test_the_simulator_walkthrough(db_path: str) -> None:
    db, port, graph_port = db_path, free_port(), free_port()
    base, graph_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{graph_port}/v26.0"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLICKTOCHAT_")} | {
        "CLICKTOCHAT_GRAPH_URL": graph_url, "CLICKTOCHAT_FLUSH_INTERVAL": "0.1"}  # fmt: skip
    serve = ["serve", "--demo", "--db", db, "--port", str(port)]
    graph = ["simulate", "graph", "--port", str(graph_port), "--db", db]
    # The stand-in first (found by a new user: it read the server's address once, before the server had
    # recorded it, and its statuses went to the default port for good), the server second.
    with process(graph, env, graph_url) as standin, process(serve, env, f"{base}/healthz"):
        piped = "\n".join([cli_whatsapp.DEMO.access_token, cli_whatsapp.DEMO.app_secret,
                           cli_whatsapp.DEMO_VERIFY_TOKEN])  # fmt: skip
        connect = cli_run(db, graph_url, "whatsapp", "connect", "--phone-number-id", cli_whatsapp.DEMO.phone_number_id,
                          "--waba-id", cli_whatsapp.DEMO.waba_id, "--secrets-stdin", input=piped)  # fmt: skip
        assert connect.returncode == 0, connect.stderr
        assert f"webhook URL:      {base}/webhooks/whatsapp" in connect.stdout
        # At once, as in the README (the simulator tries again while the server does not know the number yet).
        wrote = cli_run(db, graph_url, "simulate", "message", "--from", "+393471234567", "--text", "Ciao")
        assert wrote.returncode == 0 and "wrote to +16505550100: Ciao" in wrote.stdout, wrote.stderr
        handshake = {"hub.mode": "subscribe", "hub.verify_token": cli_whatsapp.DEMO_VERIFY_TOKEN, "hub.challenge": "42"}
        assert httpx.get(f"{base}/webhooks/whatsapp", params=handshake).text == "42"  # Meta's handshake
        assert "Note:" not in wrote.stderr  # the stand-in heard of it: the customer's window is open there too
        key = cli_run(db, graph_url, "apikey", "create", "e2e").stdout.strip()
        with httpx.Client(base_url=f"{base}/api/v1", headers={"Authorization": f"Bearer {key}"}) as api:
            (chat,) = until("the conversation", lambda: api.get("/conversations").json()["conversations"])
            assert (chat["wa_id"], chat["last_message"], chat["window"]["may_send"]) == ("393471234567", "Ciao", "text")
            listed = cli_run(db, graph_url, "conversations", "list")
            assert "Giulia Rossi +393471234567" in listed.stdout and "open until" in listed.stdout

            replied = cli_run(db, graph_url, "conversations", "reply", str(chat["id"]), "Ciao Giulia!")
            assert replied.returncode == 0 and "a running server sends it" in replied.stdout

            def delivered() -> bool:
                messages = api.get(f"/conversations/{chat['id']}").json()["messages"]
                return [(m["direction"], m["status"]) for m in messages] == [("in", None), ("out", "delivered")]

            until("the reply to reach the stand-in and its statuses to come back", delivered)
            shown = cli_run(db, graph_url, "conversations", "show", str(chat["id"])).stdout
            assert "business  1      cli  delivered  " in shown

            ad = cli_run(db, graph_url, "simulate", "message", "--from", "+393480000001", "--referral-headline",
                         "Cannoli -20%", "--ctwa-clid", "ARAkLkA8rmlFeiCk", "--name", "Luigi")  # fmt: skip
            assert ad.returncode == 0, ad.stderr
            until("Luigi's chat", lambda: len(api.get("/conversations").json()["conversations"]) == 2)
            stop = cli_run(db, graph_url, "simulate", "stop", "--from", "+393480000001")  # no --name: still Luigi
            assert stop.returncode == 0 and stop.stdout.startswith("Luigi (+393480000001)"), stop.stdout
            stop = cli_run(db, graph_url, "simulate", "stop", "--from", "+393471234567")
            assert stop.returncode == 0, stop.stderr

            def both_applied() -> list[Any]:
                found = api.get("/conversations").json()["conversations"]
                return found if len(found) == 2 and all(c["last_message"] != "Ciao Giulia!" for c in found) else []

            by_wa = {c["wa_id"]: c for c in until("the ad's chat and the STOP", both_applied)}
            assert by_wa["393480000001"]["came_from"]["referral"]["ctwa_clid"] == "ARAkLkA8rmlFeiCk"
            assert by_wa["393471234567"]["opted_out"] is True
            assert "ad: Cannoli -20%" in cli_run(db, graph_url, "conversations", "list").stdout
            refused = cli_run(db, graph_url, "conversations", "reply", str(chat["id"]), "Ancora?")
            assert refused.returncode == 1 and "opted out" in refused.stderr
            # A message written a day ago and more (delivered late): the window it opened has closed,
            # which a newcomer can now see without waiting a day (a new user's report).
            late = cli_run(db, graph_url, "simulate", "message", "--from", "+393470000025", "--text", "Ieri",
                           "--hours-ago", "25")  # fmt: skip
            assert late.returncode == 0 and "(25 h ago: the 24-hour window is closed)" in late.stdout, late.stderr
            (old,) = until("yesterday's chat", lambda: [c for c in api.get("/conversations").json()["conversations"]
                                                        if c["wa_id"] == "393470000025"])  # fmt: skip
            assert old["window"]["may_send"] == "templates"
            closed = cli_run(db, graph_url, "conversations", "reply", str(old["id"]), "Ci sei?")
            assert closed.returncode == 1 and "window is closed" in closed.stderr, closed.stderr
            # A photo with a caption (there was no way to send one but from Python: a review's report).
            photo = cli_run(db, graph_url, "simulate", "message", "--from", "+393470000025", "--media", "image",
                            "--text", "La torta è arrivata così")  # fmt: skip
            assert photo.returncode == 0 and ": [image] La torta è arrivata così" in photo.stdout, photo.stderr

            def the_photo() -> list[Any]:
                shown = api.get(f"/conversations/{old['id']}").json()["messages"]
                return [(m["type"], m["caption"]) for m in shown if m["type"] == "image"]

            assert until("the photo", the_photo) == [("image", "La torta è arrivata così")]

            # A click on a link to the demo number, then the chat it opens: tied together by the
            # ref code (the demo number used to be one no link could be made to: a new user's report).
            made = cli_run(db, graph_url, "link", "create", "--to", "+1 650 555 0100", "--slug", "numero-demo",
                           "--text", "Ciao!", "--base-url", base)  # fmt: skip
            assert made.returncode == 0, made.stderr
            opened = httpx.get(f"{base}/s/numero-demo", headers={"user-agent": IPHONE})
            assert opened.status_code == 302 and opened.headers["location"].startswith("https://wa.me/16505550100")
            text = parse_qs(urlsplit(opened.headers["location"]).query)["text"][0]
            assert re.fullmatch(r"Ciao! \(ref [0-9A-Z]+\)", text), text
            clicked = cli_run(db, graph_url, "simulate", "message", "--from", "+393490000009", "--text", text)
            assert clicked.returncode == 0, clicked.stderr

            def from_the_link() -> Any:
                found = {c["wa_id"]: c for c in api.get("/conversations").json()["conversations"]}
                came = (found.get("393490000009") or {}).get("came_from") or {}
                return came if came.get("link_key") else None

            came = until("the chat tied to its click", from_the_link)
            assert (came["link_kind"], came["link_key"]) == ("short", "numero-demo")
        assert standin.poll() is None
    # The stand-in says what reached it (a new user saw nothing and could not tell a send arrived).
    assert re.search(r"^Sent to \+393471234567: text 'Ciao Giulia!' \(wamid\.[^)]+\)$", standin.printed, re.M), \
        standin.printed  # type: ignore[attr-defined]
    assert "(the server's address as its database records it, read at each status)" in standin.printed  # type: ignore[attr-defined]



def test_simulated_customers_have_names_of_their_own() -> None:
    """Found by a new user: every customer of the README's walkthrough was 'Giulia Rossi'."""
    walkthrough = [customer_name(wa_id) for wa_id in ("393471234567", "393480000001", "393490000009")]
    assert walkthrough[0] == "Giulia Rossi" and len(set(walkthrough)) == 3
    assert customer_name("393471234567") == walkthrough[0]  # the same number, the same name
    assert customer_name("IT.12345") in CUSTOMER_NAMES  # a user id alone
