"""What Epic and Oracle Health declare in their published R4 CapabilityStatements: the data the
sandbox's epic and oracle profiles are built from (contract section 5).

The statements live in sandbox/vendors/, trimmed to the types the sandbox serves, each file naming
the capture it was taken from (repository, path, commit and the vendor URL it was read at):
- epic-r4.json: api-evangelist/epic-systems fhir/epic-fhir-r4-capabilitystatement.json
  (Epic May 2026, fhir.epic.com sandbox, 2026-07-24);
- oracle-r4.json: api-evangelist/cerner conformance/cerner-capability-statement-r4-secure.json
  (Oracle Health Millennium secure sandbox, 2026-08-14).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

VENDORS = Path(__file__).resolve().parent / "vendors"


@dataclass(frozen=True)
class Declared:
    """One vendor's statement: per type its interactions, search parameters, includes."""

    name: str
    source: dict
    resources: dict[str, dict]

    def searched(self, rtype: str) -> bool:
        entry = self.resources.get(rtype) or {}
        return "search-type" in entry.get("interactions", ())

    def interactions(self, rtype: str) -> frozenset[str]:
        return frozenset((self.resources.get(rtype) or {}).get("interactions", ()))

    def params(self, rtype: str) -> dict[str, dict]:
        """name -> the searchParam as declared (type, and documentation/values where kept)."""
        entry = self.resources.get(rtype) or {}
        return {p["name"]: p for p in entry.get("searchParam", ())}

    def values(self, rtype: str, name: str) -> frozenset[str] | None:
        """The values the parameter's documentation lists; None when it lists none."""
        found = self.params(rtype).get(name, {}).get("values")
        return frozenset(found) if found else None

    def required(self, rtype: str) -> frozenset[str]:
        """The parameters the documentation calls required."""
        return frozenset(n for n, p in self.params(rtype).items() if p.get("required"))

    def includes(self, rtype: str) -> tuple[str, ...]:
        return tuple((self.resources.get(rtype) or {}).get("searchInclude", ()))

    def revincludes(self, rtype: str) -> tuple[str, ...]:
        return tuple((self.resources.get(rtype) or {}).get("searchRevInclude", ()))


@cache
def declared(name: str) -> Declared:
    """The vendor's trimmed statement (``epic`` or ``oracle``)."""
    data = json.loads((VENDORS / f"{name}-r4.json").read_text(encoding="utf-8"))
    return Declared(name, data["source"], data["resources"])
