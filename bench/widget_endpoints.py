"""Throughput of the widget's own endpoints, fetched by every page view of every site that
embeds it: `/widget.js` (gzip accepted) and `/api/widget/demo` (with an Origin, as the
script's fetch sends), next to a bare Starlette endpoint that returns the same gzipped
widget.js bytes and headers. Targets (issue 11): widget.js >= 0.9 of the bare endpoint, the
configuration >= 0.6. A benchmark, not a test: it prints figures and the ratios.

    .venv/bin/python bench/widget_endpoints.py                       # 10 s a target, 3 rounds
    .venv/bin/python bench/widget_endpoints.py --pin --rounds 5      # server on CPU 0, wrk on CPU 1

Each server is its own process with one uvicorn worker (httptools, no access log) on a free
127.0.0.1 port; the load is wrk -t1 -c32 (apt-get install -y wrk). The figure of each target
is the median of its rounds. Only 127.0.0.1 is contacted; every process started is stopped.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parent))
from redirect import HOST, cpu_model, free_port, parse_wrk, pin_to, server  # noqa: E402

from clicktochat.app import asset_dir  # noqa: E402
from clicktochat.widget import Script  # noqa: E402
from clicktochat.widget_http import WIDGET_HEADERS  # noqa: E402

TARGETS = {"widget.js": 0.9, "config": 0.6}


def bare_app() -> Starlette:
    """One async endpoint returning widget.js's gzipped bytes with the same headers."""
    script = Script.build(asset_dir("widget"))
    headers = WIDGET_HEADERS | {"ETag": f'"{script.version}"', "Vary": "Accept-Encoding", "Content-Encoding": "gzip",
                                "Cache-Control": "public, max-age=3600, stale-while-revalidate=86400"}  # fmt: skip

    async def bare(request: Request) -> Response:
        return Response(script.gzipped, media_type="text/javascript; charset=utf-8", headers=headers)

    return Starlette(routes=[Route("/x", bare, methods=["GET"])])


def serve_bare(port: int) -> None:
    uvicorn.run(bare_app(), host=HOST, port=port, log_level="warning", access_log=False, http="httptools",
                server_header=False)  # fmt: skip


def check(port: int, path: str, origin: str) -> int:
    conn = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        conn.request("GET", path, headers={"Accept-Encoding": "gzip", "Origin": origin})
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status != 200:
        raise SystemExit(f"GET {path}: {response.status} {body[:200]!r}")
    return len(body)


def wrk(port: int, path: str, origin: str, seconds: int, connections: int, cpu: int | None) -> float:
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s",
            "-H", "Accept-Encoding: gzip", "-H", f"Origin: {origin}", f"http://{HOST}:{port}{path}"]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, preexec_fn=pin_to(cpu), timeout=seconds + 60)
    if done.returncode != 0:
        raise SystemExit(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    load = parse_wrk(done.stdout)
    if load.errors:
        raise SystemExit(f"{load.errors} errors or non-2xx answers on {path}:\n{done.stdout}")
    return load.rps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per target per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--pin", action="store_true", help="server on CPU 0, wrk on CPU 1")
    parser.add_argument("--bare-port", type=int, help=argparse.SUPPRESS)  # the bare server's own process
    args = parser.parse_args()
    if args.bare_port:
        return serve_bare(args.bare_port)
    server_cpu, load_cpu = (0, 1) if args.pin else (None, None)
    with tempfile.TemporaryDirectory() as folder:
        db, log = str(Path(folder) / "bench.db"), Path(folder) / "server.log"
        ours_port, bare_port = free_port(), free_port()
        origin = f"http://{HOST}:{ours_port}"
        ours = [sys.executable, "-m", "clicktochat", "serve", "--db", db, "--demo", "--base-url", origin,
                "--host", HOST, "--port", str(ours_port), "--log-level", "warning"]  # fmt: skip
        bare = [sys.executable, __file__, "--bare-port", str(bare_port)]
        paths = {"bare": (bare_port, "/x"), "widget.js": (ours_port, "/widget.js"),
                 "config": (ours_port, "/api/widget/demo")}  # fmt: skip
        figures: dict[str, list[float]] = {name: [] for name in paths}
        for _ in range(args.rounds):
            for name, (port, path) in paths.items():
                with server(bare if name == "bare" else ours, port, log, server_cpu):
                    check(port, path, origin)
                    wrk(port, path, origin, 2, args.connections, load_cpu)  # warm-up
                    figures[name].append(wrk(port, path, origin, args.duration, args.connections, load_cpu))
    medians = {name: statistics.median(values) for name, values in figures.items()}
    print(f"{cpu_model()}, {len(__import__('os').sched_getaffinity(0))} CPUs, "
          f"{'pinned (server CPU 0, wrk CPU 1)' if args.pin else 'unpinned'}, wrk -t1 -c{args.connections}, "
          f"{args.duration} s x {args.rounds} rounds, median req/s")  # fmt: skip
    for name, rps in medians.items():
        target = TARGETS.get(name)
        ratio = rps / medians["bare"]
        verdict = "" if target is None else f"  {ratio:.2f} of bare (target >= {target}: " \
            f"{'met' if ratio >= target else 'NOT met'})"  # fmt: skip
        rounds = ", ".join(f"{v:.0f}" for v in figures[name])
        print(f"  {name:<10} {rps:>8.0f} req/s  [{rounds}]{verdict}")


if __name__ == "__main__":
    main()
