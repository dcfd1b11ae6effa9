"""The episode before signing (issue 13): the review page's episode block and the CDS Hooks
patient-view card say the treatment day since the last progress report, how far the plan of
care is certified, what falls due at the next visit, and plainly when the episode is unknown."""

from __future__ import annotations

import time
import uuid
from datetime import date, timedelta

import pytest
from flask import Flask
from joserfc import jwt

from plugin.policy import load_policy
from plugin.review import review_bundle
from plugin.rules.episode import episode_status
from plugin.synthetic.visit import clean_visit
from plugin.web import create_app
from plugin.web.cds_hooks import CdsClient, create_cds_blueprint
from plugin.web.sessions import LaunchSession
from plugin.web.settings import Settings
from plugin.web.visits import StaticVisitSource
from tests.web.conftest import bound_session
from tests.web.test_cds_hooks import APP, KEY

DAY = date(2026, 3, 4)


def episode(treatment_days: int, plan_days: int = 60, **kwargs) -> dict:
    """A clean PT visit on DAY that is treatment day ``treatment_days`` of an episode whose
    certified plan began on the first of them and runs ``plan_days`` days."""
    b = clean_visit(plan_of_care=False, **kwargs)
    first = DAY - timedelta(days=2 * (treatment_days - 1))
    b.plan_of_care(start=first.isoformat(), end=(first + timedelta(days=plan_days - 1)).isoformat())
    for n in range(treatment_days - 1):
        day = (first + timedelta(days=2 * n)).isoformat()
        b.earlier_visit(f"enc-h{n}", day, note="Balance training with verbal cues.")
    return b.bundle()


def without_plan() -> dict:
    bundle = clean_visit().bundle()
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "CarePlan"]
    return bundle


def status(bundle: dict):
    report = review_bundle(bundle, encounter_id="enc-1")
    return episode_status(report.visit, load_policy())


# --- the lines ----------------------------------------------------------------------------------


def test_day_nine_warns_that_the_report_is_due_next_visit():
    (pt,) = status(episode(9))
    assert pt.day_number == 9
    assert pt.day_line.startswith("PT treatment day 9 of 10 since the episode start")
    first = DAY - timedelta(days=16)
    assert pt.plan == f"plan of care certified through {first + timedelta(days=59)}"
    assert pt.warnings == ("progress report due next visit (day 10)",)


@pytest.mark.parametrize(
    ("days", "warning"),
    [
        (3, None),
        (10, "progress report due at this visit (day 10 of 10)"),
        (11, "progress report overdue (day 11)"),
    ],
)
def test_the_report_warning_follows_the_day(days, warning):
    (pt,) = status(episode(days))
    assert pt.day_number == days
    assert [w for w in pt.warnings if "progress report" in w] == ([warning] if warning else [])


def test_recertification_due_within_the_policy_window():
    # the plan began 16 days ago and runs 21 days: it ends in 4 days (policy: warn within 7)
    (pt,) = status(episode(9, plan_days=21))
    end = DAY + timedelta(days=4)
    assert pt.certified_through == end
    assert f"recertification due by {end} (in 4 days)" in pt.warnings
    (far,) = status(episode(9, plan_days=30))  # 13 days left: no warning yet
    assert not [w for w in far.warnings if "recertification" in w]


def test_an_unknown_episode_is_said_plainly():
    (pt,) = status(without_plan())
    assert (
        pt.unknown
        == "PT episode unknown: no PT plan of care could be read (none in the record read)"
    )
    assert pt.lines == (pt.unknown,)


def test_no_episode_lines_for_a_payer_that_requires_none():
    assert status(episode(9, payer="Acme Commercial PPO", sopt=None)) == ()


def test_a_signer_not_in_the_record_leaves_the_certification_unknown():
    # A CDS prefetch holds no Practitioners: the physician who co-signed cannot be told from
    # anyone else, so certification is unknown, not missing (no poc-not-certified error).
    bundle = episode(12, plan_days=80)
    bundle["entry"] = [
        e
        for e in bundle["entry"]
        if not (e["resource"]["resourceType"] == "Practitioner" and e["resource"]["id"] == "md")
    ]
    report = review_bundle(bundle, encounter_id="enc-1")
    rules = {f.rule: f.message for f in report.findings}
    assert "poc-not-certified" not in rules
    assert "Practitioner/md, who signed it, is not in the record read" in rules["episode-unknown"]


