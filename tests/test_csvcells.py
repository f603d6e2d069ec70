"""csvcells.cell: what strangers wrote reaches a spreadsheet as text, never as a formula, also
where Excel splits a `.csv` on semicolons (found by a review: `x;=1+1;` went out as it came)."""

from __future__ import annotations

import csv
import io

import pytest

from clicktochat.csvcells import cell


@pytest.mark.parametrize(("value", "written"), [
    ("=HYPERLINK(1)", "'=HYPERLINK(1)"),
    ("+39 347", "'+39 347"),
    ("-5", "'-5"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1+1", "'\t=1+1"),
    ("\r=1+1", "'\r'=1+1"),
    ("STOP\n=1+1", "STOP\n'=1+1"),
    ("x\r\n@SUM(1)", "x\r\n'@SUM(1)"),
    ("Basta\n -2", "Basta\n '-2"),
    ('x;"=1+1;', 'x;"\'=1+1;'),
    ('x\n ""@SUM(1)', 'x\n ""\'@SUM(1)'),
    ("x;=1+1;", "x;'=1+1;"),
    ("STOP ;=HYPERLINK(1);", "STOP ;'=HYPERLINK(1);"),
    ("x; =cmd|' /C calc'!A0", "x; '=cmd|' /C calc'!A0"),
    ("a;+b;-c;@d", "a;'+b;'-c;'@d"),
    ("x;\t=1", "x;'\t=1"),
])  # fmt: skip
def test_a_formula_at_the_start_of_any_cell_a_spreadsheet_makes_is_defused(value: str, written: str) -> None:
    assert cell(value) == written


@pytest.mark.parametrize("value", ["Ciao!", "a; b", "two\nlines", "a\r\nb", "mail@example.com", "1+1=2", "x=y;z", "",
                                   "instagram.com"])
def test_other_text_is_left_as_it_is(value: str) -> None:
    assert cell(value) == value


def test_numbers_and_nothing() -> None:
    assert (cell(5), cell(None), cell(-1)) == ("5", "", "'-1")


def test_split_on_semicolons_as_excel_does_in_italy_no_part_starts_a_formula() -> None:
    out = io.StringIO()
    csv.writer(out).writerow([cell("Basta;=1+1; @x"), cell(3)])
    for part in out.getvalue().replace(",", ";").split(";"):
        assert part.lstrip(" \"")[:1] not in ("=", "+", "-", "@"), part


def test_read_as_excel_reads_it_with_semicolons_no_cell_of_any_row_starts_a_formula() -> None:
    """There a quote opens a cell only at its start: after `x,` it is a character, so a line
    break inside our quoted cell ends the row and what follows starts the next one."""
    out = io.StringIO()
    csv.writer(out).writerow(["2026-12-05", cell("STOP\n=1+1"), cell("x\r\n@SUM(1);+2"), cell('x;"=1+1;'),
                              cell('y\n"-2'), cell("ok")])  # fmt: skip
    rows = list(csv.reader(io.StringIO(out.getvalue(), newline=""), delimiter=";"))
    assert len(rows) > 1  # the line breaks did split it
    for row in rows:
        for part in row:
            assert part.lstrip(" \"")[:1] not in ("=", "+", "-", "@"), rows
