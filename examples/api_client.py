"""Create a business, an agent and a short link through the REST API, then read its clicks.

    KEY=$(clicktochat apikey create example)
    CLICKTOCHAT_URL=http://127.0.0.1:8000 CLICKTOCHAT_API_KEY=$KEY python examples/api_client.py
"""

from __future__ import annotations

import os
import sys

import httpx


def main() -> int:
    base = os.environ.get("CLICKTOCHAT_URL", "http://127.0.0.1:8000").rstrip("/") + "/api/v1"
    headers = {"Authorization": f"Bearer {os.environ['CLICKTOCHAT_API_KEY']}"}
    with httpx.Client(base_url=base, headers=headers, timeout=10) as api:
        shop = api.post("/businesses", json={"name": "Bottega Verde", "timezone": "Europe/Rome"})
        shop = shop.raise_for_status().json()
        agent = api.post(
            f"/businesses/{shop['id']}/agents",
            json={"name": "Anna", "address": "+39 347 123 4567", "hours": "mon-sat 09:00-19:30"},
        ).raise_for_status().json()
        # With an idempotency key a request can be sent again after a timeout: one link is made.
        asked = {"business_id": shop["id"], "text": "Ciao! Avete il basilico?", "campaign": "window"}
        key = {"Idempotency-Key": f"window-sticker-{shop['id']}"}
        link = api.post("/links", json=asked, headers=key).raise_for_status().json()
        print(f"business {shop['id']}, agent {agent['id']} (available now: {agent['available_now']})")
        print(f"short link: {link['url']}")
        again = api.post("/links", json=asked, headers=key).raise_for_status()
        print(f"asked again with the same key: {again.status_code}, {again.json()['url']}")

        bad = api.post("/links", json={"to": "+39 12"})
        print(f"a bad number is refused: {bad.status_code} {bad.json()['errors']}")

        clicks = api.get(f"/links/{link['slug']}").raise_for_status().json()["clicks"]
        print(f"clicks so far: {clicks}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
