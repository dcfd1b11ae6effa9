"""The KX running total's inputs: each therapy line's allowed amount, and the payer's own total.

Medicare counts a beneficiary's incurred expenses toward the KX threshold, that is the allowed
amounts (what Medicare and the patient pay), not the clinic's charges (contract.md section 2,
"year-to-date therapy spend"; billing-rules.md section 5 and its Additions). Per billed line:

1. the payer's adjudicated allowed amount, from a ``ClaimResponse`` (``request`` -> the Claim,
   ``item.itemSequence`` -> its item) or an ``ExplanationOfBenefit`` (``claim`` and
   ``item.sequence``, else its item's ``productOrService`` and ``servicedDate``): category
   ``eligible``, else ``benefit`` plus the patient's share (copay, deductible, coinsurance);
2. else units x the Medicare Physician Fee Schedule amount for the code and date
   (``plugin/policy/data/mpfs.toml`` and the CMS RVU files), with the therapy multiple
   procedure payment reduction of the patient's day (``plugin.policy.pricing``; Claims
   Processing Manual ch.5 §10.7); 85% for CQ/CO lines;
3. else the line's charge, with a reading note naming the line.

An ExplanationOfBenefit item that matches no billed line (a service billed by another provider)
is a spend line of its own. A year-to-date amount the payer reports (a
``CoverageEligibilityResponse`` therapy benefit's ``used`` money, or a Coverage extension the
policy data names) is the starting point. Medicare Advantage plans are recognised here, since
the KX threshold is a fee-for-service rule.
"""

from __future__ import annotations

from datetime import date

from plugin.domain import BilledLine, ReportedYtd, Spend, SpendLine
from plugin.fhir.billing import patient_lines
from plugin.fhir.index import (
    Index,
    billing_code,
    extension_values,
    number,
    obj,
    parse_day,
    seq,
    text,
)
from plugin.policy.model import Policy
from plugin.policy.pricing import price_day

GROUP_MODIFIERS = frozenset({"GP", "GN", "GO"})
SKIP_STATUS = frozenset({"cancelled", "entered-in-error", "draft"})
SOPT = "https://nahdo.org/sopt"

__all__ = ["coverage_plan", "visit_spend"]


def visit_spend(
    index: Index,
    policy: Policy,
    patient: str | None,
    claims: list[dict],
    medicare: bool,
    day: date | None = None,
) -> Spend | None:
    """The Spend of a Medicare visit (None for other payers: the KX rules do not read it)."""
    if not medicare:
        return None
    advantage = _advantage(index, policy, patient, claims)
    if advantage:
        return Spend(medicare_advantage=advantage)
    key = ("spend", patient, id(policy))  # read once per patient: an audit has a year of visits
    found = index.memo.get(key)
    if found is None:
        found = index.memo[key] = _patient_spend(index, policy, patient)
    lines, reported, unpriced = found
    for line in unpriced:
        if _counts_by(line, day):
            how = "its charge" if line.source == "charge" else "$0 (no charge either)"
            index.note(
                f"{line.ref} ({line.code}) has no payer-allowed amount and no fee schedule "
                f"amount for its date; the KX running total counts {how}"
            )
    return Spend(lines=lines, reported=reported)


def _counts_by(line: SpendLine, day: date | None) -> bool:
    """Whether a line falls in the visit's year up to the visit (where a note about it matters)."""
    if day is None or line.day is None:
        return True
    return line.day.year == day.year and line.day <= day


# -- Medicare Advantage ---------------------------------------------------------------------


def _coverage(index: Index, patient: str | None, claims: list[dict]) -> dict | None:
    """The visit's Coverage as visit_payer names the payer from: its Claims' first insurance
    Coverage in the Bundle, else the patient's first Coverage that is not cancelled."""
    for claim in claims:
        insurances = claim.get("insurance")
        if not isinstance(insurances, list):
            continue
        for insurance in insurances:
            reference = insurance.get("coverage") if isinstance(insurance, dict) else None
            coverage = index.by_key.get(index.key(reference) or "")
            if coverage:
                return coverage
    for coverage in index.by_type.get("Coverage", ()):
        if (
            index.key(coverage.get("beneficiary")) == patient
            and text(coverage.get("status")) != "cancelled"
        ):
            return coverage
    return None


