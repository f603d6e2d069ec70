"""The baseline of bench/webhooks.py: a bare Starlette app whose one route, POST
/webhooks/whatsapp, does what any webhook receiver must do and nothing more: read the whole
body and check its X-Hub-Signature-256 (HMAC-SHA256 with the app secret, constant-time
compare), then answer 200. With `--store`, the second baseline: the same, but the body is
also written to SQLite before the 200. Served the way `clicktochat serve` serves ours (one
uvicorn worker, httptools, no access log).

    python bench/bare_webhook.py --port 8001 --secret APP_SECRET [--store /tmp/bodies.db]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import sqlite3
from concurrent.futures import ThreadPoolExecutor

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def create_app(secret: str, store: str | None = None) -> Starlette:
    """`store`: also write each signed body to this SQLite file before the 200 (WAL,
    synchronous=NORMAL: what survives kill -9, as ours), one INSERT and commit per body on one
    thread: the least any receiver that is durable before acknowledging must do."""
    key = secret.encode()
    executor = ThreadPoolExecutor(max_workers=1)
    db = None
    if store:
        db = sqlite3.connect(store, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("CREATE TABLE IF NOT EXISTS bodies (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")

    def write(body: bytes) -> None:
        assert db is not None
        db.execute("INSERT INTO bodies (body) VALUES (?)", (body,))

    async def receive(request: Request) -> Response:
        body = await request.body()
        expected = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("x-hub-signature-256", "")):
            return Response(status_code=403)
        if db is not None:
            await asyncio.get_running_loop().run_in_executor(executor, write, body)
        return Response(status_code=200)

    return Starlette(routes=[Route("/webhooks/whatsapp", receive, methods=["POST"])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True, help="The app secret the bodies are signed with.")
    parser.add_argument("--store", help="Also store each body in this SQLite file before answering.")
    args = parser.parse_args()
    uvicorn.run(
        create_app(args.secret, args.store),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        http="httptools",
        lifespan="on",
        server_header=False,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
