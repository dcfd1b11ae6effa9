"""Import CMS's quarterly Medicare NCCI practitioner PTP file into our policy CSV.

CMS publishes the edits as text (tab-delimited) or spreadsheet exports, inside zip files, with a
copyright line and a multi-row header block before the data. Each data row holds: column 1
code, column 2 code, an "in existence prior to 1996" flag, effective date (YYYYMMDD), deletion
date (YYYYMMDD or "*"), modifier indicator (0, 1 or 9) and the edit rationale. We keep every
row that has that shape, whatever the header looks like, and report how many rows we skipped.
Source: CMS "Medicare NCCI Procedure to Procedure (PTP) Edits" (practitioner services).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from plugin.errors import InputError
from plugin.policy.cms_source import member_texts, record_import, write_csv_atomically
from plugin.policy.loader import IMPORTED_PTP, PTP_FIELDS, user_policy_dir

_CODE = re.compile(r"^[0-9A-Z]{4}[0-9A-Z]$")
_YMD = re.compile(r"^\d{8}$")
# Therapy codes and the codes they edit against: physical medicine (97xxx), evaluations,
# SLP (92xxx) and the HCPCS G-codes therapists bill. Other pairs are kept with --all-codes.
THERAPY_PREFIXES = ("97", "92", "G0")


@dataclass(frozen=True)
class ImportResult:
    path: Path
    read: int
    kept: int
    skipped: int


def _ymd(value: str) -> str:
    value = value.strip()
    if not _YMD.match(value):
        return ""
    return date(int(value[:4]), int(value[4:6]), int(value[6:])).isoformat()


def _rows(text: str):
    dialect = "excel-tab" if "\t" in text[:20000] else "excel"
    yield from csv.reader(io.StringIO(text), dialect=dialect)


def _texts(path: Path) -> list[tuple[str, str]]:
    """(name, text) of the file, or of every .txt/.csv member of a zip; a file cut short (its
    last line not a whole edit row) is refused, so no quarter is half-imported."""
    texts = member_texts(path, "practitioner PTP file")
    for name, text in texts:
        last = text.rstrip("\r\n").rsplit("\n", 1)[-1]
        cells = last.split("\t") if "\t" in last else last.split(",")
        if _CODE.match(cells[0].strip().upper()) and (
            len(cells) < 6 or not _ymd(cells[3]) or cells[5].strip()[:1] not in ("0", "1", "9")
        ):
            raise InputError(f"{path}: {name} ends in an incomplete edit row (file truncated?)")
    return texts


def parse_ptp(text: str, source: str, all_codes: bool = False) -> tuple[list[dict], int, int]:
    """Rows of a PTP file as dicts in our CSV layout, with the counts read and skipped."""
    kept, read, skipped = [], 0, 0
    for cells in _rows(text):
        cells = [c.strip() for c in cells]
        if len(cells) < 6 or not (_CODE.match(cells[0].upper()) and _CODE.match(cells[1].upper())):
            if any(cells):
                skipped += 1
            continue
        read += 1
        col1, col2 = cells[0].upper(), cells[1].upper()
        effective, deletion, indicator = _ymd(cells[3]), cells[4], cells[5][:1]
        if not effective or indicator not in ("0", "1", "9"):
            skipped += 1
            continue
        if not all_codes and not (
            col1.startswith(THERAPY_PREFIXES) or col2.startswith(THERAPY_PREFIXES)
        ):
            continue
        kept.append(
            {
                "column1": col1,
                "column2": col2,
                "effective": effective,
                "deletion": "" if deletion.startswith("*") else _ymd(deletion),
                "modifier_indicator": indicator,
                "source": f"CMS NCCI practitioner PTP file {source}"
                + (f": {cells[6]}" if len(cells) > 6 and cells[6] else ""),
            }
        )
    return kept, read, skipped


def import_ptp_file(path: Path, into: Path | None = None, all_codes: bool = False) -> ImportResult:
    """Parse the CMS file and write ``ptp_ncci.csv`` in the policy folder (atomically)."""
    rows, read, skipped = [], 0, 0
    texts = _texts(path)
    for name, text in texts:
        got, r, s = parse_ptp(text, name, all_codes)
        rows += got
        read += r
        skipped += s
    if not read:
        raise InputError(f"{path}: no PTP edit rows found (expected CMS's practitioner PTP file)")
    folder = into or user_policy_dir()
    target = folder / IMPORTED_PTP
    write_csv_atomically(target, PTP_FIELDS, rows)
    effective = min((r["effective"] for r in rows), default="")
    source = ", ".join(name for name, _ in texts)
    record_import(
        folder,
        IMPORTED_PTP,
        {"kind": "ptp", "source": source, "effective": effective, "rows": read},
    )
    from plugin.policy.loader import load_policy

    load_policy.cache_clear()
    return ImportResult(target, read, len(rows), skipped)