def _advantage(index: Index, policy: Policy, patient: str | None, claims: list[dict]) -> str | None:
    """Why the visit's plan is Medicare Advantage ("SOPT 111", "payer name ..."), else None."""
    coverage = _coverage(index, patient, claims)
    if coverage is None:
        return None
    names, types = coverage_plan(index, coverage)
    system, prefixes = policy.medicare_sopt_system, policy.medicare_advantage_sopt_prefixes
    for coding_system, code in types:
        if coding_system == system and code.startswith(prefixes):
            return f"Source of Payment Typology {code} (Medicare managed care)"
    for name in names:
        name = name.lower()
        for needle in policy.medicare_advantage_names:
            if needle in name:
                return f"payer name contains {needle!r}"
    return None


# A Coverage as the payer readers see it: each payor's name (its Organization's name, else the
# reference's display; "" when neither) and the (system, code) of each Coverage.type coding.
Plan = tuple[list[str], list[tuple[str, str]]]


def coverage_plan(index: Index, coverage: dict) -> Plan:
    """The payor names and type codes of a Coverage, read once per index (visit_payer names the
    payer from them, and Medicare Advantage is recognised from them)."""
    key = ("plan", id(coverage))  # the Coverage lives as long as the index
    return index.cached(key, _read_plan, index, coverage)


def _read_plan(index: Index, coverage: dict) -> Plan:
    # The payor names written out (no obj/seq/text calls): read for every visit's Coverage.
    names = []
    payors = coverage.get("payor")
    for payor in payors if isinstance(payors, list) else ():
        org = index.by_key.get(index.key(payor) or "")  # a resource: always a dict
        name = org.get("name") if org is not None else None
        if not isinstance(name, str) or not name:
            name = payor.get("display") if isinstance(payor, dict) else None
        names.append(name if isinstance(name, str) else "")
    types = []
    kind = coverage.get("type")
    codings = kind.get("coding") if isinstance(kind, dict) else None
    for coding in codings if isinstance(codings, list) else ():
        coding = obj(coding)
        types.append((text(coding.get("system")), text(coding.get("code"))))
    return names, types


# -- allowed amounts ------------------------------------------------------------------------


def _of_patient(index: Index, rtype: str, patient: str | None) -> list[dict]:
    return [
        r
        for r in index.by_type.get(rtype, ())
        if (patient is None or index.key(r.get("patient")) == patient)
        and text(r.get("status")) not in SKIP_STATUS
    ]


def _categories(adjudication: dict) -> set[str]:
    return {
        text(obj(c).get("code"))
        for c in seq(obj(adjudication.get("category")).get("coding"))
        if text(obj(c).get("code"))
    }


def allowed_amount(adjudications: object, policy: Policy) -> float | None:
    """The allowed amount of one adjudicated item: ``eligible``, else ``benefit`` plus the
    patient's share; None when the item carries neither."""
    mpfs = policy.mpfs
    totals: dict[str, float] = {}
    for adjudication in seq(adjudications):
        adjudication = obj(adjudication)
        value = number(obj(adjudication.get("amount")).get("value"))
        if value is None:
            continue
        for category in _categories(adjudication):
            totals[category] = totals.get(category, 0.0) + value
    allowed = [totals[c] for c in mpfs.allowed_categories if c in totals]
    if allowed:
        return sum(allowed)
    benefit = [totals[c] for c in mpfs.benefit_categories if c in totals]
    if not benefit:
        return None
    return sum(benefit) + sum(totals[c] for c in mpfs.patient_share_categories if c in totals)


def _item_day(item: dict, resource: dict) -> date | None:
    return (
        parse_day(item.get("servicedDate"))
        or parse_day(obj(item.get("servicedPeriod")).get("start"))
        or parse_day(obj(resource.get("billablePeriod")).get("start"))
    )


def _modifiers(item: dict) -> frozenset[str]:
    return frozenset(
        text(obj(c).get("code")).strip().upper()
        for m in seq(item.get("modifier"))
        for c in seq(obj(m).get("coding"))
        if text(obj(c).get("code")).strip()
    )


