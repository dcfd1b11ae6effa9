"""Roles read from NUCC taxonomy codes (contract §2, "who furnished it"): the therapy codes and
their specialties, and the physicians and NPPs who certify a plan of care."""

from __future__ import annotations

import pytest

from plugin.fhir.practitioners import NUCC_SYSTEM, role_from_concept


@pytest.mark.parametrize(
    ("code", "role"),
    [
        ("225100000X", "PT"),
        ("2251G0304X", "PT"),  # a PT specialty (geriatrics)
        ("225200000X", "PTA"),
        ("225X00000X", "OT"),
        ("224Z00000X", "OTA"),
        ("235Z00000X", "SLP"),
        ("208D00000X", "MD"),  # US Core's PractitionerRole example: General Practice
        ("207Q00000X", "MD"),  # Family Medicine
        ("363L00000X", "NP"),
        ("363A00000X", "PA"),
        ("364S00000X", "CNS"),
        ("261QR0400X", None),  # a rehabilitation clinic is no person's role
    ],
)
def test_nucc_codes_give_the_role(code, role):
    assert role_from_concept({"coding": [{"system": NUCC_SYSTEM, "code": code}]}) == role
