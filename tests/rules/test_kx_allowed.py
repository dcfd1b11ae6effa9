"""The KX running total counts allowed amounts, not the clinic's charges.

Medicare counts a beneficiary's "incurred expenses" toward the therapy threshold (SSA §1833(g);
the CMS change requests speak of "per-beneficiary incurred expenses amounts"; Noridian's KX
modifier page and Medicare.gov's therapy limits say the same): what Medicare and the patient
pay, that is the allowed amount. contract.md section 2 ("year-to-date therapy spend"): the
payer's adjudicated allowed amount where the Bundle carries one (ClaimResponse or
ExplanationOfBenefit, category `eligible`, else `benefit` plus the patient's share), else units x
the MPFS amount; a payer-reported year-to-date is the starting point; PT+SLP and OT apart.
Medicare Advantage plans are not fee-for-service Part B: no KX threshold applies.
"""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest

from plugin.policy import load_policy
from plugin.review import review_bundle
from plugin.synthetic.visit import VisitBuilder

POLICY = load_policy()
THRESHOLD_2026 = POLICY.kx_years[2026].pt_slp  # $2,480 (kx.toml)
FEE_97112 = POLICY.mpfs.unit_amount("97112", date(2026, 3, 4))[0]
FEE_97110 = POLICY.mpfs.unit_amount("97110", date(2026, 3, 4))[0]
# A unit after the day's first pays half its practice expense (therapy MPPR, ch.5 §10.7).
CUT_97112 = POLICY.mpfs.unit_price("97112", date(2026, 3, 4)).reduced
CUT_97110 = POLICY.mpfs.unit_price("97110", date(2026, 3, 4)).reduced
TWO_97112 = round(FEE_97112 + CUT_97112, 2)  # 2 units on a day: $33.07 + $25.05 = $58.12
MPPR_2 = "MPFS 2026 national (MPPR on 1 of 2 units)"


def _visit(**kwargs) -> VisitBuilder:
    b = VisitBuilder(**kwargs)
    b.proc("97112", "09:00", "09:30")
    b.earlier_visit("enc-0", "2026-02-10")
    return b


def _rules(report) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for f in report.findings:
        found.setdefault(f.rule, []).append(f.message)
    return found


def _spend(report) -> dict[str, tuple[float, str]]:
    return {line.ref: (line.allowed, line.source) for line in report.visit.spend.lines}


def _add(bundle: dict, resource: dict) -> dict:
    rtype = resource["resourceType"]
    bundle["entry"].append(
        {"fullUrl": f"https://ehr.example.org/fhir/{rtype}/{resource['id']}", "resource": resource}
    )
    return bundle


def _item_of(bundle: dict, encounter: str) -> tuple[str, int]:
    """(Claim reference, item sequence) of the billed item naming the encounter."""
    for entry in bundle["entry"]:
        claim = entry["resource"]
        for item in claim.get("item", ()) if claim["resourceType"] == "Claim" else ():
            if item["encounter"][0]["reference"] == f"Encounter/{encounter}":
                return f"Claim/{claim['id']}", item["sequence"]
    raise AssertionError(encounter)


def _ref(bundle: dict, encounter: str) -> str:
    claim, sequence = _item_of(bundle, encounter)
    return f"{claim}#item{sequence}"


def _adjudication(**amounts: float) -> list[dict]:
    return [
        {"category": {"coding": [{"code": category}]}, "amount": {"value": value}}
        for category, value in amounts.items()
    ]


def test_charges_above_but_allowed_below_the_threshold_is_not_flagged():
    """$150 a unit charged, $40 a unit allowed: 18 units are $2,700 of charges (over $2,480,
    which the old charge-based total flagged) but $720 of incurred expenses (under)."""
    b = _visit()
    b.line("97110", 16, amount=16 * 150.0, encounter="enc-0", day="2026-02-10", allowed=16 * 40.0)
    b.line("97112", 2, amount=2 * 150.0, allowed=2 * 40.0)
    report = review_bundle(b.bundle())
    charges = sum(line.amount for line in report.visit.other_lines + report.visit.billed)
    assert charges > THRESHOLD_2026  # what the charge-based total counted
    spent = _spend(report)
    assert sum(a for a, _ in spent.values()) == 720.0
    assert {s for _, s in spent.values()} == {
        "payer-allowed (ClaimResponse/claimresponse-1)",
        "payer-allowed (ClaimResponse/claimresponse-2)",
    }
    assert "missing-kx" not in _rules(report)


