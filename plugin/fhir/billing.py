"""Billed lines from Claim (use = claim) and from ChargeItem as Oracle Health serves it.

Contract section 2, "what was billed": cancelled and replaced Claims are left out; a Claim whose
items name no encounter belongs to its date of service, and its items that name none belong to
the encounter its other items name (Synthea); a quantity given as a numeric string is read with
a note and anything else makes the line unreadable (never read as 1); a negative ChargeItem
quantity is a credit that nets against the same code and modifiers of the visit whatever date it
was posted; a ChargeItem another replaces ($modify) or one offset by a credit no longer counts.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from plugin.domain import BilledLine
from plugin.fhir.index import (
    Index,
    billing_code,
    extension_values,
    is_billing_code_system,
    number,
    obj,
    parse_day,
    seq,
    text,
)

CLAIM_SKIP_STATUS = frozenset({"cancelled", "entered-in-error"})
CHARGE_STATUS = frozenset({"billable", "billed"})
# Claim.related.relationship codes that say the related Claim was superseded by this one.
REPLACES = frozenset({"prior", "replaced", "replaces"})
# Oracle Health's ChargeItem extensions (fhir.cerner.com, ChargeItem "Custom Extensions"):
# `replacing`, "a reference to a resource that this resource is replacing" (what $modify
# writes on the new charge), and `offset-by`, "a resource that this resource is offset by.
# This resource is no longer active when offset".
REPLACING = "/StructureDefinition/replacing"
OFFSET_BY = "/StructureDefinition/offset-by"


class Unreadable(Exception):
    """A billed line whose units cannot be read; the caller records it for review."""


def _units(quantity: object, where: str, index: Index, credits: bool = False) -> int:
    """Units of a line: ``quantity.value`` (1 when absent); a numeric string is read with a note.

    Raises Unreadable for anything else (a fraction, a word, a negative count on a Claim).
    """
    quantity = obj(quantity)
    if "value" not in quantity:
        return 1
    raw = quantity.get("value")
    value = number(raw)
    if value is None and isinstance(raw, str):
        try:
            value = float(raw.strip())
        except ValueError:
            value = None
        if value is not None:
            index.note(f"{where} gives its quantity as the text {raw!r}; read as {value:g}")
    if value is None or value != int(value) or (value < 0 and not credits):
        raise Unreadable(f"{where} has a quantity that is not a whole number of units ({raw!r})")
    return int(value)


def _modifier_codes(concepts: object) -> frozenset[str]:
    # Written out (no obj/seq/text calls): it runs for every billed line.
    codes = set()
    if isinstance(concepts, list):
        for concept in concepts:
            codings = concept.get("coding") if isinstance(concept, dict) else None
            if not isinstance(codings, list):
                continue
            for coding in codings:
                code = coding.get("code") if isinstance(coding, dict) else None
                if isinstance(code, str):
                    code = code.strip().upper()
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


def service_day(item: dict, claim_date: date | None) -> date | None:
    """A Claim item's date of service: its servicedDate or servicedPeriod, else the Claim's."""
    return (
        parse_day(item.get("servicedDate"))
        or parse_day(obj(item.get("servicedPeriod")).get("start"))
        or claim_date
    )


def claim_counts(index: Index, claim: dict) -> bool:
    """Whether a Claim's lines count: use claim, not cancelled, not replaced by another Claim."""
    return _counts(claim, f"Claim/{text(claim.get('id'))}", replaced_claims(index))


def _counts(claim: dict, key: str, replaced: frozenset[str]) -> bool:
    """claim_counts with the Claim's key and the index's replaced Claims already at hand."""
    use = claim.get("use")
    if isinstance(use, str) and use not in ("claim", ""):
        return False
    if text(claim.get("status")) in CLAIM_SKIP_STATUS:
        return False
    return key not in replaced


def replaced_claims(index: Index) -> frozenset[str]:
    """Claims that another Claim's ``related`` marks as prior or replaced."""
    return index.cached("replaced-claims", _replaced, index)


