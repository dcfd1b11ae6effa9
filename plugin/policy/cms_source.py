"""Reading a file as CMS publishes it (plain, or inside a zip) and writing what we keep from it.

CMS ships its quarterly and annual files as zip archives holding the same table in several
formats (csv, txt, xlsx) beside a readme. The importers read the text members; a spreadsheet
alone is refused with a line asking for the CSV, since no spreadsheet reader is in the lock.
What an import keeps is written to a temporary file and renamed into place, so a refused or
interrupted import leaves the earlier data as it was. Each import is recorded in
``imports.json`` in the policy folder (which CMS file, its release, its rows), for
``unitguard policy show``.
"""

from __future__ import annotations

import csv
import json
import os
import re
import tempfile
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path

from plugin.errors import InputError

MANIFEST = "imports.json"
TEXT_SUFFIXES = (".csv", ".txt", ".tsv", ".prn")
SHEET_SUFFIXES = (".xlsx", ".xls")
# "Eff_07-01-2026" (MUE), "effective-07-01-2026" (CMS download names)
_DATED = re.compile(r"(?:eff(?:ective)?)[_\- ]*(\d{1,2})[-_](\d{1,2})[-_](\d{4})", re.I)


def member_texts(path: Path, what: str, wanted=None) -> list[tuple[str, str]]:
    """(name, text) of ``path``, or of the text members of the zip it is, that ``wanted(name)``
    accepts (all text members when None). Refuses, naming the file, what cannot be read."""
    try:
        with path.open("rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise InputError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    if not head:
        raise InputError(f"{path}: the file is empty (expected CMS's {what})")
    if head.startswith(b"PK"):
        return _zip_texts(path, what, wanted)
    if path.suffix.lower() == ".zip":
        raise InputError(f"{path}: not a zip archive (expected CMS's {what} as downloaded)")
    if path.suffix.lower() in SHEET_SUFFIXES:
        raise InputError(
            f"{path}: a spreadsheet cannot be read here; use the CSV version of the {what} "
            "(CMS ships it in the same zip)"
        )
    return [(path.name, _decode(path.read_bytes()))]


def _zip_texts(path: Path, what: str, wanted) -> list[tuple[str, str]]:
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if not n.endswith("/")]
            texts = [
                n
                for n in names
                if n.lower().endswith(TEXT_SUFFIXES) and (wanted is None or wanted(n))
            ]
            if not texts:
                sheets = [n for n in names if n.lower().endswith(SHEET_SUFFIXES)]
                hint = " (only a spreadsheet: use the CSV version)" if sheets else ""
                raise InputError(f"{path}: the zip holds no {what} in text form{hint}")
            return [(n, _decode(archive.read(n))) for n in texts]
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise InputError(f"{path}: the zip archive is damaged or truncated ({exc})") from None


def _decode(raw: bytes) -> str:
    """CMS files are Windows-1252 or UTF-8 (with or without a byte order mark)."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def date_in_name(*names: str) -> date | None:
    """The effective date CMS writes in a file name ("..._Eff_07-01-2026.csv"), if any."""
    for name in names:
        found = _DATED.search(name or "")
        if found:
            month, day, year = (int(g) for g in found.groups())
            try:
                return date(year, month, day)
            except ValueError:
                return None
    return None


def write_csv_atomically(target: Path, fields: tuple[str, ...], rows: list[dict]) -> None:
    """Write ``rows`` to ``target`` through a temporary file in the same folder."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def read_manifest(folder: Path) -> dict:
    """The record of imports in a policy folder ({} when there is none or it is unreadable)."""
    try:
        with (folder / MANIFEST).open(encoding="utf-8") as fh:
            found = json.load(fh)
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def record_import(folder: Path, written: str, entry: dict, **settings: str) -> None:
    """Note that ``written`` (a file in ``folder``) came from ``entry`` (kind, source file,
    release, effective date, rows), and keep ``settings`` (e.g. the locality)."""
    manifest = read_manifest(folder)
    files = manifest.setdefault("files", {})
    files[written] = {**entry, "imported": datetime.now(UTC).isoformat(timespec="seconds")}
    manifest.update(settings)
    handle, temp = tempfile.mkstemp(prefix=f".{MANIFEST}.", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, indent=1, sort_keys=True)
        os.replace(temp, folder / MANIFEST)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def normal(cell: str) -> str:
    """A header cell with its line breaks and runs of spaces made single spaces, upper case."""
    return " ".join(cell.split()).upper()
