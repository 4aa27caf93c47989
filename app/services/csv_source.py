"""Reading a user-supplied CSV file safely: checked whole before use, then streamed.

``open_csv`` reads the file once to prove it is usable (UTF-8, a known header,
no absurdly long line, no unclosed quote) without keeping it in memory;
``CsvFile.rows()`` then streams the records. Problems come out as
``CsvFileError`` with a message meant for the person who made the file.
"""

from __future__ import annotations

import csv
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

MAX_LINE_BYTES = 64 * 1024
"""No honest row of a user import comes near this; a longer line means a wrong file."""

MAX_LINES_PER_RECORD = 32
"""A quoted cell may span lines, but not this many: beyond it a quote was left open."""

BOM = "\ufeff"


class CsvFileError(ValueError):
    """The file cannot be used at all; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class CsvRow:
    """One data record: its spreadsheet row number (the header is row 1) and its cells."""

    number: int
    values: dict[str, str]
    extra: tuple[str, ...] = ()

    def is_blank(self) -> bool:
        """Whether every cell is empty, like the trailing ",,," rows spreadsheets export."""
        return not self.extra and not any(v.strip() for v in self.values.values())


@dataclass(frozen=True, slots=True)
class CsvFile:
    """A CSV file that passed ``open_csv``'s checks."""

    path: Path
    columns: tuple[str, ...]
    data_rows: int

    def rows(self) -> Iterator[CsvRow]:
        """Stream the data records, one in memory at a time."""
        with self.path.open("rb") as fh:
            records = _records(fh)
            next(records, None)  # the header, already checked
            for number, cells in records:
                yield _row(number, self.columns, cells)


def open_csv(path: Path, *, required: Collection[str], allowed: Collection[str]) -> CsvFile:
    """Check the whole file (encoding, header, line lengths, quoting) and count its rows."""
    try:
        with path.open("rb") as fh:
            records = _records(fh)
            first = next(records, None)
            if first is None:
                raise CsvFileError(f"The file is empty: expected a header line {_names(allowed)}.")
            columns = _header(first[1], required=required, allowed=allowed)
            data_rows = sum(1 for _ in records)
    except OSError as exc:
        raise CsvFileError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
    return CsvFile(path=path, columns=columns, data_rows=data_rows)


def _records(fh: BinaryIO) -> Iterator[tuple[int, list[str]]]:
    """Yield (row number, cells) for non-empty records; blank lines still count as rows.

    Row numbers are what a spreadsheet shows: records, not lines (a quoted cell
    may span lines), the header being row 1 in the usual file.
    """
    lines = _Lines(fh)
    reader = csv.reader(lines, strict=True)
    number = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if lines.at_end:
                message = f"A quoted cell opened on line {lines.record_start} is never closed."
                raise CsvFileError(message) from exc
            raise CsvFileError(f"Line {lines.number} is not valid CSV: {exc}.") from exc
        number += 1
        lines.record_started()
        if cells:
            yield number, cells


class _Lines:
    """Feed the csv module decoded lines, refusing bad bytes and runaway lines early."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self.number = 0
        self.record_start = 1
        self.at_end = False

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        raw = self._fh.readline(MAX_LINE_BYTES + 1)
        if not raw:
            self.at_end = True
            raise StopIteration
        self.number += 1
        if len(raw) > MAX_LINE_BYTES:
            raise CsvFileError(
                f"Line {self.number} is longer than {MAX_LINE_BYTES:,} bytes: "
                "this does not look like a CSV of users."
            )
        if self.number - self.record_start >= MAX_LINES_PER_RECORD:
            raise CsvFileError(f"A quoted cell opened on line {self.record_start} is never closed.")
        text = _decode(raw, self.number)
        return text.removeprefix(BOM) if self.number == 1 else text

    def record_started(self) -> None:
        """Note that the csv module finished a record, so the next one starts on a new line."""
        self.record_start = self.number + 1


def _decode(raw: bytes, number: int) -> str:
    """Decode one line as UTF-8, naming the line and byte when it is something else."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        byte = raw[exc.start]
        raise CsvFileError(
            f"Line {number} is not UTF-8 text (byte 0x{byte:02x} at position {exc.start + 1}). "
            "Save the file as 'CSV UTF-8' and try again."
        ) from exc


def _header(
    cells: list[str], *, required: Collection[str], allowed: Collection[str]
) -> tuple[str, ...]:
    """Return the header's column names, normalised, or explain what is wrong with it."""
    columns = tuple(cell.strip().lower() for cell in cells)
    unknown = [c or "(blank)" for c in columns if c not in allowed]
    if unknown:
        looks_like_data = any("@" in c for c in columns)
        hint = "it looks like data: add" if looks_like_data else "expected"
        raise CsvFileError(
            f"Line 1 must be the header; unknown column(s) {', '.join(map(repr, unknown))} "
            f"({hint} a header line {_names(allowed)})."
        )
    missing = [c for c in required if c not in columns]
    if missing:
        raise CsvFileError(f"The header has no {', '.join(map(repr, missing))} column.")
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise CsvFileError(f"The header names {', '.join(map(repr, repeated))} more than once.")
    return columns


def _row(number: int, columns: tuple[str, ...], cells: list[str]) -> CsvRow:
    """Pair cells with column names; missing trailing cells read as empty."""
    values = dict(zip(columns, cells, strict=False))
    for column in columns[len(cells) :]:
        values[column] = ""
    return CsvRow(number, values, tuple(cells[len(columns) :]))


def _names(columns: Collection[str]) -> str:
    """Show column names the way they would appear in the file."""
    return '"' + ",".join(columns) + '"'