def _replaced(index: Index) -> frozenset[str]:
    found = set()
    for claim in index.by_type.get("Claim", ()):
        related_claims = claim.get("related")
        if not related_claims or text(claim.get("status")) in CLAIM_SKIP_STATUS:
            continue
        for related in seq(related_claims):
            related = obj(related)
            codes = {
                text(obj(c).get("code")).lower()
                for c in seq(obj(related.get("relationship")).get("coding"))
            }
            key = index.key(related.get("claim"))
            if key and codes & REPLACES:
                found.add(key)
    return frozenset(found)


# A Claim whose lines count, as read once per index: the Claim, its key ("Claim/x"), its
# patient's key, and per item (in order) the keys of the encounters the item names.
CountedClaim = tuple[dict, str, str | None, list[list[str]]]


def counted_claims(index: Index) -> list[CountedClaim]:
    """The index's Claims whose lines count (claim_counts), read once per index for both the
    billed lines and the visit's Claims."""
    return index.cached("counted-claims", _counted_claims, index)


def _counted_claims(index: Index) -> list[CountedClaim]:
    claims = index.by_type.get("Claim")
    if not claims:
        return []
    replaced = replaced_claims(index)
    found = []
    for claim in claims:
        key = f"Claim/{text(claim.get('id'))}"
        if _counts(claim, key, replaced):
            patient = index.key(claim.get("patient"))
            found.append((claim, key, patient, _item_encounters(index, claim.get("item"))))
    return found


def _item_encounters(index: Index, items: object) -> list[list[str]]:
    """Per Claim item, the keys of the encounters it names (empty when it names none)."""
    found: list[list[str]] = []
    if not isinstance(items, list):
        return found
    for item in items:
        keys = []
        references = item.get("encounter") if isinstance(item, dict) else None
        if isinstance(references, list):
            for reference in references:
                encounter = index.key(reference)
                if encounter:
                    keys.append(encounter)
        found.append(keys)
    return found


# An unreadable line: (ref, the encounter it names or None, its date of service).
UnreadableLine = tuple[str, str | None, date | None]


def claim_lines(
    index: Index, claim: dict, unreadable: list[UnreadableLine] | None = None
) -> list[BilledLine]:
    """The CPT/HCPCS lines of one Claim, each with the encounter its item names."""
    key = f"Claim/{text(claim.get('id'))}"
    if not _counts(claim, key, replaced_claims(index)):
        return []
    return _claim_lines(index, claim, key, _item_encounters(index, claim.get("item")), unreadable)


# The largest count a float holds exactly: a whole number up to it is read as is.
EXACT_COUNT = 2**53


def _claim_lines(
    index: Index,
    claim: dict,
    key: str,
    encounters: list[list[str]],
    unreadable: list[UnreadableLine] | None,
) -> list[BilledLine]:
    """claim_lines of a Claim that counts, given its items' encounters; each item read once."""
    if not encounters:  # no items
        return []
    items = claim["item"]
    # A Claim whose items name no encounter belongs to its date of service; one whose other
    # items name one encounter gives that encounter its items that name none (Synthea).
    by_date = True
    for keys in encounters:
        if keys:
            by_date = False
            break
    claim_encounter = None if by_date else _claim_encounter(index, key, encounters)
    fallback_day: date | None = None
    fallback_read = False
    lines = []
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        code = billing_code(item.get("productOrService"))
        if code is None:
            continue
        sequence = item.get("sequence", position + 1)
        ref = f"{key}#item{sequence}"
        day = parse_day(item.get("servicedDate"))
        if day is None:
            if not fallback_read:  # the Claim's own date, read once and only when needed
                fallback_day, fallback_read = claim_day(claim), True
            day = service_day(item, fallback_day)
        keys = encounters[position]
        encounter = keys[0] if keys else claim_encounter  # the line belongs to the first one
        quantity = item.get("quantity")
        raw = quantity.get("value", 1) if isinstance(quantity, dict) else 1
        if type(raw) is int and 0 <= raw <= EXACT_COUNT:  # the common case: a whole count
            units = raw
        else:
            try:
                units = _units(quantity, ref, index)
            except Unreadable as exc:
                index.note(f"{exc}; the line is not counted and the visit needs review")
                if unreadable is not None:
                    unreadable.append((ref, encounter, day))
                continue
        net = item.get("net")
        amount = number(net.get("value")) if isinstance(net, dict) else None
        if amount is None:
            unit_price = number(obj(item.get("unitPrice")).get("value"))
            amount = unit_price * units if unit_price is not None else None
        modifier = item.get("modifier")
        lines.append(
            BilledLine(
                ref=ref,
                code=code,
                units=units,
                modifiers=_modifier_codes(modifier) if modifier else frozenset(),
                amount=amount,
                day=day,
                encounter=encounter,
                by_date=by_date,
            )
        )
    return lines


