"""The HTTP server `clicktochat serve` runs: uvicorn with httptools, whose protocol puts no limit
on a request's head. httptools gathers an unfinished header line in memory until it ends, so ten
connections each sending a 20 MB header took the process from 151 to 387 MB, and a 50 MB header
was answered 200. `LimitedHttpToolsProtocol` counts the bytes of each request head (request line
and headers) as they arrive, and its headers, and answers 431 and closes past either cap."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from .settings import Settings

MAX_HEAD_BYTES = 64 * 1024
"""The request line and all headers of one request (nginx's default allows 4 lines of 8 KiB)."""
MAX_HEADERS = 100


class HeadTooLarge(Exception):
    """Raised in a parser callback to stop parsing; answered 431."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._in_head, self._head_bytes, self._too_large = True, 0, False
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        # While a head is being read, feed at most what is left of its allowance: the bytes past
        # it are the body (fed as usual once the head is complete) or more head (refused).
        while data and self._in_head and not self.transport.is_closing():
            room = MAX_HEAD_BYTES - self._head_bytes
            if room <= 0:
                self._too_large = True
                return self.send_400_response("Request headers too large.")
            part, data = data[:room], data[room:]
            self._head_bytes += len(part)
            super().data_received(part)
        if data and not self.transport.is_closing():
            super().data_received(data)

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(self.headers) >= MAX_HEADERS:
            self._too_large = True
            raise HeadTooLarge  # httptools raises HttpParserCallbackError: uvicorn answers send_400_response
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head, self._head_bytes = True, 0  # the next request on this connection

    def send_400_response(self, msg: str) -> None:
        if not self._too_large:
            return super().send_400_response(msg)
        body = b"Request headers too large.\n"
        self.transport.write(
            STATUS_LINE[431] + b"content-type: text/plain; charset=utf-8\r\n"
            + b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body) + body
        )  # fmt: skip
        self.transport.close()


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