def _patient_spend(
    index: Index, policy: Policy, patient: str | None
) -> tuple[tuple[SpendLine, ...], tuple[ReportedYtd, ...], list[SpendLine]]:
    """The patient's spend lines, the payer's reported totals, and the lines that have neither
    a payer-allowed nor a fee schedule amount (each visit notes those of its year)."""
    billed = patient_lines(index, patient)[0]
    allowed: dict[str, tuple[float, str]] = {}
    extra: list[SpendLine] = []
    if index.by_type.get("ClaimResponse") or index.by_type.get("ExplanationOfBenefit"):
        therapy = [ln for ln in billed if ln.modifiers & GROUP_MODIFIERS]
        allowed, extra = _payer_allowed(index, policy, patient, therapy)
    lines = _spend_lines(billed, allowed, policy)
    unpriced = [line for line in lines if line.source in ("charge", "none")]
    return tuple(lines + extra), tuple(_reported(index, policy, patient)), unpriced


def _payer_allowed(
    index: Index, policy: Policy, patient: str | None, therapy: list[BilledLine]
) -> tuple[dict[str, tuple[float, str]], list[SpendLine]]:
    """The payer's allowed amount of each therapy line it adjudicated, by the line's ref, and
    the spend lines of therapy services it adjudicated that were billed elsewhere."""
    refs = {ln.ref for ln in therapy}
    allowed: dict[str, tuple[float, str]] = {}
    for response in _of_patient(index, "ClaimResponse", patient):
        if text(response.get("outcome")) == "error":
            continue
        key = f"ClaimResponse/{text(response.get('id'))}"
        claim = index.key(response.get("request"))
        for item in seq(response.get("item")):
            item = obj(item)
            ref = f"{claim}#item{item.get('itemSequence')}"
            amount = allowed_amount(item.get("adjudication"), policy)
            if ref in refs and amount is not None and ref not in allowed:
                allowed[ref] = (amount, f"payer-allowed ({key})")

    extra: list[SpendLine] = []
    taken: set[str] = set()  # lines an ExplanationOfBenefit item already matched
    for eob in _of_patient(index, "ExplanationOfBenefit", patient):
        if text(eob.get("outcome")) == "error":
            continue
        key = f"ExplanationOfBenefit/{text(eob.get('id'))}"
        claim = index.key(eob.get("claim"))
        for position, item in enumerate(seq(eob.get("item"))):
            item = obj(item)
            amount = allowed_amount(item.get("adjudication"), policy)
            if amount is None:
                continue
            sequence = item.get("sequence", position + 1)
            ref = f"{claim}#item{sequence}" if claim else None
            code = billing_code(item.get("productOrService"))
            day = _item_day(item, eob)
            if ref not in refs or ref in taken:  # else the same code on the same day
                ref = next(
                    (
                        ln.ref
                        for ln in therapy
                        if ln.code == code and ln.day == day and ln.ref not in taken
                    ),
                    None,
                )
            if ref is not None:
                taken.add(ref)
                if ref not in allowed:  # a ClaimResponse for the same line wins
                    allowed[ref] = (amount, f"payer-allowed ({key})")
                continue
            modifiers = _modifiers(item) & GROUP_MODIFIERS
            if code and modifiers:  # a therapy service billed elsewhere: the payer counted it
                extra.append(
                    SpendLine(
                        f"{key}#item{sequence}",
                        code,
                        day,
                        modifiers,
                        amount,
                        f"payer-allowed ({key}, billed elsewhere)",
                    )
                )
    return allowed, extra


