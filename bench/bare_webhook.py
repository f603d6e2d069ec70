"""The baseline of bench/webhooks.py: a bare Starlette app whose one route, POST
/webhooks/whatsapp, does what any webhook receiver must do and nothing more: read the whole
body and check its X-Hub-Signature-256 (HMAC-SHA256 with the app secret, constant-time
compare), then answer 200. Served the way `clicktochat serve` serves ours (one uvicorn worker,
httptools, no access log).

    python bench/bare_webhook.py --port 8001 --secret APP_SECRET
"""

from __future__ import annotations

import argparse
import hashlib
import hmac

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def create_app(secret: str) -> Starlette:
    key = secret.encode()

    async def receive(request: Request) -> Response:
        body = await request.body()
        expected = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("x-hub-signature-256", "")):
            return Response(status_code=403)
        return Response(status_code=200)

    return Starlette(routes=[Route("/webhooks/whatsapp", receive, methods=["POST"])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True, help="The app secret the bodies are signed with.")
    args = parser.parse_args()
    uvicorn.run(
        create_app(args.secret),
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