def test_claim_response_allowed_wins_over_the_fee_schedule():
    """The payer's adjudicated amount for the line (ClaimResponse.item, itemSequence), not
    10 x the MPFS amount: $2,450 allowed + this visit passes $2,480."""
    b = _visit()
    b.line("97110", 10, amount=500.0, encounter="enc-0", day="2026-02-10", allowed=2450.0)
    b.line("97112", 2, amount=80.0)
    bundle = b.bundle()
    report = review_bundle(bundle)
    spent = _spend(report)
    assert spent[_ref(bundle, "enc-0")] == (2450.0, "payer-allowed (ClaimResponse/claimresponse-1)")
    assert spent[_ref(bundle, "enc-1")] == (TWO_97112, MPPR_2)
    [message] = _rules(report)["missing-kx"]
    assert "payer-allowed 1" in message and "MPFS 2026 national 1" in message
    assert f"${2450.0 + TWO_97112:,.2f}" in message


def test_benefit_plus_patient_share_when_no_eligible_category():
    """No `eligible` adjudication: `benefit` (what Medicare paid) plus the patient's deductible
    and coinsurance is the allowed amount; the `submitted` charge is never read."""
    b = _visit()
    b.line("97110", 10, amount=5000.0, encounter="enc-0", day="2026-02-10")
    b.line("97112", 2, amount=80.0)
    bundle = _add(
        b.bundle(),
        {
            "resourceType": "ClaimResponse",
            "id": "cr-0",
            "status": "active",
            "patient": {"reference": "Patient/pat-1"},
            "request": {"reference": "Claim/claim-1"},
            "outcome": "complete",
            "item": [
                {
                    "itemSequence": 1,
                    "adjudication": _adjudication(
                        submitted=5000.0, benefit=1600.0, deductible=257.0, coinsurance=400.0
                    ),
                }
            ],
        },
    )
    report = review_bundle(bundle)
    assert _spend(report)["Claim/claim-1#item1"] == (2257.0, "payer-allowed (ClaimResponse/cr-0)")
    assert "missing-kx" not in _rules(report)  # 2257 + 66.14 < 2480; the charge would pass it


def _eob(eob_id: str, items: list[dict], claim: str | None = None) -> dict:
    eob = {
        "resourceType": "ExplanationOfBenefit",
        "id": eob_id,
        "status": "active",
        "use": "claim",
        "patient": {"reference": "Patient/pat-1"},
        "outcome": "complete",
        "item": items,
    }
    if claim:
        eob["claim"] = {"reference": claim}
    return eob


def test_eob_allowed_by_claim_and_by_code_and_date_and_billed_elsewhere():
    """ExplanationOfBenefit: matched through `claim` + item sequence; else (no claim) by the
    item's code and servicedDate; an item no billed line matches (another provider's therapy,
    GP) is a spend line of its own: the threshold is per beneficiary across providers."""
    b = _visit()
    b.earlier_visit("enc-00", "2026-01-20")
    b.line("97110", 4, amount=400.0, encounter="enc-00", day="2026-01-20")
    b.line("97110", 4, amount=400.0, encounter="enc-0", day="2026-02-10")
    b.line("97112", 2, amount=80.0)
    bundle = b.bundle()
    claim, sequence = _item_of(bundle, "enc-00")
    _add(
        bundle,
        _eob(
            "eob-1",
            [{"sequence": sequence, "adjudication": _adjudication(eligible=900.0)}],
            claim=claim,
        ),
    )
    code = {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "97110"}]}
    _add(
        bundle,
        _eob(
            "eob-2",
            [
                {
                    "sequence": 1,
                    "productOrService": code,
                    "servicedDate": "2026-02-10",
                    "adjudication": _adjudication(eligible=800.0),
                }
            ],
        ),
    )
    _add(
        bundle,
        _eob(
            "eob-3",
            [
                {
                    "sequence": 1,
                    "productOrService": code,
                    "modifier": [{"coding": [{"code": "GP"}]}],
                    "servicedDate": "2026-01-12",
                    "adjudication": _adjudication(eligible=750.0),
                }
            ],
        ),
    )
    report = review_bundle(bundle)
    spent = _spend(report)
    assert spent[_ref(bundle, "enc-00")] == (900.0, "payer-allowed (ExplanationOfBenefit/eob-1)")
    assert spent[_ref(bundle, "enc-0")] == (800.0, "payer-allowed (ExplanationOfBenefit/eob-2)")
    assert spent["ExplanationOfBenefit/eob-3#item1"] == (
        750.0,
        "payer-allowed (ExplanationOfBenefit/eob-3, billed elsewhere)",
    )
    # 900 + 800 + 750 + 58.12 (2 units of 97112, MPPR) = 2508.12 > 2480; without eob-3 it
    # would stay under.
    [message] = _rules(report)["missing-kx"]
    assert "3 earlier lines" in message and "$2,508.12" in message


