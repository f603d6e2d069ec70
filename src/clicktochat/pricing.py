"""What WhatsApp messages cost: a price table the owner edits (a CSV file, `prices.csv` as the
example; `CLICKTOCHAT_PRICE_TABLE` points at theirs), the rules in force from 1 October 2026,
and a month's estimate per business, category and topic.

The rules, as this project assumes them (README, "What it costs"):
- marketing, utility and authentication templates are charged per delivered message, by the
  recipient's country; utility templates inside an open customer-service window too;
- service messages (free-form replies inside the window) are free up to 1,000 per business
  number per calendar month (UTC), then charged at the table's service price;
- within the 72-hour free entry point (a chat from a Click-to-WhatsApp ad or a Page button,
  answered within 24 hours) every message is free.
Meta's own `pricing` object on a message's statuses wins when it has come: `billable: false`,
or the `free_entry_point` / `free_customer_service` types, make it free."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import phonenumbers

CATEGORIES = ("marketing", "utility", "authentication", "service")
FREE_SERVICE_PER_MONTH = 1000
FREE_TYPES = ("free_entry_point", "free_customer_service")


@dataclass(frozen=True)
class PriceTable:
    prices: dict[tuple[str, str], float]  # (region or "*", category) -> price of one message
    currency: str
    source: str  # the file it came from

    def price(self, region: str, category: str) -> float:
        return self.prices.get((region, category), self.prices.get(("*", category), 0.0))


def load_table(path: str = "") -> PriceTable:
    """The owner's table, or the example shipped with the package. ValueError saying which line
    is wrong."""
    if path:
        text, source = Path(path).read_text(encoding="utf-8"), path
    else:
        text = (resources.files("clicktochat") / "prices.csv").read_text(encoding="utf-8")
        source = "prices.csv (example)"
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    prices: dict[tuple[str, str], float] = {}
    currencies = set()
    for n, row in enumerate(csv.DictReader(io.StringIO("\n".join(lines))), 2):
        region, category = (row.get("region") or "").strip().upper(), (row.get("category") or "").strip().lower()
        if category not in CATEGORIES or not (region == "*" or (len(region) == 2 and region.isalpha())):
            raise ValueError(f"{source}, row {n}: region must be a two-letter country or *, category one of "
                             f"{', '.join(CATEGORIES)}")  # fmt: skip
        try:
            price = float(row.get("price") or "")
        except ValueError:
            raise ValueError(f"{source}, row {n}: price must be a number") from None
        if not 0 <= price < 100:
            raise ValueError(f"{source}, row {n}: price must be between 0 and 100")
        prices[(region, category)] = price
        currencies.add((row.get("currency") or "").strip().upper() or "USD")
    if len(currencies) > 1:
        raise ValueError(f"{source}: one currency for the whole table, not {', '.join(sorted(currencies))}")
    return PriceTable(prices, currencies.pop() if currencies else "USD", source)


@dataclass(frozen=True)
class Sent:
    """One message the business sent, as the estimate needs it."""

    business_id: int
    number_id: int
    phone: str | None  # E.164 digits; None when only the user id is known
    category: str  # marketing, utility, authentication (templates) or service (replies)
    topic: str | None
    pricing: dict[str, Any] | None  # Meta's, from the message's statuses, when it has come


@dataclass
class Line:
    messages: int = 0
    charged: int = 0
    cost: float = 0.0


@dataclass
class Estimate:
    currency: str
    by_category: dict[tuple[int, str], Line] = field(default_factory=dict)  # (business, category)
    by_topic: dict[tuple[int, str], Line] = field(default_factory=dict)  # (business, topic)

    @property
    def total(self) -> float:
        return round(sum(line.cost for line in self.by_category.values()), 4)


def region_of(phone: str | None) -> str:
    if not phone:
        return "*"
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse("+" + phone)) or "*"
    except phonenumbers.NumberParseException:
        return "*"


def estimate(messages: Iterable[Sent], table: PriceTable) -> Estimate:
    """A month's messages, oldest first, priced by the rules above."""
    result = Estimate(table.currency)
    service_count: dict[int, int] = {}
    for message in messages:
        category = message.category if message.category in CATEGORIES else "utility"
        meta = message.pricing or {}
        if isinstance(meta.get("category"), str) and meta["category"] in CATEGORIES:
            category = meta["category"]
        free = (meta.get("billable") is False or meta.get("type") in FREE_TYPES
                or meta.get("category") == "referral_conversion")  # fmt: skip
        if category == "service" and not free:
            service_count[message.number_id] = service_count.get(message.number_id, 0) + 1
            free = service_count[message.number_id] <= FREE_SERVICE_PER_MONTH
        cost = 0.0 if free else table.price(region_of(message.phone), category)
        for key, lines in (((message.business_id, category), result.by_category),
                           ((message.business_id, message.topic or ""), result.by_topic)):  # fmt: skip
            if lines is result.by_topic and not message.topic:
                continue
            line = lines.setdefault(key, Line())
            line.messages += 1
            line.charged += 0 if free else 1
            line.cost = round(line.cost + cost, 6)
    return result


def money(amount: float) -> str:
    """An amount as prices are written: at least two decimals, and as many more as it has, up to
    four (a month of one 0.015 service message is 0.015, not 0.01)."""
    shown = f"{amount:.4f}".rstrip("0")
    return shown if len(shown.partition(".")[2]) >= 2 else f"{amount:.2f}"
