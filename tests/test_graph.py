"""The Graph API client against a raw HTTP server on 127.0.0.1 that answers exactly what each
test needs: Meta's error bodies, Retry-After, redirects, silence, nothing at all."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from clicktochat.graph import GraphClient, GraphError, error_from, retry_after

TOKEN = "EAAG" + "s3cr3t" * 8


@asynccontextmanager
async def server(answer: bytes | None, seen: list[bytes]) -> AsyncIterator[str]:
    """Reads one request (kept in `seen`), answers `answer` raw, or never answers when None."""
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        head = await reader.readuntil(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)  # fmt: skip
        seen.append(head + await reader.readexactly(length))
        if answer is not None:
            writer.write(answer)
            await writer.drain()
            writer.close()

    listening = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v26.0"
    finally:
        for writer in writers:
            writer.close()
        listening.close()
        await listening.wait_closed()


def response(status: str, body: bytes, *headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", "Connection: close", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def refusal(url: str, timeout: float = 15.0) -> GraphError:
    """The GraphError a send to `url` ends in (the test fails if it succeeds)."""
    graph = GraphClient(url, timeout=timeout)
    try:
        await graph.send("1", TOKEN, {})
    except GraphError as error:
        return error
    finally:
        await graph.close()
    raise AssertionError("no error")


async def refusal_from(answer: bytes | None, seen: list[bytes], timeout: float = 15.0) -> GraphError:
    async with server(answer, seen) as url:
        return await refusal(url, timeout)


def test_a_send_posts_json_with_the_token_in_the_header_only() -> None:
    seen: list[bytes] = []
    ok = response("200 OK", b'{"messaging_product":"whatsapp","messages":[{"id":"wamid.X1"}]}',
                  "Content-Type: application/json")  # fmt: skip

    async def go() -> str:
        async with server(ok, seen) as url:
            graph = GraphClient(url)
            try:
                return await graph.send("106540352242922", TOKEN, {"to": "393471234567", "text": {"body": "Ciao 🍰"}})
            finally:
                await graph.close()

    assert asyncio.run(go()) == "wamid.X1"
    head, body = seen[0].split(b"\r\n\r\n", 1)
    assert head.startswith(b"POST /v26.0/106540352242922/messages HTTP/1.1")
    assert f"authorization: Bearer {TOKEN}".lower().encode() in head.lower()
    assert b"content-type: application/json" in head.lower()
    assert TOKEN.encode() not in head.split(b"\r\n")[0]  # never in the URL
    assert json.loads(body) == {"to": "393471234567", "text": {"body": "Ciao 🍰"}}


@pytest.mark.parametrize(
    ("answer", "status", "code", "retryable", "wait"),
    [
        (response("429 Too Many Requests", b'{"error":{"message":"(#130429) Rate limit hit","code":130429}}',
                  "Retry-After: 7"), 429, 130429, True, 7.0),
        (response("400 Bad Request", b'{"error":{"message":"Re-engagement message","code":131047,'
                  b'"error_data":{"details":"More than 24 hours"}}}'), 400, 131047, False, None),
        (response("503 Service Unavailable", b"<html>busy</html>"), 503, 0, True, None),
        (response("500 Internal Server Error", b'{"error":"not an object"}'), 500, 0, True, None),
    ],
)  # fmt: skip
def test_meta_errors_become_graph_errors(answer: bytes, status: int, code: int, retryable: bool,
                                         wait: float | None) -> None:  # fmt: skip
    error = asyncio.run(refusal_from(answer, []))
    assert (error.status, error.code, error.retryable, error.retry_after) == (status, code, retryable, wait)
    assert TOKEN not in str(error) and TOKEN not in error.detail
    if code == 131047:
        assert error.detail == "More than 24 hours" and "window is closed" in error.message


def test_a_redirect_is_not_followed_and_the_token_goes_nowhere_else() -> None:
    seen: list[bytes] = []
    moved = response("302 Found", b"", "Location: http://127.0.0.1:9/steal")

    error = asyncio.run(refusal_from(moved, seen))
    assert len(seen) == 1 and error.status == 302 and "not JSON" in error.title


def test_no_answer_is_a_retryable_error_that_names_no_secret() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]

    refused = asyncio.run(refusal(f"http://127.0.0.1:{closed}/v26.0"))
    silent = asyncio.run(refusal_from(None, [], timeout=0.2))  # the server never answers: no clock to move here
    for error in (refused, silent):
        assert error.status == 0 and error.retryable
        assert error.title.startswith("No answer from the Graph API at http://") and TOKEN not in error.title
        assert "CLICKTOCHAT_GRAPH_URL" in error.title  # where to look (found by a new user who forgot it)
    assert f"at http://127.0.0.1:{closed}/v26.0 (" in refused.title
    hidden = GraphClient("http://user:secret@127.0.0.1:1/v26.0")  # a URL's password is never said
    assert hidden.shown_url == "http://127.0.0.1:1/v26.0"


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after("120") == 120.0
    assert retry_after("Wed, 02 Dec 2026 15:00:30 GMT", now=1796223600.0) == 30.0
    assert retry_after("soon") is None and retry_after(None) is None
    assert error_from(429, "Too Many Requests", {"retry-after": "3"}, b"").retry_after == 3.0
