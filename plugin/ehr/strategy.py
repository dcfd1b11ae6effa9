"""What one FHIR server allows, read from its CapabilityStatement: the fetch's strategy.

Each search's parameters come from what the statement declares for the type (its searchParam
names), and a parameter's values, where the statement documents them, from that documentation
("Epic categories are laboratory, vital-signs, ..."); vendors.toml holds what a vendor requires
or lists that its statement does not say in a readable form, each with its source.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

VENDOR_FACTS = Path(__file__).resolve().parent / "vendors.toml"

# A code as a documentation lists it, and a list of them: "a, b, and c" / "a, b and c" / "a".
_CODE = r"[A-Za-z0-9][A-Za-z0-9\-]*"
_LIST = rf"(?P<list>{_CODE}(?:(?:\s*,\s*(?:and\s+)?|\s+and\s+){_CODE})*)"
# How a documentation lists a parameter's values: "Epic categories are a, b, and c." and
# "Supported SNOMED codes include 1, 2, and 3." (Epic), "Categories a, b and c are supported" /
# "Category a is supported" (Oracle Health).
_LISTED = (
    re.compile(rf"\b(?:categories|values|codes) (?:are|include) {_LIST}\s*\.", re.IGNORECASE),
    re.compile(rf"\b(?:categor(?:y|ies)|values?|codes?) {_LIST} (?:is|are) supported", re.I),
)
_REQUIRED = re.compile(r"\bis a required search parameter\b", re.IGNORECASE)


def documented_values(documentation: object) -> frozenset[str] | None:
    """The values a searchParam's documentation lists, or None when it lists none."""
    if not isinstance(documentation, str):
        return None
    listed: set[str] = set()
    for pattern in _LISTED:
        for found in pattern.finditer(documentation):
            items = re.split(r"\s*,\s*(?:and\s+)?|\s+and\s+", found.group("list"))
            listed.update(i for i in items if i)
    return frozenset(listed) or None


@cache
def vendor_facts() -> dict:
    with VENDOR_FACTS.open("rb") as fh:
        return tomllib.load(fh)


@dataclass(frozen=True)
class Strategy:
    """What one server allows, read from its CapabilityStatement."""

    by_encounter: frozenset[str]  # types searchable by `encounter` (or ChargeItem `context`)
    types: frozenset[str]  # types the server serves at all
    claim_by_patient: bool
    charge_status: bool = False  # ChargeItem declares `-status` (Oracle: required, "billable")
    vendor: str | None = None  # "epic" or "oracle" when the statement names one
    # type -> the search parameters it declares; empty when unknown (then only `types` counts)
    params: dict[str, frozenset[str]] = field(default_factory=dict, compare=False)
    # type -> its declared searchRevInclude values ("Provenance:target")
    revinclude: dict[str, frozenset[str]] = field(default_factory=dict, compare=False)
    # (type, parameter) -> the values the statement (else vendors.toml) documents for it
    values: dict[tuple[str, str], frozenset[str]] = field(default_factory=dict, compare=False)
    # type -> parameter sets of which a search by patient needs one ({category, code} at Epic)
    needs: dict[str, tuple[frozenset[str], ...]] = field(default_factory=dict, compare=False)

    def searchable(self, rtype: str, *needed: str) -> bool:
        """The type is searched here with every one of these parameters (when the statement
        lists parameters for it; a statement that lists none is taken at its word on types)."""
        if rtype not in self.types:
            return False
        declared = self.params.get(rtype)
        return declared is None or not declared or set(needed) <= declared

    def declares(self, rtype: str, name: str) -> bool:
        """The statement lists this parameter for the type (False when it lists none)."""
        return name in self.params.get(rtype, ())

    def documented(self, rtype: str, name: str) -> frozenset[str] | None:
        """The values the server documents for a parameter; None when it documents none."""
        return self.values.get((rtype, name))

    def needs_one_of(self, rtype: str, name: str) -> bool:
        """A search of the type by patient needs this parameter (or one it may stand in for)."""
        return any(name in group for group in self.needs.get(rtype, ()))

    @property
    def ehr(self) -> str:
        """The EHR's name for the reading notes ("" when the statement names no vendor)."""
        return {"epic": "Epic", "oracle": "Oracle Health"}.get(self.vendor or "", "")

    @classmethod
    def from_capabilities(cls, statement: dict) -> Strategy:
        by_encounter, types, claim_by_patient, charge_status = set(), set(), False, False
        declared: dict[str, frozenset[str]] = {}
        revinclude: dict[str, frozenset[str]] = {}
        values: dict[tuple[str, str], frozenset[str]] = {}
        needs: dict[str, tuple[frozenset[str], ...]] = {}
        vendor = _vendor(statement)
        for rest in statement.get("rest") or []:
            for resource in rest.get("resource") or []:
                rtype = resource.get("type", "")
                interactions = {
                    (i or {}).get("code") for i in resource.get("interaction") or [] if i
                }
                if interactions and "search-type" not in interactions:
                    continue  # read only (Epic's Provenance, every Binary): never searched
                types.add(rtype)
                params = set()
                for param in resource.get("searchParam") or []:
                    name = (param or {}).get("name")
                    if not isinstance(name, str):
                        continue
                    params.add(name)
                    listed = documented_values(param.get("documentation"))
                    if listed:
                        values[(rtype, name)] = listed
                    if _REQUIRED.search(str(param.get("documentation") or "")):
                        needs[rtype] = (*needs.get(rtype, ()), frozenset({name}))
                declared[rtype] = frozenset(params)
                revinclude[rtype] = frozenset(
                    v for v in resource.get("searchRevInclude") or [] if isinstance(v, str)
                )
                if "encounter" in params or (rtype == "ChargeItem" and "context" in params):
                    by_encounter.add(rtype)
                if rtype == "Claim" and {"patient", "encounter"} & params:
                    claim_by_patient = True
                if rtype == "ChargeItem" and "-status" in params:
                    charge_status = True
        _add_vendor_facts(vendor, values, needs)
        return cls(
            frozenset(by_encounter),
            frozenset(types),
            claim_by_patient,
            charge_status,
            vendor,
            declared,
            revinclude,
            values,
            needs,
        )


def _add_vendor_facts(
    vendor: str | None,
    values: dict[tuple[str, str], frozenset[str]],
    needs: dict[str, tuple[frozenset[str], ...]],
) -> None:
    """What vendors.toml knows of the vendor, where the statement did not say it."""
    facts = vendor_facts().get("vendors", {}).get(vendor or "", {})
    for rtype, by_param in facts.get("values", {}).items():
        for name, listed in by_param.items():
            values.setdefault((rtype, name), frozenset(listed))
    for rtype, group in facts.get("needs_one_of", {}).items():
        if frozenset(group) not in needs.get(rtype, ()):
            needs[rtype] = (*needs.get(rtype, ()), frozenset(group))


def _vendor(statement: dict) -> str | None:
    """Epic names itself in `software`, Oracle Health in `publisher`; both in the URL."""
    software = str((statement.get("software") or {}).get("name") or "")
    publisher = str(statement.get("publisher") or "")
    url = str((statement.get("implementation") or {}).get("url") or "")
    if software.startswith("Epic") or "epic.com" in url:
        return "epic"
    if publisher.startswith(("Oracle", "Cerner")) or "cerner.com" in url:
        return "oracle"
    return None