def test_fee_schedule_fallback_units_assistant_share_and_locality():
    """No remittance: units x the MPFS amount for the code and year (national non-facility);
    a CQ line is paid at 85%; a configured locality adjusts the RVUs by its GPCIs."""
    b = _visit()
    b.line("97110", 3, mods=("GP", "CQ"), amount=300.0, encounter="enc-0", day="2026-02-10")
    b.line("97112", 2, amount=80.0)
    bundle = b.bundle()
    earlier, mine = _ref(bundle, "enc-0"), _ref(bundle, "enc-1")
    spent = _spend(review_bundle(bundle))
    three = round(FEE_97110 + 2 * CUT_97110, 2)  # the day's first unit in full, 2 with MPPR
    assert spent[earlier] == (
        round(three * 0.85, 2),
        "MPFS 2026 national (MPPR on 2 of 3 units) x 85% (CQ/CO)",
    )
    assert spent[mine] == (TWO_97112, MPPR_2)

    alaska = dataclasses.replace(POLICY, mpfs=dataclasses.replace(POLICY.mpfs, locality="02102-01"))
    local = _spend(review_bundle(bundle, policy=alaska))
    work, pe, mp = next(s for s in POLICY.mpfs.schedules if s.year == 2026).rvus["97112"]
    gpci = next(g for g in POLICY.mpfs.gpcis if g.locality == "02102-01")
    full = round((work * gpci.work + pe * gpci.pe + mp * gpci.mp) * 33.4009, 2)
    cut = round((work * gpci.work + pe * gpci.pe / 2 + mp * gpci.mp) * 33.4009, 2)
    label = "MPFS 2026 locality 02102-01 (GPCI 2025) (MPPR on 1 of 2 units)"
    assert local[mine] == (pytest.approx(full + cut), label)
    assert local[mine][0] > spent[mine][0]  # Alaska costs more than the national amount


def test_line_without_allowed_or_fee_counts_its_charge_with_a_note():
    """A code the fee schedule data does not list and no remittance: counted at its charge,
    and a reading note names the line."""
    b = _visit()
    b.line("97799", 1, amount=2450.0, encounter="enc-0", day="2026-02-10")
    b.line("97112", 2, amount=80.0)
    report = review_bundle(b.bundle())
    assert _spend(report)["Claim/claim-1#item1"] == (2450.0, "charge")
    assert any("Claim/claim-1#item1 (97799)" in n for n in report.visit.notes)
    assert "missing-kx" in _rules(report)


@pytest.mark.parametrize(
    ("sopt", "payer"),
    [("111", "Medicare Part B"), ("1", "Acme Medicare Advantage PPO")],
)
def test_medicare_advantage_plan_is_not_checked(sopt, payer):
    """MA (SOPT 11x "Medicare Managed Care (Includes Medicare Advantage Plans)", or the payer
    table's name match) is Medicare but not fee-for-service: no KX, no targeted review."""
    b = _visit(sopt=sopt, payer=payer)
    b.line("97110", 10, amount=3100.0, encounter="enc-0", day="2026-02-10", allowed=3100.0)
    b.line("97112", 2, amount=80.0)
    report = review_bundle(b.bundle())
    assert report.visit.medicare and report.visit.spend.medicare_advantage
    rules = _rules(report)
    assert not {"missing-kx", "targeted-review-threshold", "kx-threshold-unknown"} & set(rules)
    # the same visit at traditional Medicare (SOPT 121 Medicare FFS) is checked
    b = _visit(sopt="121")
    b.line("97110", 10, amount=3100.0, encounter="enc-0", day="2026-02-10", allowed=3100.0)
    b.line("97112", 2, amount=80.0)
    assert "missing-kx" in _rules(review_bundle(b.bundle()))


