"""The HTTP server `clicktochat serve` runs: uvicorn with httptools, whose protocol puts no limit
on a request's head, in size or in time. httptools gathers an unfinished header line in memory
until it ends, so ten connections each sending a 20 MB header took the process from 151 to
387 MB, and a 50 MB header was answered 200; and a connection that opened, or began a head, and
then sent nothing more was kept for ever (3,000 of them held for minutes, until the process ran
out of file descriptors). `LimitedHttpToolsProtocol` counts the bytes of each request head
(request line and headers) as they arrive, and its headers, and answers 431 and closes past
either cap; and gives each head `HEAD_TIMEOUT` seconds to arrive, from the connection's opening
or the head's first byte, then answers 408 and closes, as nginx's `client_header_timeout` does."""

from __future__ import annotations

import asyncio
import copy
import errno
import socket
from typing import Any

import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from .settings import Settings

MAX_HEAD_BYTES = 64 * 1024
"""The request line and all headers of one request (nginx's default allows 4 lines of 8 KiB)."""
MAX_HEADERS = 100
HEAD_TIMEOUT = 20.0
"""Seconds a request's head may take to arrive, from the connection's opening or from its first
byte (nginx allows 60; a phone on a slow network sends a head in well under a second)."""


class HeadTooLarge(Exception):
    """Raised in a parser callback to stop parsing; answered 431."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._in_head, self._head_bytes, self._too_large = True, 0, False
        super().connection_made(transport)
        self._head_timer: asyncio.TimerHandle | None = self.loop.call_later(HEAD_TIMEOUT, self._head_too_slow)

    def data_received(self, data: bytes) -> None:
        if self._in_head and self._head_timer is None:  # a next request's head begins
            self._head_timer = self.loop.call_later(HEAD_TIMEOUT, self._head_too_slow)
        if len(data) <= MAX_HEAD_BYTES - self._head_bytes:  # nearly every read: fed whole, as uvicorn does
            if self._in_head:  # (bytes of a next request's head in the same read go uncounted:
                self._head_bytes += len(data)  # a head can reach twice the cap, never more)
            return super().data_received(data)
        # Otherwise a slice at a time: of a head, at most what is left of its allowance (past it,
        # 431); of a body, at most the cap, so a head behind it in the same read is counted.
        while data and not self.transport.is_closing():
            if self._in_head:
                room = MAX_HEAD_BYTES - self._head_bytes
                if room <= 0:
                    self._too_large = True
                    return self.send_400_response("Request headers too large.")
                part, data = data[:room], data[room:]
                self._head_bytes += len(part)
            else:
                part, data = data[:MAX_HEAD_BYTES], data[MAX_HEAD_BYTES:]
            super().data_received(part)

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(self.headers) >= MAX_HEADERS:
            self._too_large = True
            raise HeadTooLarge  # httptools raises HttpParserCallbackError: uvicorn answers send_400_response
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

    def _head_too_slow(self) -> None:
        """HEAD_TIMEOUT passed and the head has not all come: 408 (unless a response to the
        request before is still being sent: that is cut short), and the connection closed."""
        self._head_timer = None
        if not self._in_head or self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:
            self._refuse(408, b"The request's headers took too long to arrive.\n")
        self.transport.close()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head, self._head_bytes = True, 0  # the next request on this connection

    def send_400_response(self, msg: str) -> None:
        if not self._too_large:
            return super().send_400_response(msg)
        self._refuse(431, b"Request headers too large.\n")
        self.transport.close()

    def _refuse(self, status: int, body: bytes) -> None:
        """A plain-text answer written straight to the connection, which is then closed."""
        self.transport.write(
            STATUS_LINE[status] + b"content-type: text/plain; charset=utf-8\r\n"
            + b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body) + body
        )  # fmt: skip


SWITCH_INTERVAL = 0.001
"""Seconds a thread keeps the GIL when another wants it (Python's default: 0.005). The click
writer's thread runs Python for a few hundred milliseconds a second under an ad spike; at the
default, every request the event loop answers meanwhile waits up to 5 ms for the GIL at each
hand-over (docs/performance.md: the p99 with new visitors)."""


def config(app: ASGIApp, settings: Settings, log_level: str = "info") -> uvicorn.Config:
    """The server of `clicktochat serve`, on `settings.host` and `settings.port`."""
    log_config: dict[str, Any] = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    log_config["loggers"]["clicktochat"] = {"handlers": ["default"], "level": log_level.upper(), "propagate": False}
    return uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level=log_level, log_config=log_config,
        access_log=False,  # access logs would hold visitors' IP addresses
        proxy_headers=False,  # X-Forwarded-For is read for clicks only, from CLICKTOCHAT_TRUSTED_PROXIES
        http=LimitedHttpToolsProtocol, h11_max_incomplete_event_size=MAX_HEAD_BYTES,  # h11's own cap, if used
        lifespan="on", server_header=False, timeout_graceful_shutdown=10,
    )  # fmt: skip



def cannot_listen(host: str, port: int) -> str | None:
    """Why `serve` could not listen on host:port, in words (uvicorn would log "[Errno 98] error
    while attempting to bind..." and exit), or None. Each address the host names is bound and let
    go at once, with the options asyncio's server uses, so a port free here is free for uvicorn
    (bar a race with another program starting in the same instant: uvicorn's own error then)."""
    try:
        found = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"cannot listen on {host!r}: {exc.strerror} (give --host an address of this machine, e.g. 127.0.0.1)"
    for family, kind, proto, _name, address in found:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                where = f"port {port} on {address[0]}"
                if exc.errno == errno.EADDRINUSE:
                    return (f"{where} is taken: another program (another clicktochat serve?) listens on it. Stop "
                            f"it, or choose another port: clicktochat serve --port {port + 1}")  # fmt: skip
                if exc.errno == errno.EACCES:
                    return (f"no permission to listen on {where} (ports below 1024 need root): use a port above "
                            "1023 behind a reverse proxy, e.g. --port 8000")  # fmt: skip
                return f"cannot listen on {where}: {exc.strerror}"
    return None