def _claim_encounter(index: Index, key: str, encounters: list[list[str]]) -> str | None:
    """The encounter a Claim's items that name none belong to: the one its other items name
    (Synthea names the Encounter on a Claim's first item only). None, with a note, when the
    others name several, or when every item names its own."""
    named = {keys[0] for keys in encounters if keys}
    if all(encounters):
        return None
    if len(named) == 1:
        return next(iter(named))
    index.note(
        f"{key}: items that name no encounter belong to none of the several its other items "
        "name; they are not counted"
    )
    return None


def claim_item_encounters(index: Index, claim: dict) -> list[str | None]:
    """Per item of a Claim, the encounter its line belongs to: the first it names, else the one
    the Claim's other items name (Synthea), else None (then, if no item names any, the line
    belongs to its date of service)."""
    encounters = _item_encounters(index, claim.get("item"))
    if not any(encounters):
        return [None] * len(encounters)
    named = {keys[0] for keys in encounters if keys}
    shared = next(iter(named)) if len(named) == 1 else None
    return [keys[0] if keys else shared for keys in encounters]


def _extension_codings(resource: dict, suffix: str) -> list[tuple[str, str]]:
    """(system, code) held by Oracle extensions, directly or in a nested ``code`` extension."""
    found = []
    for ext in extension_values(resource, suffix):
        concepts = [ext.get("valueCodeableConcept")]
        concepts += [obj(n).get("valueCodeableConcept") for n in seq(ext.get("extension"))]
        for concept in concepts:
            for coding in seq(obj(concept).get("coding")):
                coding = obj(coding)
                code = text(coding.get("code")).strip().upper()
                if code:
                    found.append((text(coding.get("system")), code))
    return found


def _extension_money(resource: dict, suffix: str) -> float | None:
    for ext in extension_values(resource, suffix):
        value = number(obj(ext.get("valueMoney")).get("value"))
        if value is not None:
            return value
    return None


def charge_code(item: dict) -> str | None:
    """A ChargeItem's CPT/HCPCS code: in ``code``, else the procedure-code extension's coding
    under a CPT/HCPCS system (Oracle may list a non-CPT bill code first)."""
    code = billing_code(item.get("code"))
    if code is not None:
        return code
    codings = _extension_codings(item, "procedure-code")
    return next((c for system, c in codings if is_billing_code_system(system)), None)


def charge_item_line(
    index: Index, item: dict, unreadable: list[UnreadableLine] | None = None
) -> BilledLine | None:
    """One billed line from a ChargeItem with status billable/billed, or None.

    Oracle may list a non-CPT bill code first in its procedure-code extensions: the CPT/HCPCS
    one is picked by its code system. A negative quantity is a credit (netted by the caller).
    """
    if text(item.get("status")) not in CHARGE_STATUS:
        return None
    ref = f"ChargeItem/{text(item.get('id'))}"
    code = charge_code(item)
    if code is None:
        codings = _extension_codings(item, "procedure-code")
        if codings:
            index.note(f"{ref} names no CPT/HCPCS code ({codings[0][0]}|{codings[0][1]})")
        return None
    day = (
        parse_day(item.get("occurrenceDateTime"))
        or parse_day(obj(item.get("occurrencePeriod")).get("start"))
        or parse_day(item.get("enteredDate"))
    )
    try:
        units = _units(item.get("quantity"), ref, index, credits=True)
    except Unreadable as exc:
        index.note(f"{exc}; the line is not counted and the visit needs review")
        if unreadable is not None:
            unreadable.append((ref, index.key(item.get("context")), day))
        return None
    amount = _extension_money(item, "net-price")
    if amount is None:
        unit_price = _extension_money(item, "unit-price")
        amount = unit_price * units if unit_price is not None else None
    if amount is None:
        amount = number(obj(item.get("priceOverride")).get("value"))
    return BilledLine(
        ref=ref,
        code=code,
        units=units,
        modifiers=frozenset(c for _, c in _extension_codings(item, "modifier-code")),
        amount=amount,
        day=day,
        encounter=index.key(item.get("context")),
    )


