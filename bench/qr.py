"""How long a QR code takes: median milliseconds per SVG and per PNG, cold (a link never
rendered before) and cached (clicktochat.qr.render's memo), for segno (what we use) and
qrcode (the alternative, when installed: `pip install -e '.[bench]'`; it is no runtime
dependency), in the same run; and the QR version of a typical short link.

    .venv/bin/python bench/qr.py
    .venv/bin/python bench/qr.py --runs 500
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import statistics
import time
from collections.abc import Callable
from itertools import count

import segno

from clicktochat.qr import QROptions, render, version

BASE = "https://chat.example.com"
_serial = count()


def fresh_short_link() -> str:
    """A link not rendered before, so nothing is cached: 7 characters, like a random slug."""
    return f"{BASE}/s/{next(_serial):07d}"


def median_ms(make: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        make()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def qrcode_svg(data: str) -> bytes:
    import qrcode.constants
    from qrcode.image.svg import SvgPathImage

    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4)
    code.add_data(data)
    code.make(fit=True)
    out = code.make_image(image_factory=SvgPathImage).to_string()
    assert isinstance(out, bytes)
    return out


def qrcode_png(data: str) -> bytes:
    import qrcode.constants

    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4, box_size=10)
    code.add_data(data)
    code.make(fit=True)
    out = io.BytesIO()
    code.make_image().save(out)
    return out.getvalue()


def segno_direct(data: str, kind: str) -> bytes:
    out = io.BytesIO()
    segno.make(data, error="m", boost_error=False).save(out, kind=kind, border=4, scale=10)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=300, help="Renders per figure (default 300).")
    runs = parser.parse_args().runs
    options = QROptions()
    cached = f"{BASE}/s/vetrina"
    render(cached, options, "svg"), render(cached, options, "png")  # fill the memo

    rows = [
        ("segno, cold (clicktochat.qr.render)", lambda: render(fresh_short_link(), options, "svg"),
         lambda: render(fresh_short_link(), options, "png")),
        ("segno, cached (clicktochat.qr.render)", lambda: render(cached, options, "svg"),
         lambda: render(cached, options, "png")),
        ("segno, direct", lambda: segno_direct(fresh_short_link(), "svg"),
         lambda: segno_direct(fresh_short_link(), "png")),
    ]  # fmt: skip
    if importlib.util.find_spec("qrcode"):
        rows.append(("qrcode, direct", lambda: qrcode_svg(fresh_short_link()), lambda: qrcode_png(fresh_short_link())))
    print(f"median of {runs} renders of a short link ({cached}), error correction M, 4-module border")
    print(f"{'':<40}{'SVG ms':>10}{'PNG ms':>10}")
    figures = {}
    for label, svg, png in rows:
        figures[label] = (median_ms(svg, runs), median_ms(png, runs))
        print(f"{label:<40}{figures[label][0]:>10.4f}{figures[label][1]:>10.4f}")
    segno_svg, segno_png = figures["segno, direct"]
    if "qrcode, direct" in figures:
        qrcode_svg_ms, qrcode_png_ms = figures["qrcode, direct"]
        print(f"\nqrcode / segno: SVG {qrcode_svg_ms / segno_svg:.2f}x, PNG {qrcode_png_ms / segno_png:.2f}x")
    else:
        print("\nqrcode is not installed: pip install -e '.[bench]' to compare")
    print(f"targets: cold SVG <= 5 ms, cached <= 0.3 ms: "
          f"{figures['segno, cold (clicktochat.qr.render)'][0]:.2f} ms and "
          f"{figures['segno, cached (clicktochat.qr.render)'][0]:.4f} ms")  # fmt: skip
    for url in (cached, f"{BASE}/s/k7m2x9q", "http://127.0.0.1:8000/s/vetrina"):
        print(f"QR version of {url}: {version(url)} at M, {version(url, 'H')} at H")


if __name__ == "__main__":
    main()
