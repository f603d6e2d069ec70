from __future__ import annotations

import pytest

from clicktochat.languages import choose, negotiate, ranges
from clicktochat.page_words import LANGUAGES

OURS = ("en", "it", "es", "pt", "de", "fr")


def test_ranges_are_sorted_by_q_value_keeping_the_order_of_ties() -> None:
    assert ranges("fr;q=0.5, it-IT, en;q=0.8, de;q=0.5, *;q=0.1") == [
        ("it-it", 1.0), ("en", 0.8), ("fr", 0.5), ("de", 0.5), ("*", 0.1),
    ]  # fmt: skip
    assert ranges("de_DE;Q=0.7 ,, ;q=1") == [("de-de", 0.7)]  # "_" as in $LANG, Q in capitals, empty parts


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("it-IT,it;q=0.9,en;q=0.8", "it"),
        ("en;q=0.8, de", "de"),  # the q-value, not the order, decides
        ("fr;q=0.2, es;q=0.9", "es"),
        ("pt-BR", "pt"),  # a region matches its language
        ("ja, zh-CN;q=0.9, fr;q=0.1", "fr"),  # the first we speak, however low
        ("ja, zh", "en"),  # none we speak: English
        ("", "en"),
        ("*", "en"),
        ("ja, *;q=0.5", "en"),
        ("en;q=0, *", "it"),  # English refused: the first language we speak that is not
        ("de;q=0, it;q=0.1", "it"),
        ("de-DE, de;q=0", "en"),  # refused, even by region
        ("it;q=2, de;q=x, fr;q=0.5", "fr"),  # a q-value out of range or not a number is left out
        ("es;q=0.500", "es"),
        ("xx-" + "a" * 5000 + ",it", "en"),  # a header no browser sends is cut, not parsed whole
    ],
)
def test_negotiation(header: str, expected: str) -> None:
    assert negotiate(header, OURS) == expected


def test_negotiation_reads_a_bounded_number_of_ranges() -> None:
    assert negotiate(",".join(["ja"] * 40 + ["it"]), OURS) == "en"
    assert negotiate(",".join(["ja"] * 30 + ["it"]), OURS) == "it"


@pytest.mark.parametrize(
    ("asked", "header", "expected"),
    [
        ("de", "it", "de"),  # ?lang= wins
        ("DE-at", "it", "de"),
        ("pt_BR", "", "pt"),
        ("xx", "it", "it"),  # a language we do not speak: not taken, and no error
        ("", "fr;q=0.3,ja", "fr"),
        ("", "", "en"),
    ],
)
def test_choose_takes_the_asked_language_when_we_speak_it(asked: str, header: str, expected: str) -> None:
    assert choose(asked, header, LANGUAGES) == expected
