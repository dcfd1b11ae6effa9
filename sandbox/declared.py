"""What Epic and Oracle Health declare in their published R4 CapabilityStatements: the data the
sandbox's epic and oracle profiles are built from (contract section 5).

The statements live in sandbox/vendors/, trimmed to the types the sandbox serves, each file naming
the capture it was taken from (repository, path, commit and the vendor URL it was read at):
- epic-r4.json: api-evangelist/epic-systems fhir/epic-fhir-r4-capabilitystatement.json
  (Epic May 2026, fhir.epic.com sandbox, 2026-07-24);
- oracle-r4.json: api-evangelist/cerner conformance/cerner-capability-statement-r4-secure.json
  (Oracle Health Millennium secure sandbox, 2026-08-14).
``against_statement`` is what a statement itself refuses: a value its documentation does not
list, a missing parameter it calls required, an include it does not declare.
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


def _code(value: str) -> str:
    return value.rpartition("|")[2]


def against_statement(statement: Declared, rtype: str, params: list[tuple[str, str]]) -> str | None:
    """What the vendor's statement itself refuses: a value outside those a parameter's
    documentation lists (each value of a comma-separated list counts; Epic: "Epic categories are
    laboratory, vital-signs, ..."), a search without a parameter the documentation calls
    required (Epic CarePlan `category`; `_id` alone is always allowed), and an ``_include`` or
    ``_revinclude`` the type does not declare."""
    names = {name for name, _ in params}
    for name, value in params:
        allowed = statement.values(rtype, name)
        if allowed is None:
            continue
        for item in value.split(","):
            if _code(item.strip()) not in allowed:
                return f"{name} {_code(item.strip())!r} is not a supported value for {rtype}"
    if "_id" not in names:
        for name in sorted(statement.required(rtype) - names):
            return f"{rtype} search requires a {name} parameter"
    for control, declared_values in (
        ("_include", statement.includes(rtype)),
        ("_revinclude", statement.revincludes(rtype)),
    ):
        for name, value in params:
            if name == control and value not in declared_values and "*" not in declared_values:
                return f"{control} {value} is not supported for {rtype}"
    return None
