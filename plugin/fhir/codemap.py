"""An EHR's own procedure codes mapped to CPT/HCPCS (``--code-map``, ``[ehr.codes] map``).

Epic's R4 Procedure.code may carry only Epic's procedure-master code (an OID system); a
clinic exports its mapping as CSV ``system,code,cpt`` (a header row is optional).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from plugin.errors import InputError

HEADER = ("system", "code", "cpt")


def parse_code_map(text: str, source: str) -> dict[tuple[str, str], str]:
    """The map held by CSV text; InputError names the file and line of a bad row."""
    mapping: dict[tuple[str, str], str] = {}
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [cell.strip() for cell in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if number == 1 and tuple(c.lower() for c in cells[:3]) == HEADER:
            continue
        if len(cells) != 3 or not all(cells):
            raise InputError(
                f"{source}:{number}: expected 3 values 'system,code,cpt', found {len(cells)}"
            )
        system, code, cpt = cells
        if not (cpt[:1].isdigit() or cpt[:1].isalpha()) or len(cpt) != 5:
            raise InputError(f"{source}:{number}: {cpt!r} is not a 5-character CPT/HCPCS code")
        mapping[(system, code)] = cpt.upper()
    return mapping


def load_code_map(path: str | Path) -> dict[tuple[str, str], str]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"{path}: cannot read the code map ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: the code map is not UTF-8 text") from None
    return parse_code_map(text, str(path))
