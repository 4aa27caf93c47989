"""CSV export: no cell can start a formula, whatever separator the spreadsheet splits on.

A spreadsheet in a semicolon locale (or told on import to split on tabs or
pipes) reads `a;=1+1` as two cells, the second a formula, even though the file
itself is comma-separated. So a `'` goes before a formula character at the
start of a cell and after every separator a spreadsheet may use.
"""

from __future__ import annotations

import csv
import io
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.factories import seed_items

HOSTILE_NAMES = {
    "=1+1": "'=1+1",
    ";=1+1": ";'=1+1",
    'a,=HYPERLINK("http://evil.example","x")': 'a,\'=HYPERLINK("http://evil.example","x")',
    "a\t+cmd|' /C calc'!A0": "a\t'+cmd|' /C calc'!A0",
    "a|@SUM(1+1)*cmd": "a|'@SUM(1+1)*cmd",
    "-2+3;-4": "'-2+3;'-4",
    "x; =1": "x;' =1",  # a space before the formula does not save it
    "\t=1": "'\t'=1",
}
SEPARATORS = [",", ";", "\t", "|", "\n", "\r"]
FORMULA = re.compile(r" *[=+\-@\t\r]")  # how a cell that runs a formula begins


@pytest.fixture
def export(app: Flask, as_user: FlaskClient, accounts: dict[str, int]) -> list[dict[str, str]]:
    """The CSV export of items with hostile names and descriptions, parsed."""
    rows = [(name, "1", "active") for name in HOSTILE_NAMES]
    rows.append(("first line\n=2+2", "1", "active"))  # a line break inside a cell
    rows.append(("harmless - plain; text, here", "1", "active"))
    seed_items(app, accounts["user"], rows)
    response = as_user.get("/items/export.csv?sort=id&dir=asc")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def test_formulas_after_any_separator_are_neutralised(export: list[dict[str, str]]) -> None:
    names = [row["name"] for row in export]
    for hostile, neutralised in HOSTILE_NAMES.items():
        assert neutralised in names, hostile
    assert "first line\n'=2+2" in names
    assert "harmless - plain; text, here" in names  # only formula starts are touched


def test_no_cell_starts_a_formula_whichever_separator_splits_it(
    export: list[dict[str, str]],
) -> None:
    for row in export:
        for column, value in row.items():
            for separator in SEPARATORS:
                for cell in value.split(separator):
                    assert not FORMULA.match(cell), (column, value, separator)
