"""What one FHIR server allows, read from its CapabilityStatement: the fetch's strategy."""

from __future__ import annotations

from dataclasses import dataclass, field


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

    def searchable(self, rtype: str, *needed: str) -> bool:
        """The type is searched here with every one of these parameters (when the statement
        lists parameters for it; a statement that lists none is taken at its word on types)."""
        if rtype not in self.types:
            return False
        declared = self.params.get(rtype)
        return declared is None or not declared or set(needed) <= declared

    @classmethod
    def from_capabilities(cls, statement: dict) -> Strategy:
        by_encounter, types, claim_by_patient, charge_status = set(), set(), False, False
        declared: dict[str, frozenset[str]] = {}
        revinclude: dict[str, frozenset[str]] = {}
        for rest in statement.get("rest") or []:
            for resource in rest.get("resource") or []:
                rtype = resource.get("type", "")
                interactions = {
                    (i or {}).get("code") for i in resource.get("interaction") or [] if i
                }
                if interactions and "search-type" not in interactions:
                    continue  # read only (Epic's Provenance, every Binary): never searched
                types.add(rtype)
                params = {p.get("name") for p in resource.get("searchParam") or []}
                declared[rtype] = frozenset(p for p in params if isinstance(p, str))
                revinclude[rtype] = frozenset(
                    v for v in resource.get("searchRevInclude") or [] if isinstance(v, str)
                )
                if "encounter" in params or (rtype == "ChargeItem" and "context" in params):
                    by_encounter.add(rtype)
                if rtype == "Claim" and {"patient", "encounter"} & params:
                    claim_by_patient = True
                if rtype == "ChargeItem" and "-status" in params:
                    charge_status = True
        return cls(
            frozenset(by_encounter),
            frozenset(types),
            claim_by_patient,
            charge_status,
            _vendor(statement),
            declared,
            revinclude,
        )


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
