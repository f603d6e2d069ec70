from __future__ import annotations

from datetime import UTC, datetime

import pytest

from clicktochat.agents import Agent, Rotation, check_timezone, is_available, parse_hours, route
from clicktochat.errors import InvalidInput

# 2026-11-23 is a Monday. Rome is UTC+1 in November.
MONDAY_10_ROME = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
MONDAY_14_ROME = datetime(2026, 11, 23, 13, 0, tzinfo=UTC)
SUNDAY_10_ROME = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


def agent(agent_id: int, hours: str | None = None, tz: str = "Europe/Rome") -> Agent:
    return Agent(agent_id, 1, f"a{agent_id}", "whatsapp", f"3934712345{agent_id:02d}", parse_hours(hours), tz)


def test_hours_from_text_expand_day_ranges() -> None:
    assert parse_hours("mon-fri 09:00-13:00,15:00-19:00; sat 10:00-12:00") == {
        day: ["09:00-13:00", "15:00-19:00"] for day in ("mon", "tue", "wed", "thu", "fri")
    } | {"sat": ["10:00-12:00"]}
    assert parse_hours("fri-mon 20:00-02:00") == {d: ["20:00-02:00"] for d in ("mon", "fri", "sat", "sun")}


def test_hours_from_text_take_times_as_people_write_them() -> None:
    """Found by a new user: "9:00-17:00" and "9-17" were refused; only "09:00-17:00" was taken."""
    assert parse_hours("mon-fri 9-13, 15:30-19; sat 9:00-12:00") == {
        **{day: ["09:00-13:00", "15:30-19:00"] for day in ("mon", "tue", "wed", "thu", "fri")}, "sat": ["09:00-12:00"]
    }
    for ambiguous in ("mon 25-26", "mon 9-5", "mon 22-2"):  # 9-5: not 9 AM to 5 AM; past midnight: in full
        with pytest.raises(InvalidInput):
            parse_hours(ambiguous)


def test_hours_as_mapping_are_checked_and_ordered() -> None:
    assert list(parse_hours({"sun": ["10:00-12:00"], "mon": ["09:00-24:00"]}) or {}) == ["mon", "sun"]
    assert parse_hours(None) is None and parse_hours("") is None and parse_hours({}) is None


@pytest.mark.parametrize(
    ("value", "field", "reason"),
    [
        ("funday 09:00-10:00", "hours", "'funday' is not a weekday"),
        ("mon 25:00-26:00", "hours.mon", "'25:00-26:00' is not a time range"),
        ({"mon": ["9-5"]}, "hours.mon", "'9-5' is not a time range"),
        ({"mon": ["09:00-09:00"]}, "hours.mon", "is not a time range"),
        ({"mon": "09:00-10:00"}, "hours.mon", "must be a list"),
        ({"xyz": []}, "hours.xyz", "unknown weekday"),
        (["mon"], "hours", "must be an object"),
    ],
)
def test_bad_hours_name_the_field(value: object, field: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_hours(value)
    assert caught.value.errors[0].field == field
    assert reason in caught.value.errors[0].reason


def test_availability_follows_the_agents_timezone() -> None:
    shop = agent(1, "mon-fri 09:00-13:00,15:00-19:00")
    assert is_available(shop, MONDAY_10_ROME)
    assert not is_available(shop, MONDAY_14_ROME)  # lunch break
    assert not is_available(shop, SUNDAY_10_ROME)
    new_york = agent(2, "mon-fri 09:00-17:00", tz="America/New_York")
    assert not is_available(new_york, MONDAY_10_ROME)  # 04:00 in New York
    assert is_available(agent(3, None), SUNDAY_10_ROME)  # no hours: always


def test_ranges_past_midnight_continue_the_next_day() -> None:
    bar = agent(1, "sat 20:00-02:00")
    assert is_available(bar, datetime(2026, 11, 28, 22, 0, tzinfo=UTC))  # Sat 23:00 Rome
    assert is_available(bar, datetime(2026, 11, 29, 0, 30, tzinfo=UTC))  # Sun 01:30 Rome
    assert not is_available(bar, datetime(2026, 11, 29, 1, 30, tzinfo=UTC))  # Sun 02:30 Rome


def test_rotation_is_round_robin_over_who_is_available() -> None:
    rotation = Rotation()
    a, b, c = agent(1), agent(2), agent(3)
    picks = [rotation.choose(1, [a, b, c]).id for _ in range(6)]
    assert picks == [1, 2, 3, 1, 2, 3]
    # Agent 2 goes off shift: the turn skips them without resetting.
    assert [rotation.choose(1, [a, c]).id for _ in range(3)] == [1, 3, 1]


def test_route_falls_back_when_nobody_is_available() -> None:
    rotation = Rotation()
    morning, evening = agent(1, "mon 09:00-12:00"), agent(2, "mon 18:00-20:00")
    fallback = agent(9)
    assert route(1, [morning, evening], fallback, MONDAY_10_ROME, rotation) == morning
    assert route(1, [morning, evening], fallback, MONDAY_14_ROME, rotation) == fallback
    assert route(1, [morning, evening], None, MONDAY_14_ROME, rotation) in (morning, evening)
    assert route(1, [], None, MONDAY_14_ROME, rotation) is None


def test_timezones_are_checked() -> None:
    assert check_timezone("Europe/Rome") == "Europe/Rome"
    for bad in ("Mars/Olympus", "", "../../etc/passwd"):
        with pytest.raises(InvalidInput, match="is not an IANA time zone"):
            check_timezone(bad)
    for server in ("localtime", "Factory"):  # found by a new user: the server's zone, not a place's
        with pytest.raises(InvalidInput, match="depends on the server"):
            check_timezone(server)


@pytest.mark.parametrize(
    "text",
    ["mon-fri 09:00-13:00,15:00-19:00; sat 09:00-13:00", "mon 09:00-10:00; wed 09:00-10:00", "mon-sun 00:00-24:00",
     "tue-sat 14:00-20:00; sun 09:00-12:00"],
)  # fmt: skip
def test_format_hours_is_the_inverse_of_parsing(text: str) -> None:
    from clicktochat.agents import format_hours

    assert format_hours(parse_hours(text)) == text
    assert format_hours(None) == "always"
