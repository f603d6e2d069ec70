"""app.py's plain helpers (the app itself is exercised by every other test file)."""

from __future__ import annotations

import pytest

from clicktochat.app import AppState, without_numbers


@pytest.mark.parametrize(("path", "logged"), [
    ("/api/v1/customers/+39 347 123 4567", "/api/v1/customers/…"),
    ("/api/v1/customers/393471234567", "/api/v1/customers/…"),
    ("/api/v1/optins/IT.1234567890", "/api/v1/optins/IT.…"),
    ("/api/v1/conversations/42", "/api/v1/conversations/42"),
    ("/s/vetrina", "/s/vetrina"),
])  # fmt: skip
def test_an_unexpected_errors_log_line_names_no_phone_number(path: str, logged: str) -> None:
    """Found by a privacy review: the log line of a 500 held the path, and some paths are a person's number."""
    assert without_numbers(path) == logged


def test_the_apps_state_reads_what_was_last_written_however_it_was_written() -> None:
    state = AppState()
    state.recorder = "first"
    assert state.recorder == "first" and state["recorder"] == "first"
    state["recorder"] = "second"  # Starlette's item form: the attribute follows
    assert state.recorder == "second" and state._state["recorder"] == "second"
    state.recorder = "third"
    assert state["recorder"] == "third" and vars(state)["recorder"] == "third"  # a plain attribute: found first
    del state["recorder"]
    with pytest.raises(AttributeError):
        getattr(state, "recorder")  # noqa: B009
    state.proxies = 1
    del state.proxies
    assert "proxies" not in state._state and not hasattr(state, "proxies")
