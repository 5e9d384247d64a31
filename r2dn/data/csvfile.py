"""Read named numeric columns of a CSV file, with errors that give the file's line numbers.

Handles the quirks of real measurement files: a trailing separator on every line (the
nonlinearbenchmark.org layout), quoted names and numbers, a byte-order mark, blank lines, and
constants (such as a sampling rate) given in the first data row only. Numbers are parsed by
numpy's C reader; the slower line-by-line reader runs only to locate a bad field.

>>> import tempfile
>>> path = Path(tempfile.mkdtemp()) / "d.csv"
>>> _ = path.write_text('"u","y","fs",\\n1,"2.5",10,\\n3,4,,\\n')
>>> table = read_csv(path)
>>> table.names, table.columns(["y"])[:, 0], table.first("fs")
(('u', 'y', 'fs'), array([2.5, 4. ]), 10.0)
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True, eq=False)
class CsvTable:
    """A checked CSV file: its column `names` (the header) and the text of its data rows."""

    path: Path
    names: tuple[str, ...]
    body: str  # the text after the header line

    def index(self, name: str) -> int:
        """The position of column `name`; a ValueError if absent or given twice."""
        positions = [i for i, n in enumerate(self.names) if n == name]
        if not positions:
            raise ValueError(
                f"{self.path} has no column {name!r}; available columns: {list(self.names)}"
            )
        if len(positions) > 1:
            raise ValueError(
                f"{self.path}: column {name!r} appears {len(positions)} times in the header "
                f"(columns {[p + 1 for p in positions]}); rename all but one"
            )
        return positions[0]

    def columns(self, names: Sequence[str]) -> np.ndarray:
        """The columns `names` as floats, shape `(rows, len(names))`."""
        missing = [name for name in names if name not in self.names]
        if missing:
            raise ValueError(
                f"{self.path} has no column(s) {missing}; available columns: {list(self.names)}"
            )
        positions = [self.index(name) for name in names]
        try:
            return np.loadtxt(
                io.StringIO(self.body), delimiter=",", quotechar='"', usecols=positions, ndmin=2
            )
        except ValueError:
            pass  # find the first bad field, to name its line
        for line, row in self._rows():
            for name, p in zip(names, positions, strict=True):
                _number(row[p], f"{self.path} line {line}, column {name!r}")
        raise AssertionError("unreachable: every field parsed")  # pragma: no cover

    def first(self, name: str) -> float:
        """The value of column `name` in the first data row (where files give constants)."""
        line, row = next(self._rows())
        return _number(row[self.index(name)], f"{self.path} line {line}, column {name!r}")

    def _rows(self) -> Iterator[tuple[int, list[str]]]:
        """(line number in the file, fields) of every non-blank data row."""
        reader = csv.reader(io.StringIO(self.body))
        for fields in reader:
            if fields and any(field.strip() for field in fields):
                yield reader.line_num + 1, fields


def read_csv(path: str | Path, *, encoding: str = "utf-8") -> CsvTable:
    """Read `path` into a `CsvTable`, checking that every row has the header's fields.

    Raises FileNotFoundError, or a ValueError naming the file (and the line) for text that is
    not in `encoding`, a file without a header, a header with no data rows, or a row with more
    or fewer fields than the header (a trailing separator on a line is allowed).
    """
    path = Path(path).expanduser()
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig" if encoding.lower() in ("utf-8", "utf8") else encoding)
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ValueError(
            f"{path} line {line} is not {encoding} text (byte {raw[error.start]:#x}); re-save "
            f"the file as UTF-8, or pass encoding= its encoding (e.g. 'latin-1')"
        ) from None
    head, _, body = text.partition("\n")
    names = [name.strip() for name in next(csv.reader([head]), [])]
    if names and not names[-1]:  # the empty field after a trailing separator
        names.pop()
    if not any(names):
        raise ValueError(f"{path} has no header row of column names on line 1")
    table = CsvTable(path, tuple(names), body)
    bad = _first_bad_line(body, len(names))
    if bad is not None:
        line, count = bad
        raise ValueError(
            f"{path} line {line} has {count} fields but the header (line 1) has {len(names)} "
            f"{names}; fix or remove that line"
        )
    if next(table._rows(), None) is None:
        raise ValueError(f"{path} has a header (line 1) but no data rows")
    return table


def _first_bad_line(body: str, width: int) -> tuple[int, int] | None:
    """(line number, fields) of the first data line without `width` fields, else None."""
    if '"' in body:  # quoted fields may hold separators: count with the csv reader
        reader = csv.reader(io.StringIO(body))
        for fields in reader:
            count = len(fields) - (len(fields) == width + 1 and not fields[-1].strip())
            if fields and any(f.strip() for f in fields) and count != width:
                return reader.line_num + 1, len(fields)
        return None
    lines = body.split("\n")
    lengths = np.array([len(line.rstrip("\r ")) for line in lines])
    commas = np.array([line.count(",") for line in lines])
    trailing = np.array([line.rstrip("\r ").endswith(",") for line in lines])
    fields = commas + 1 - trailing * (commas == width)
    bad = np.flatnonzero((lengths > 0) & (fields != width))
    return None if bad.size == 0 else (int(bad[0]) + 2, int(commas[bad[0]] + 1))


def _number(text: str, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        what = "is empty" if not text.strip() else f"is {text!r}, not a number"
        raise ValueError(f"{where} {what}") from None
