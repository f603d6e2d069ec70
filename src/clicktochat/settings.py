"""One settings object, declared as data so every setting has a default, an environment
variable and a help text in one place (the README table is checked against it by a test)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Any
from urllib.parse import urlsplit

import phonenumbers

from .database import is_postgres, redacted

ENV_PREFIX = "CLICKTOCHAT_"
MIN_KEY_LENGTH = 32
MIN_OUTBOX_LEASE = 20  # seconds: a send (at most graph.DEFAULT_TIMEOUT, 15 s) that starts before half the lease
# has passed ends before another sender may take the row back (twice the lease): 10 + 15 < 40
MAX_PORT = 65535


def setting(default: Any, help: str, secret: bool = False) -> Any:
    return field(default=default, metadata={"help": help}, repr=not secret)


@dataclass(frozen=True)
class Settings:
    db: str = setting(
        "clicktochat.db",
        "Path of the SQLite database file (created on first use), or a PostgreSQL database's URL, "
        "postgresql://user:password@host:5432/name (migrated on first use), for several instances.",
    )
    base_url: str = setting(
        "",
        "Public origin written into links and QR codes, e.g. https://chat.example.com. "
        "Empty: `serve` uses http://HOST:PORT and records it so the other commands print the same origin.",
    )
    host: str = setting("127.0.0.1", "Interface `serve` listens on.")
    port: int = setting(8000, "Port `serve` listens on.")
    secret_keys: str = setting(
        "",
        "Comma-separated signing keys, newest last. Empty: keys are generated once and kept in the "
        "database (rotate them with `clicktochat keys rotate`).",
        secret=True,
    )
    default_region: str = setting(
        "", "Two-letter country (e.g. IT, US) used to read phone numbers written without a country code."
    )
    flush_interval: float = setting(
        1.0, "Seconds between two batched writes of recorded clicks: about the most a killed process can lose "
        "(plus the write under way; see Durability)."
    )
    trusted_proxies: str = setting(
        "",
        "Comma-separated addresses or networks (e.g. 10.0.0.0/8) of reverse proxies whose X-Forwarded-For "
        "is believed. Empty: the connecting address is the visitor's.",
    )
    trusted_hosts: str = setting(
        "",
        "Comma-separated host names requests may name in their Host header (e.g. chat.example.com,"
        "www.chat.example.com); others get a 400. `*`: any. Empty: the base URL's host, and localhost, "
        "127.0.0.1 and ::1 (what a reverse proxy on the same machine names when it does not pass Host on).",
    )
    unique_window: int = setting(
        1800, "Seconds in which repeated clicks of one visitor on one link count as one unique click."
    )
    retention_days: int = setting(
        400, "Days raw click rows are kept; the daily totals that stats read are kept for ever."
    )
    cache_size: int = setting(10_000, "Short links kept in the in-process cache.")
    graph_url: str = setting(
        "https://graph.facebook.com/v26.0",
        "Base URL of Meta's Graph API (WhatsApp Cloud API), with its version; point it at a stand-in "
        "(`clicktochat simulate graph`) to try the WhatsApp side without a Meta account.",
    )
    webhook_retention_days: int = setting(
        30, "Days the raw bodies of applied WhatsApp webhooks are kept (for inspection); what they said stays "
        "in the conversations.",
    )
    messages_per_second: float = setting(
        80.0, "Most messages sent a second from one WhatsApp number: Meta's throughput for a number (80 by "
        "default; up to 1,000 once Meta has raised it for the number).",
    )
    outbox_lease: int = setting(
        60, "Seconds a message being sent is held by one sender. After a crash it is sent again once twice this has "
        "passed, unless a status from Meta (which names our row) has shown that it went out. At least 20.",
    )
    optin_confirmations_per_hour: int = setting(
        100, "Sign-ups one business's double opt-in forms take an hour, each of which may send a confirmation, "
        "per instance (a burst of as many, then one every 3600/N s): what strangers typing numbers in can make "
        "the business pay for. Past it, 429 with Retry-After.",
    )
    price_table: str = setting(
        "", "A CSV file of what one WhatsApp message costs per category and country (region,category,price,"
        "currency; see prices.csv in the package). Empty: the example table, with example prices.",
    )
    demo: bool = setting(False, "Seed a demo business, agents and links on start (`serve --demo`).")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then `CLICKTOCHAT_*` variables, then explicit overrides (CLI flags) that are not None."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(ENV_PREFIX + f.name.upper())
            if raw is not None and raw != "":
                values[f.name] = _convert(f, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def __post_init__(self) -> None:
        for name in ("flush_interval", "cache_size", "port", "unique_window", "retention_days",
                     "webhook_retention_days", "messages_per_second", "outbox_lease",
                     "optin_confirmations_per_hour"):  # fmt: skip
            if getattr(self, name) <= 0:
                raise ValueError(f"{ENV_PREFIX}{name.upper()} must be more than 0")
        if self.port > MAX_PORT:  # the OS would take it modulo 65,536, and links would carry the wrong one
            raise ValueError(f"{ENV_PREFIX}PORT must be a TCP port, 1 to {MAX_PORT}; {self.port} is not one")
        if self.outbox_lease < MIN_OUTBOX_LEASE:
            raise ValueError(f"{ENV_PREFIX}OUTBOX_LEASE must be at least {MIN_OUTBOX_LEASE} seconds, so that a send "
                             "still waiting for Meta is never taken back and sent again")
        if any(len(key) < MIN_KEY_LENGTH for key in self.signing_keys):
            # A short key can be guessed offline from one link, and then any link forged.
            raise ValueError(
                f"{ENV_PREFIX}SECRET_KEYS: each key needs at least {MIN_KEY_LENGTH} characters; "
                "make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )

        if is_postgres(self.db) and not well_formed(self.db):
            raise ValueError(f"{ENV_PREFIX}DB (--db): the URL's password holds a character that must be percent-encoded"
                             " (@ is %40, # is %23, / is %2F, : is %3A, % is %25), or it is cut short and partly"
                             " read as the host name")  # fmt: skip
        if "://" in self.db and not is_postgres(self.db):
            raise ValueError(f"{ENV_PREFIX}DB (--db): give a file path or a postgresql://user:password@host:5432/name"
                             f" URL, not a {self.db.split('://', 1)[0]}:// one")  # fmt: skip
        if self.price_table:
            from .pricing import load_table  # read now, so a typo in the file stops the start, not a page

            try:
                load_table(self.price_table)
            except (OSError, ValueError) as exc:
                raise ValueError(f"{ENV_PREFIX}PRICE_TABLE: {exc}") from None
        if self.base_url and not (self.base_url.startswith(("https://", "http://"))
                                  and urlsplit(self.base_url).hostname):  # fmt: skip
            # Without its scheme, every link and QR code printed would be a bare host name.
            raise ValueError(f"{ENV_PREFIX}BASE_URL (--base-url) must start with https:// (or http://): "
                             f"https://{self.base_url.split('://')[-1]}, not {self.base_url}")  # fmt: skip
        if self.default_region and self.default_region.upper() not in phonenumbers.SUPPORTED_REGIONS:
            # Else every number typed without its country code was refused as "an unknown country code".
            raise ValueError(f"{ENV_PREFIX}DEFAULT_REGION: {self.default_region!r} is not a country's two-letter code "
                             "(IT, US, GB...)")  # fmt: skip
        if not self.graph_url.startswith(("https://", "http://")):
            raise ValueError(f"{ENV_PREFIX}GRAPH_URL must start with https:// (or http:// for a local stand-in)")
        if any("/" in name or " " in name.strip() for name in self.trusted_hosts.split(",")):
            raise ValueError(f"{ENV_PREFIX}TRUSTED_HOSTS: give host names (chat.example.com), not URLs")
        try:
            self.proxy_networks  # noqa: B018 (parsed now, so a typo stops the start, not a click)
        except ValueError as exc:
            raise ValueError(f"{ENV_PREFIX}TRUSTED_PROXIES: {exc}") from None

    def __repr__(self) -> str:
        """Without secrets: the signing keys, and the database URL's password."""
        shown = (f"{f.name}={redacted(self.db) if f.name == 'db' else getattr(self, f.name)!r}"
                 for f in dataclasses.fields(self) if f.repr)  # fmt: skip
        return f"Settings({', '.join(shown)})"

    @property
    def proxy_networks(self) -> list[IPv4Network | IPv6Network]:
        return [ip_network(part.strip(), strict=False) for part in self.trusted_proxies.split(",") if part.strip()]

    @property
    def signing_keys(self) -> list[str]:
        return [key.strip() for key in self.secret_keys.split(",") if key.strip()]


def _convert(f: dataclasses.Field[Any], raw: str) -> Any:
    kind: type[Any] = type(f.default)
    try:
        if kind is bool:
            if raw.lower() in {"1", "true", "yes", "on"}:
                return True
            if raw.lower() in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        return kind(raw)
    except ValueError:
        raise ValueError(
            f"{ENV_PREFIX}{f.name.upper()}={raw!r} is not a valid {kind.__name__}"
        ) from None


def documented_settings() -> list[tuple[str, Any, str]]:
    """(environment variable, default, help) for each setting: the source of the README table."""
    return [
        (ENV_PREFIX + f.name.upper(), f.default, f.metadata["help"]) for f in dataclasses.fields(Settings)
    ]


def well_formed(url: str) -> bool:
    """A postgresql:// URL whose user and password end where its host begins: an @, #, / in a
    password written as it is would send part of it to DNS as a host name, and into errors."""
    rest = url.split("://", 1)[1].split("?", 1)[0]
    netloc = rest.split("/", 1)[0]
    return "#" not in url and netloc.count("@") <= 1 and ("@" in netloc or "@" not in rest)