def test_visit_in_a_year_without_a_kx_amount_is_reported_not_skipped():
    """2027 is not in kx.toml: missing-kx cannot run, kx-threshold-unknown says so."""
    b = VisitBuilder(day="2027-03-04")
    b.proc("97112", "09:00", "09:30")
    b.line("97112", 2, amount=80.0)
    rules = _rules(review_bundle(b.bundle()))
    assert "missing-kx" not in rules
    [message] = rules["kx-threshold-unknown"]
    assert "2027" in message and "2021-2026" in message


def _eligibility(amount: float, as_of: str, category: str = "PT") -> dict:
    return {
        "resourceType": "CoverageEligibilityResponse",
        "id": "elig-1",
        "status": "active",
        "purpose": ["benefits"],
        "patient": {"reference": "Patient/pat-1"},
        "created": as_of,
        "outcome": "complete",
        "insurance": [
            {
                "coverage": {"reference": "Coverage/cov-1"},
                "item": [
                    {
                        "category": {
                            "coding": [
                                {
                                    "system": "https://x12.org/codes/service-type-codes",
                                    "code": category,
                                }
                            ]
                        },
                        "benefit": [
                            {
                                "type": {"coding": [{"code": "benefit"}]},
                                "allowedMoney": {"value": 2480.0},
                                "usedMoney": {"value": amount},
                            }
                        ],
                    }
                ],
            }
        ],
    }


def test_payer_reported_year_to_date_is_the_starting_point():
    """The eligibility response's `used` therapy amount ($2,450 as of 2026-02-28) already holds
    the 2026-02-10 line; only lines after that date are added (else the $2,000 line would be
    counted twice and pass the $3,000 targeted review amount)."""
    b = _visit()
    b.line("97110", 10, amount=2000.0, encounter="enc-0", day="2026-02-10", allowed=2000.0)
    b.line("97112", 2, amount=80.0)
    bundle = _add(b.bundle(), _eligibility(2450.0, "2026-02-28"))
    rules = _rules(review_bundle(bundle))
    [message] = rules["missing-kx"]
    assert "payer-reported $2,450.00 to 2026-02-28 (CoverageEligibilityResponse/elig-1)" in message
    assert f"${2450.0 + TWO_97112:,.2f}" in message
    assert "targeted-review-threshold" not in rules

    # An OT (AD) amount does not start the PT+SLP total; a report dated after the visit is not
    # a "before this visit" amount either.
    for elig in (_eligibility(2450.0, "2026-02-28", "AD"), _eligibility(2450.0, "2026-03-10")):
        bundle = _add(b.bundle(), elig)
        assert "missing-kx" not in _rules(review_bundle(bundle))


def test_coverage_extension_named_in_policy_data_is_the_starting_point():
    url = "https://payer.example.org/fhir/StructureDefinition/therapy-ytd-pt-slp"
    policy = dataclasses.replace(
        POLICY,
        mpfs=dataclasses.replace(POLICY.mpfs, ytd_coverage_extensions=((url, "PT+SLP"),)),
    )
    b = _visit()
    b.line("97112", 2, amount=80.0)
    bundle = b.bundle()
    coverage = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Coverage"
    )
    coverage["meta"] = {"lastUpdated": "2026-03-01T08:00:00Z"}
    coverage["extension"] = [{"url": url, "valueMoney": {"value": 2470.0, "currency": "USD"}}]
    [message] = _rules(review_bundle(bundle, policy=policy))["missing-kx"]
    assert "payer-reported $2,470.00 to 2026-03-01 (Coverage/cov-1 extension)" in message
    assert "missing-kx" not in _rules(review_bundle(bundle))  # not named: not read


def test_pt_and_ot_totals_are_apart():
    """GO lines count toward OT only: $2,450 of OT does not push a PT visit over."""
    b = _visit()
    b.line("97530", 10, mods=("GO",), amount=2450.0, encounter="enc-0", day="2026-02-10")
    b.allowed[id(b.claim_items[0])] = 2450.0
    b.line("97112", 2, amount=80.0)
    assert "missing-kx" not in _rules(review_bundle(b.bundle()))
