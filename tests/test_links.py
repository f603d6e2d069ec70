from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime

import pytest

from clicktochat.agents import Agent, Rotation
from clicktochat.errors import InvalidInput
from clicktochat.links import (
    RANDOM_SLUG_LENGTH,
    SLUG_ALPHABET,
    LinkCache,
    ShortLink,
    Target,
    check_label,
    check_mode,
    check_slug,
    random_slug,
    resolve,
)  # fmt: skip


def test_random_slugs_use_the_unambiguous_alphabet() -> None:
    slugs = {random_slug() for _ in range(500)}
    assert len(slugs) == 500
    assert all(len(s) == RANDOM_SLUG_LENGTH and set(s) <= set(SLUG_ALPHABET) for s in slugs)
    assert not set("01ilo") & set(SLUG_ALPHABET)


@pytest.mark.parametrize("slug", ["vetrina", "Vetrina", "summer-2026", "a", "x_y", "a" * 64])
def test_custom_slugs_are_lower_cased(slug: str) -> None:
    assert check_slug(slug) == slug.lower()


@pytest.mark.parametrize(
    ("slug", "reason"),
    [
        ("admin", "is reserved"),
        ("API", "is reserved"),
        ("a b", "is not a valid slug"),
        ("ä", "is not a valid slug"),
        ("-x", "is not a valid slug"),
        ("x-", "is not a valid slug"),
        ("a/b", "is not a valid slug"),
        ("", "is not a valid slug"),
        ("a" * 65, "is not a valid slug"),
        ("<script>", "is not a valid slug"),
    ],
)
def test_bad_slugs_say_why(slug: str, reason: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(reason)):
        check_slug(slug)


def test_labels_and_modes() -> None:
    assert check_label("  summer ad ", "campaign") == "summer ad"
    assert check_label("", "campaign") is None
    with pytest.raises(InvalidInput, match="control characters"):
        check_label("a\nb", "campaign")
    with pytest.raises(InvalidInput, match="at most 100"):
        check_label("x" * 101, "source")
    with pytest.raises(InvalidInput, match="'teleport' is not one of auto, redirect, landing"):
        check_mode("teleport")


def make_agent(agent_id: int, hours: dict[str, list[str]] | None = None) -> Agent:
    return Agent(agent_id, 7, f"agent {agent_id}", "whatsapp", f"39347123456{agent_id}", hours, "UTC")


def test_resolve_each_kind_of_destination() -> None:
    now, rotation = datetime(2026, 11, 23, 10, tzinfo=UTC), Rotation()
    fixed = Target(ShortLink("a", channel="whatsapp", address="393471234567"), None)
    assert resolve(fixed, now, rotation).address == "393471234567"  # type: ignore[union-attr]
    one = Target(ShortLink("b", agent_id=1), "Shop", (make_agent(1),))
    assert resolve(one, now, rotation).agent_id == 1  # type: ignore[union-attr]
    team = Target(ShortLink("c", business_id=7), "Shop", (make_agent(1), make_agent(2)))
    assert [resolve(team, now, rotation).agent_id for _ in range(4)] == [1, 2, 1, 2]  # type: ignore[union-attr]
    assert resolve(Target(ShortLink("d", business_id=7), "Shop"), now, rotation) is None


def test_cache_reads_each_slug_once_and_clear_forgets() -> None:
    reads: list[str] = []

    async def loader(slug: str) -> Target | None:
        reads.append(slug)
        return None if slug.startswith("nope") else Target(ShortLink(slug, channel="whatsapp", address="1"), None)

    async def scenario() -> None:
        cache = LinkCache(loader, size=2)
        assert (await cache.get("a")).link.slug == "a"  # type: ignore[union-attr]
        await cache.get("a")
        assert await cache.get("nope") is None
        assert await cache.get("nope") is None  # unknown slugs are cached too
        assert reads == ["a", "nope"]
        await cache.get("b")
        await cache.get("c")  # size 2: evicts the least recently used found link ("a")
        assert len(cache) == 3  # two links and one unknown slug
        await cache.get("a")
        assert reads == ["a", "nope", "b", "c", "a"]
        for bad in ("nope", "nope1", "nope2", "nope3"):  # unknown slugs evict only each other
            await cache.get(bad)
        await cache.get("a")
        assert reads[-1] == "nope3"
        cache.clear()
        await cache.get("a")
        assert reads[-1] == "a" and len(reads) == 9

    asyncio.run(scenario())


def test_cache_does_not_keep_a_read_that_raced_with_an_edit() -> None:
    async def scenario() -> None:
        cache: LinkCache
        started = asyncio.Event()
        release = asyncio.Event()

        async def slow_loader(slug: str) -> Target | None:
            started.set()
            await release.wait()
            return Target(ShortLink(slug, channel="whatsapp", address="old"), None)

        cache = LinkCache(slow_loader)
        read = asyncio.create_task(cache.get("x"))
        await started.wait()
        cache.clear()  # an edit lands while the old value is being read
        release.set()
        await read
        assert len(cache) == 0

    asyncio.run(scenario())
