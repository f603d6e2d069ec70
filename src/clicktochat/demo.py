"""`serve --demo`: an Italian pastry shop with two agents, their hours, and a few links,
so a new user has something real to click within a minute of installing."""

from __future__ import annotations

import json

from .errors import InvalidInput
from .service import Service

DEMO_SLUGS = ("vetrina", "ordini", "torte")


async def seed_demo(service: Service) -> bool:
    """Seed once per database; False if it was already there."""
    if not await service.store.add_meta("demo", "null"):  # another instance, started with this one, seeds it
        await seed_demo_widget(service)  # databases seeded before widgets existed
        return False
    shop = await service.add_business("Pasticceria Dolce Vita", "Europe/Rome")
    giulia = await service.add_agent(
        shop.id, "Giulia", "+39 347 123 4567", hours="mon-fri 09:00-13:00,15:00-19:00; sat 09:00-13:00"
    )
    await service.add_agent(shop.id, "Marco", "+39 348 765 4321", hours="tue-sat 14:00-20:00; sun 09:00-12:00")
    await service.update_business(shop.id, {"fallback_agent_id": giulia.id})
    await service.create_link(
        business_id=shop.id, slug="vetrina", campaign="shop-window", source="poster",
        text="Ciao! Ho visto la vetrina: avete ancora i cannoli? 🍰",
    )  # fmt: skip
    await service.create_link(
        agent_id=giulia.id, slug="ordini", mode="landing", campaign="orders",
        text="Ciao Giulia! Vorrei ordinare una torta per sabato.\nNome: \nPersone: ",
    )  # fmt: skip
    await service.create_link(
        to="+39 347 123 4567", slug="torte", mode="redirect", campaign="instagram-bio", text="Info torte & prezzi?"
    )
    ad = await service.create_link(
        to="+39 347 123 4567", short=False, campaign="summer-ad", source="facebook",
        text="Ciao! Info sull'offerta estiva?", title=shop.name,
    )  # fmt: skip
    assert ad.token is not None
    await service.store.set_meta(
        "demo", json.dumps({"business_id": shop.id, "slugs": list(DEMO_SLUGS), "token": ad.token})
    )
    await seed_demo_widget(service)
    return True


async def seed_demo_widget(service: Service) -> None:
    """The widget `demo`, shown on the welcome page: its greeting pops up once per visit."""
    demo = json.loads(await service.store.get_meta("demo") or "null")
    if demo and await service.store.widget("demo") is None and await service.store.business(demo["business_id"]):
        try:
            await service.create_widget(demo["business_id"], "demo", {"bubble": True, "bubble_delay": 2})
        except InvalidInput:  # another instance, started with this one, made it after we looked
            if await service.store.widget("demo") is None:
                raise