def superseded_charges(index: Index) -> frozenset[str]:
    """ChargeItems that no longer count, read once per index: one that another billable or
    billed ChargeItem replaces (Oracle's ``$modify`` creates the new one with the ``replacing``
    extension naming the old: it counts once, as the new one), and one that names the credit
    it is offset by (Oracle's ``offset-by``: "no longer active when offset") together with that
    credit. Each is noted."""
    return index.cached("superseded-charges", _superseded, index)


def _superseded(index: Index) -> frozenset[str]:
    found: set[str] = set()
    for item in index.by_type.get("ChargeItem", ()):
        if text(item.get("status")) not in CHARGE_STATUS:
            continue
        ref = f"ChargeItem/{text(item.get('id'))}"
        for ext in extension_values(item, REPLACING):
            old = index.key(ext.get("valueReference"))
            if old and old != ref:
                found.add(old)
                index.note(f"{ref} replaces {old} (a modified charge): {old} is not counted")
        for ext in extension_values(item, OFFSET_BY):
            credit = index.key(ext.get("valueReference"))
            if credit and credit != ref:
                found.update((ref, credit))
                index.note(f"{ref} is offset by {credit}: neither is counted")
    return frozenset(found)


def _net_credits(index: Index, lines: list[BilledLine]) -> list[BilledLine]:
    """Charges and credits of one encounter, code and modifiers netted into one line, whatever
    date each was posted (Oracle posts a credit later than its charge); charges that name no
    encounter net by their date."""
    groups: dict[tuple, list[BilledLine]] = defaultdict(list)
    for line in lines:
        when = None if line.encounter else line.day
        groups[(line.encounter, when, line.code, line.modifiers)].append(line)
    netted = []
    for group in groups.values():
        if len(group) == 1 and group[0].units >= 0:
            netted.append(group[0])
            continue
        units = sum(line.units for line in group)
        amounts = [line.amount for line in group if line.amount is not None]
        credits = [line.ref for line in group if line.units < 0]
        first = next((line for line in group if line.units > 0), group[0])
        if credits:
            index.note(
                f"{', '.join(credits)} credit {group[0].code}: netted to {max(units, 0)} unit(s)"
            )
        if units <= 0:
            continue
        netted.append(
            BilledLine(
                ref=first.ref,
                code=first.code,
                units=units,
                modifiers=first.modifiers,
                amount=sum(amounts) if amounts else None,
                day=first.day,
                encounter=first.encounter,
            )
        )
    return netted


def patient_lines(
    index: Index, patient: str | None
) -> tuple[list[BilledLine], list[UnreadableLine]]:
    """Every billed line of the patient in the index (any encounter), and the refs of lines
    that could not be read; read once per index."""
    key = ("patient-lines", patient)
    return index.cached(key, _patient_lines, index, patient)


def _patient_lines(
    index: Index, patient: str | None
) -> tuple[list[BilledLine], list[UnreadableLine]]:
    lines: list[BilledLine] = []
    unreadable: list[UnreadableLine] = []
    for claim, key, of_patient, encounters in counted_claims(index):
        if patient is None or of_patient == patient:
            lines += _claim_lines(index, claim, key, encounters, unreadable)
    charges = []
    items = index.by_type.get("ChargeItem", ())
    superseded = superseded_charges(index) if items else frozenset()
    for item in items:
        if patient is None or index.key(item.get("subject")) == patient:
            if superseded and f"ChargeItem/{text(item.get('id'))}" in superseded:
                continue
            line = charge_item_line(index, item, unreadable)
            if line:
                charges.append(line)
    if charges:
        lines += _net_credits(index, charges)
    return lines, unreadable