def _spend_lines(
    billed: list[BilledLine], allowed: dict[str, tuple[float, str]], policy: Policy
) -> list[SpendLine]:
    """Each therapy line's (GP/GN/GO) allowed amount: the payer's, else units x the fee schedule
    amount with the day's multiple procedure payment reduction (a share of it for CQ/CO lines),
    else its charge, else $0. The reduction ranks the fee-schedule-priced lines of the patient's
    day among themselves (a payer-priced line already carries the payer's own)."""
    assistants = frozenset(policy.assistant_modifiers)
    share = policy.assistant_payment_share
    therapy = [(line, line.modifiers & GROUP_MODIFIERS) for line in billed]
    therapy = [(line, groups) for line, groups in therapy if groups]
    by_day: dict[date, list[BilledLine]] = {}
    for line, _ in therapy:
        if line.day and not (allowed and line.ref in allowed):
            by_day.setdefault(line.day, []).append(line)
    fees: dict[str, tuple[float, str] | None] = {}
    for day, lines in by_day.items():
        priced = price_day(policy.mpfs, day, [(ln.code, ln.units) for ln in lines])
        fees.update((ln.ref, fee) for ln, fee in zip(lines, priced, strict=True))
    found = []
    for line, groups in therapy:
        payer = allowed.get(line.ref) if allowed else None
        if payer is not None:
            found.append(SpendLine(line.ref, line.code, line.day, groups, payer[0], payer[1]))
            continue
        fee = fees.get(line.ref)
        if fee is not None:
            total, label = fee
            if line.modifiers & assistants:
                total *= share
                label += f" x {share:.0%} (CQ/CO)"
            found.append(SpendLine(line.ref, line.code, line.day, groups, round(total, 2), label))
        elif line.amount is not None:
            found.append(SpendLine(line.ref, line.code, line.day, groups, line.amount, "charge"))
        else:
            found.append(SpendLine(line.ref, line.code, line.day, groups, 0.0, "none"))
    return found


# -- the payer's own year-to-date -----------------------------------------------------------


def _reported(index: Index, policy: Policy, patient: str | None) -> list[ReportedYtd]:
    mpfs = policy.mpfs
    found: list[ReportedYtd] = []
    if index.by_type.get("CoverageEligibilityResponse"):
        found += _eligibility_reported(index, policy, patient)
    if mpfs.ytd_coverage_extensions:
        found += _coverage_reported(index, policy, patient)
    return found


def _eligibility_reported(index: Index, policy: Policy, patient: str | None) -> list[ReportedYtd]:
    """The therapy benefit ``used`` money of the patient's CoverageEligibilityResponses."""
    mpfs = policy.mpfs
    found = []
    for response in _of_patient(index, "CoverageEligibilityResponse", patient):
        if text(response.get("outcome")) == "error":
            continue
        key = f"CoverageEligibilityResponse/{text(response.get('id'))}"
        as_of = (
            parse_day(response.get("servicedDate"))
            or parse_day(obj(response.get("servicedPeriod")).get("end"))
            or parse_day(response.get("created"))
        )
        for insurance in seq(response.get("insurance")):
            for item in seq(obj(insurance).get("item")):
                item = obj(item)
                codes = {
                    text(obj(c).get("code")) for c in seq(obj(item.get("category")).get("coding"))
                }
                groups = {
                    mpfs.ytd_category_groups[c] for c in codes if c in mpfs.ytd_category_groups
                }
                if len(groups) != 1:
                    continue
                for benefit in seq(item.get("benefit")):
                    benefit = obj(benefit)
                    types = {
                        text(obj(c).get("code"))
                        for c in seq(obj(benefit.get("type")).get("coding"))
                    }
                    used = number(obj(benefit.get("usedMoney")).get("value"))
                    if used is None or (types and "benefit" not in types):
                        continue
                    if as_of is None:
                        index.note(f"{key} reports a therapy amount used but no date; not used")
                        continue
                    found.append(ReportedYtd(groups.pop(), used, as_of, key))
                    break
    return found


def _coverage_reported(index: Index, policy: Policy, patient: str | None) -> list[ReportedYtd]:
    """The year-to-date money of the Coverage extensions the policy names."""
    mpfs = policy.mpfs
    found = []
    for coverage in index.by_type.get("Coverage", ()):
        if patient is not None and index.key(coverage.get("beneficiary")) != patient:
            continue
        key = f"Coverage/{text(coverage.get('id'))}"
        as_of = parse_day(obj(coverage.get("meta")).get("lastUpdated"))
        for url, group in mpfs.ytd_coverage_extensions:
            for ext in extension_values(coverage, url):
                used = number(obj(ext.get("valueMoney")).get("value"))
                if used is None:
                    continue
                if as_of is None:
                    index.note(f"{key} extension {url} has no date (meta.lastUpdated); not used")
                    continue
                found.append(ReportedYtd(group, used, as_of, f"{key} extension"))
    return found
