from __future__ import annotations

import pytest

from clicktochat.optin_words import default_country


@pytest.mark.parametrize(("languages", "lang", "region", "expected"), [
    ("en,it-IT", "en", "", "IT"),  # a new user: the page's bare "en" beat the browser's it-IT (an Italian number, +44)
    ("it-IT,it;q=0.9,en;q=0.8", "it", "", "IT"),
    ("pt-BR", "pt", "", "BR"),
    ("en", "en", "IT", "IT"),  # a bare language says less than the server's region
    ("en", "en", "", "GB"),
    ("de;q=0.9", "en", "", "DE"),
    ("", "fr", "", "FR"),
    ("", "en", "", "GB"),
    ("xx", "xx", "", ""),
    ("en-XX,es", "en", "", "GB"),  # an unknown region is no region: its language counts
])  # fmt: skip
def test_the_number_fields_country(languages: str, lang: str, region: str, expected: str) -> None:
    assert default_country(languages, lang, region) == expected
