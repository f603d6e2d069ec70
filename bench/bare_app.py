"""The baseline of bench/redirect.py: a bare Starlette app with one route, `/x`, that answers
what a click on our link answers (302, the same Location, the same headers), served the way
`clicktochat serve` serves ours (one uvicorn worker, httptools, no access log).

    python bench/bare_app.py --port 8001 --location 'https://wa.me/393471234567?text=hi'
"""

from __future__ import annotations

import argparse

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from clicktochat.views import CLICK_HEADERS  # same response bytes as ours: only the work differs


def create_app(location: str) -> Starlette:
    async def redirect(request: Request) -> Response:
        return RedirectResponse(location, status_code=302, headers=CLICK_HEADERS)

    return Starlette(routes=[Route("/x", redirect, methods=["GET"])])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--location", required=True, help="The Location of the 302.")
    args = parser.parse_args()
    uvicorn.run(
        create_app(args.location),
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
