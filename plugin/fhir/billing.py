"""Billed lines from Claim (use = claim) and from ChargeItem as Oracle Health serves it."""

from __future__ import annotations

from datetime import date

from plugin.domain import BilledLine
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

CLAIM_SKIP_STATUS = frozenset({"cancelled", "entered-in-error"})
CHARGE_STATUS = frozenset({"billable", "billed"})


def _units(quantity: object) -> int:
    value = number(obj(quantity).get("value"))
    if value is None:
        return 1
    return max(0, int(round(value)))


def _modifier_codes(concepts: object) -> frozenset[str]:
    codes = set()
    for concept in seq(concepts):
        for coding in seq(obj(concept).get("coding")):
            code = text(obj(coding).get("code")).strip().upper()
            if code:
                codes.add(code)
    return frozenset(codes)


def claim_day(claim: dict) -> date | None:
    """A Claim's date: billablePeriod.start, else an item's servicedDate, else created."""
    day = parse_day(obj(claim.get("billablePeriod")).get("start"))
    if day:
        return day
    for item in seq(claim.get("item")):
        day = parse_day(obj(item).get("servicedDate"))
        if day:
            return day
    return parse_day(claim.get("created"))


def claim_lines(index: Index, claim: dict) -> list[BilledLine]:
    """The CPT/HCPCS lines of one Claim, each with the encounter its item names."""
    if (
        text(claim.get("use")) not in ("claim", "")
        or text(claim.get("status")) in CLAIM_SKIP_STATUS
    ):
        return []
    key = f"Claim/{text(claim.get('id'))}"
    fallback_day = claim_day(claim)
    lines = []
    for position, item in enumerate(seq(claim.get("item"))):
        item = obj(item)
        code = billing_code(item.get("productOrService"))
        if code is None:
            continue
        units = _units(item.get("quantity"))
        amount = number(obj(item.get("net")).get("value"))
        if amount is None:
            unit_price = number(obj(item.get("unitPrice")).get("value"))
            amount = unit_price * units if unit_price is not None else None
        day = (
            parse_day(item.get("servicedDate"))
            or parse_day(obj(item.get("servicedPeriod")).get("start"))
            or fallback_day
        )
        encounters = [index.key(e) for e in seq(item.get("encounter"))]
        encounter = next((e for e in encounters if e), None)
        sequence = item.get("sequence", position + 1)
        lines.append(
            BilledLine(
                ref=f"{key}#item{sequence}",
                code=code,
                units=units,
                modifiers=_modifier_codes(item.get("modifier")),
                amount=amount,
                day=day,
                encounter=encounter,
            )
        )
    return lines


def _extension_code(resource: dict, suffix: str) -> list[str]:
    """Codes held by Oracle extensions, either directly or in a nested ``code`` extension."""
    found = []
    for ext in extension_values(resource, suffix):
        concepts = [ext.get("valueCodeableConcept")]
        concepts += [obj(n).get("valueCodeableConcept") for n in seq(ext.get("extension"))]
        for concept in concepts:
            for coding in seq(obj(concept).get("coding")):
                code = text(obj(coding).get("code")).strip().upper()
                if code:
                    found.append(code)
    return found


def _extension_money(resource: dict, suffix: str) -> float | None:
    for ext in extension_values(resource, suffix):
        value = number(obj(ext.get("valueMoney")).get("value"))
        if value is not None:
            return value
    return None


def charge_item_line(index: Index, item: dict) -> BilledLine | None:
    """One billed line from a ChargeItem with status billable/billed, or None."""
    if text(item.get("status")) not in CHARGE_STATUS:
        return None
    code = billing_code(item.get("code"))
    if code is None:
        codes = _extension_code(item, "procedure-code")
        code = codes[0] if codes else None
    if code is None:
        return None
    units = _units(item.get("quantity"))
    amount = _extension_money(item, "net-price")
    if amount is None:
        unit_price = _extension_money(item, "unit-price")
        amount = unit_price * units if unit_price is not None else None
    if amount is None:
        amount = number(obj(item.get("priceOverride")).get("value"))
    day = (
        parse_day(item.get("occurrenceDateTime"))
        or parse_day(obj(item.get("occurrencePeriod")).get("start"))
        or parse_day(item.get("enteredDate"))
    )
    return BilledLine(
        ref=f"ChargeItem/{text(item.get('id'))}",
        code=code,
        units=units,
        modifiers=frozenset(_extension_code(item, "modifier-code")),
        amount=amount,
        day=day,
        encounter=index.key(item.get("context")),
    )


def patient_lines(index: Index, patient: str | None) -> list[BilledLine]:
    """Every billed line of the patient in the index (any encounter); read once per index."""
    return index.cached(("patient-lines", patient), lambda: _patient_lines(index, patient))


def _patient_lines(index: Index, patient: str | None) -> list[BilledLine]:
    lines: list[BilledLine] = []
    for claim in index.by_type.get("Claim", ()):
        if patient is None or index.key(claim.get("patient")) == patient:
            lines += claim_lines(index, claim)
    for item in index.by_type.get("ChargeItem", ()):
        if patient is None or index.key(item.get("subject")) == patient:
            line = charge_item_line(index, item)
            if line:
                lines.append(line)
    return lines
