"""Shared fixtures: a real app over a real SQLite file in a temporary folder."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import zxingcpp
from PIL import Image
from playwright.sync_api import Browser, sync_playwright
from starlette.testclient import TestClient

from clicktochat.app import create_app
from clicktochat.keys import create_api_key
from clicktochat.service import Service
from clicktochat.settings import Settings

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36"
)
DESKTOP = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
WHATSAPP_PREVIEW = "WhatsApp/2.23.20.0 A"


def read_qr(image: bytes | Path | np.ndarray) -> str:
    """The text of the one QR code in an image, or "" when none can be read.

    ZXing's decoder is the one most phone scanners are built on, so a code it
    cannot read is a code a customer's phone may not read either.
    """
    if isinstance(image, bytes | Path):
        image = np.asarray(Image.open(image if isinstance(image, Path) else io.BytesIO(image)).convert("L"))
    found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    assert len(found) <= 1, "more than one code"
    return found[0].text if found else ""


CHROMIUM = "/usr/bin/chromium"  # Debian's: Playwright cannot download its own browser here
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium, one per test module."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    return str(tmp_path / "test.db")


@pytest.fixture
def settings(db_path: str) -> Settings:
    return Settings(db=db_path, base_url="https://chat.example.com", flush_interval=0.05)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The app with its background loops held: a test flushes clicks (flush) and checks for
    other processes' changes (watch) when it chooses, so nothing runs behind its back."""
    app = create_app(settings, background=False)
    with TestClient(app, base_url="https://chat.example.com", follow_redirects=False) as c:
        yield c


@pytest.fixture
def service(client: TestClient) -> Service:
    """The running app's service (same database, same cache)."""
    return client.app.state.service  # type: ignore[attr-defined,no-any-return]


def call(client: TestClient, coroutine: object) -> object:
    """Run a coroutine on the app's event loop (aiosqlite connections belong to one loop)."""
    assert client.portal is not None

    async def run() -> object:
        return await coroutine  # type: ignore[misc]

    return client.portal.call(run)


@pytest.fixture
def api_key(client: TestClient, service: Service) -> str:
    return call(client, create_api_key(service.store, "tests")).key  # type: ignore[attr-defined,no-any-return]


@pytest.fixture
def auth(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


def flush(client: TestClient) -> None:
    """Write pending clicks now instead of waiting for the writer's next tick."""
    call(client, client.app.state.recorder.flush())  # type: ignore[attr-defined]


def watch(client: TestClient) -> None:
    """One check of the routing watcher: what another process (the CLI) changed is seen now."""
    call(client, client.app.state.watcher.run_once())  # type: ignore[attr-defined]


__all__ = ["IPHONE", "ANDROID", "DESKTOP", "WHATSAPP_PREVIEW", "call", "flush", "watch", "asyncio"]