# --- the review page ----------------------------------------------------------------------------


def page_for(tmp_path, bundle: dict) -> str:
    settings = Settings(
        testing=True,
        task_db=f"sqlite:///{tmp_path}/t.sqlite",
        outbox_db=f"sqlite:///{tmp_path}/o.sqlite",
        session_db=f"sqlite:///{tmp_path}/s.sqlite",
    ).validated()
    app = create_app(settings, visits=StaticVisitSource({"enc-1": bundle}))
    session = LaunchSession(
        iss="http://ehr.test/fhir",
        patient="Patient/pat-1",
        encounter="Encounter/enc-1",
        fhir_user="Practitioner/pt",
        token={"access_token": "tok"},
    )
    sid = bound_session(app, session)
    page = app.test_client().get(f"/review/enc-1?sid={sid}")
    assert page.status_code == 200
    return page.get_data(as_text=True)


def test_the_review_page_shows_the_episode_before_signing(tmp_path):
    html = page_for(tmp_path, episode(9, plan_days=21))
    end = DAY + timedelta(days=4)
    assert 'data-episode-day="9"' in html
    assert f'data-certified-through="{end}"' in html
    assert "PT treatment day 9 of 10 since the episode start" in html
    assert f"plan of care certified through {end}" in html
    assert "progress report due next visit (day 10)" in html
    assert f"recertification due by {end} (in 4 days)" in html
    # before the sign-off button
    assert html.index("data-episode-day") < html.index('id="sign-off"')


def test_the_review_page_says_when_the_episode_is_unknown(tmp_path):
    html = page_for(tmp_path, without_plan())
    assert 'data-episode-known="false"' in html
    assert "PT episode unknown: no PT plan of care could be read" in html
    assert "data-certified-through" not in html


def test_no_episode_block_when_the_payer_requires_none(tmp_path):
    html = page_for(tmp_path, episode(9, payer="Acme Commercial PPO", sopt=None))
    assert 'class="episode"' not in html and "data-episode-day" not in html


# --- the CDS Hooks patient-view card ------------------------------------------------------------

SERVICE = "unitguard-patient-view"


def patient_view(bundle: dict) -> list[dict]:
    app = Flask(__name__)
    ehr = CdsClient("https://ehr.test/cds-client", {"keys": [KEY.as_dict(private=False)]})
    app.register_blueprint(create_cds_blueprint([ehr], APP))
    claims = {
        "iss": "https://ehr.test/cds-client",
        "aud": f"{APP}/cds-services/{SERVICE}",
        "exp": int(time.time()) + 300,
        "iat": int(time.time()),
        "jti": str(uuid.uuid4()),
    }
    header = {"alg": "RS384", "kid": "ehr-1", "typ": "JWT"}
    token = jwt.encode(header, claims, KEY, algorithms=["RS384"])
    body = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "fhirServer": "https://ehr.test/fhir",
        "context": {"patientId": "pat-1", "userId": "Practitioner/pt"},
        "prefetch": {"everything": bundle},
    }
    resp = app.test_client().post(
        f"/cds-services/{SERVICE}", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert resp.status_code == 200
    return resp.get_json()["cards"]


def test_the_patient_view_card_says_the_same_when_the_chart_is_opened():
    cards = [c for c in patient_view(episode(9, plan_days=21)) if "treatment day" in c["summary"]]
    assert len(cards) == 1
    card = cards[0]
    assert card["summary"].startswith("PT treatment day 9 of 10 since the episode start")
    assert len(card["summary"]) < 140 and card["indicator"] == "warning"
    assert "progress report due next visit (day 10)" in card["detail"]
    assert f"recertification due by {DAY + timedelta(days=4)}" in card["detail"]
    assert card["links"][0]["type"] == "smart"


def test_a_quiet_episode_is_an_info_card_and_an_unknown_one_a_warning():
    (quiet,) = [c for c in patient_view(episode(3)) if "treatment day" in c["summary"]]
    assert quiet["indicator"] == "info"
    unknown = [c for c in patient_view(without_plan()) if "episode unknown" in c["summary"]]
    assert len(unknown) == 1 and unknown[0]["indicator"] == "warning"
