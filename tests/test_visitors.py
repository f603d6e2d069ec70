from __future__ import annotations

import json
from ipaddress import ip_address, ip_network

from clicktochat.visitors import MAX_FORWARDED_FOR, Proxies, Salts, forwarded_for

MIDNIGHT = 1700006400  # 2023-11-15 00:00 UTC
PARTS = ("203.0.113.9", "Mozilla/5.0", "short", "vetrina")


def test_forwarded_for_is_believed_only_from_a_trusted_proxy() -> None:
    proxies = Proxies([ip_network("10.0.0.0/8"), ip_network("::1/128")])
    assert proxies.client("10.1.2.3", "198.51.100.7") == "198.51.100.7"
    assert proxies.client("203.0.113.5", "198.51.100.7") == "203.0.113.5"  # anyone else: ignored
    # The rightmost hop that is not ours: what a visitor writes on the left cannot matter.
    assert proxies.client("10.1.2.3", "1.2.3.4, 198.51.100.7, 10.9.9.9") == "198.51.100.7"
    assert proxies.client("::1", "2001:db8::1") == "2001:db8::1"
    assert proxies.client("10.1.2.3", "") == "10.1.2.3"
    assert proxies.client("10.1.2.3", "10.2.2.2, 10.3.3.3") == "10.2.2.2"  # only proxies: the first
    assert proxies.client("10.1.2.3", "not an address") == "not an address"  # hashed like any other
    assert Proxies([]).client("10.1.2.3", "198.51.100.7") == "10.1.2.3"  # the default trusts nobody


def test_forwarded_for_joins_every_line_and_keeps_its_right_end() -> None:
    assert forwarded_for([]) == "" and forwarded_for([b"198.51.100.7"]) == "198.51.100.7"
    assert forwarded_for([b"1.2.3.4", b"198.51.100.7, 10.0.0.1"]) == "1.2.3.4, 198.51.100.7, 10.0.0.1"
    long = forwarded_for([b"1.2.3.4" + b" " * 5000 + b", 198.51.100.7"])
    assert len(long) == MAX_FORWARDED_FOR and long.endswith(", 198.51.100.7")  # the proxies' end is kept
    assert forwarded_for([b"caf\xe9"]) == "caf\xe9"  # bytes as latin-1, never an error


def test_which_addresses_are_trusted_is_what_ipaddress_says() -> None:
    """Proxies reads addresses with inet_pton (ipaddress is slow for a new visitor's every click);
    the verdicts must be ipaddress's, for odd spellings too."""
    networks = [ip_network("10.0.0.0/8"), ip_network("192.168.1.0/24"), ip_network("::1/128"),
                ip_network("2001:db8::/32"), ip_network("fe80::/10"), ip_network("127.0.0.1/32")]  # fmt: skip
    proxies = Proxies(networks)
    corpus = ["10.0.0.1", "10.255.255.255", "11.0.0.0", "9.255.255.255", "192.168.1.77", "192.168.2.1", "127.0.0.1",
              "127.0.0.2", " 10.1.2.3 ", "010.1.2.3", "10.1.2", "10.1.2.3.4", "10.1.2.256", "::1", "::2", "0::1",
              "2001:db8::7", "2001:DB8:0:0:0:0:0:1", "2001:db9::1", "::ffff:10.0.0.1", "::10.0.0.1", "fe80::1%eth0",
              "fe80::1", "febf::1", "fec0::1", "", "not an address", "1.2.3.4/32", "::1:", "[::1]",
              "1e1.0.0.1"]  # fmt: skip

    def expected(text: str) -> bool:
        try:
            parsed = ip_address(text.strip())
        except ValueError:
            return False
        return any(parsed in network for network in networks)

    assert [proxies.trusts(a) for a in corpus] == [expected(a) for a in corpus]
    assert sum(map(expected, corpus)) >= 8  # both verdicts occur


def test_a_visitor_hashes_alike_all_day_and_differently_per_link_and_day() -> None:
    salts = Salts(window=1800)
    morning, _ = salts.hashes(MIDNIGHT + 3600, *PARTS)
    evening, before = salts.hashes(MIDNIGHT + 80000, *PARTS)
    assert morning == evening and before == "" and len(morning) == 16
    assert salts.hashes(MIDNIGHT + 3600, *PARTS[:3], "other")[0] != morning
    assert salts.hashes(MIDNIGHT + 3600, "203.0.113.10", *PARTS[1:])[0] != morning
    assert salts.hashes(MIDNIGHT + 86400 + 3600, *PARTS)[0] != morning  # the next day: a new salt


def test_yesterdays_salt_is_kept_for_the_window_then_forgotten() -> None:
    salts = Salts(window=1800)
    late, _ = salts.hashes(MIDNIGHT - 10, *PARTS)
    _, before = salts.hashes(MIDNIGHT + 1799, *PARTS)
    assert before == late
    salts.expire(MIDNIGHT + 1800)
    state = json.loads(salts.save())
    assert state["previous"] == "" and salts.hashes(MIDNIGHT + 1801, *PARTS)[1] == ""
    # Two days without a click: there is no yesterday's salt to keep.
    assert salts.hashes(MIDNIGHT + 3 * 86400, *PARTS)[1] == ""


def test_the_salt_survives_a_restart_within_the_day() -> None:
    salts = Salts(window=1800)
    first, _ = salts.hashes(MIDNIGHT + 100, *PARTS)
    assert salts.changed
    saved = salts.save()
    assert not salts.changed
    restarted = Salts(window=1800, saved=saved)
    assert restarted.hashes(MIDNIGHT + 200, *PARTS)[0] == first
    assert not restarted.changed
