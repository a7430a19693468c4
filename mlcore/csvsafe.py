"""CSV cells that a spreadsheet shows and never runs (formula injection, neutralised as OWASP advises).

Excel, LibreOffice and Google Sheets read a cell that starts with =, +, -, @, a tab or a carriage return as a
formula, and a formula can fetch a URL or, with DDE, start a program. Our CSVs carry users' texts, ids, labels
and names, and staff download everyone's: every CSV the platform writes goes through `writer`, which puts a
single quote before such a cell so that the spreadsheet shows it as text.

Numbers are told apart by type, not by look. An int or a float the app computed is written as it is (a loss of
-0.5 stays a number); a str is text whatever it looks like, so "-1" from an upload is written '-1. No Django,
no torch: the web process and the workers both use it.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import IO, Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # OWASP's list of the characters that start a formula


def cell(value: Any) -> Any:
    """`value` as it should go into a CSV: a str starting with a FORMULA_STARTS character gets a leading single
    quote; anything else (numbers, None, other strings) is returned unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class Writer:
    """csv.writer with every cell passed through `cell` first."""

    def __init__(self, fh: IO[str], **kwargs: Any) -> None:
        self._writer = csv.writer(fh, **kwargs)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(fh: IO[str], **kwargs: Any) -> Writer:
    """A csv.writer (same keyword arguments) whose cells no spreadsheet runs as a formula."""
    return Writer(fh, **kwargs)
