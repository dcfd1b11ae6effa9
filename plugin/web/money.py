"""The money of one review, explained in words for the review page and the Task page: what was
billed, what is at risk and from which finding, and what kind of prices these are (contract
section 5). Read from the review's JSON (``plugin.report.to_dict``), which the Task keeps."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

PRICES = {
    "charges": "Prices are the clinic's charges on the claim lines, not what the payer allows "
    "(the payer's allowed amount is usually lower, so less may be at stake in payment).",
    "allowed": "Prices are the payer's allowed amounts for these lines.",
}


def dollars(amount: float | None) -> str:
    return f"${amount or 0:,.2f}"


def explain(report: Mapping, findings: Iterable[Mapping]) -> dict:
    """What the pages say about money. ``report`` is the review's JSON; ``findings`` its
    findings (each with ``dollars_at_risk``)."""
    billed = bool(report.get("billed", True))
    total = report.get("billed_total")
    at_risk = float(report.get("dollars_at_risk") or 0.0)
    own = [float(f.get("dollars_at_risk") or 0.0) for f in findings]
    prices = report.get("prices") or "charges"
    if not billed:
        summary = (
            "Nothing billed yet: no charges, so nothing is at risk. Bill what the minutes support."
        )
    elif total is None:
        summary = f"{dollars(at_risk)} at risk (this review was kept without its billed total)."
    elif not total:
        summary = "The billed lines carry no price, so no amount can be put at risk."
    else:
        summary = f"Billed {dollars(total)}; {dollars(at_risk)} of it at risk."
    return {
        "billed": billed,
        "billed_total": total,
        "at_risk": at_risk,
        "summary": summary,
        "prices": prices,
        "prices_words": PRICES.get(prices, PRICES["charges"]) if billed and total else "",
        # findings that share a line: the visit counts each line once, at its largest amount
        "shared": sum(own) > at_risk + 0.005,
    }


def finding_money(amount: float | None) -> str:
    """A finding's own amount at risk, in words."""
    if amount:
        return f"{dollars(amount)} at risk from this finding"
    return "No amount at risk from this finding on its own"
