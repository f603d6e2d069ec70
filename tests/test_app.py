"""app.py's plain helpers (the app itself is exercised by every other test file)."""

from __future__ import annotations

import pytest

from clicktochat.app import without_numbers


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
