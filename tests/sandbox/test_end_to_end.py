"""The whole flow on loopback over real HTTP: sandbox chart -> iframe -> app launch -> review."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from plugin.ehr import FetchStats, fetch_visit
from plugin.review import review_bundle
from smart_launch import FhirClient, make_session
from tests.loopback import APPS, running_app, running_sandbox

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
SCOPES = ("launch", "openid", "fhirUser", "offline_access", "patient/*.rs", "user/Task.cu")


@contextmanager
def app_against(ehr):
    with running_app(ehr) as base:
        ehr.register("unitguard", f"{base}/callback")
        yield base


def launch_from_chart(ehr, encounter: str) -> requests.Response:
    browser = requests.Session()
    frame = browser.get(f"{ehr.base_url}/chart/launch/{encounter}")
    src = re.search(r'<iframe id="app" title="unitguard" src="([^"]+)"', frame.text).group(1)
    return browser.get(src.replace("&amp;", "&"), timeout=30)


@pytest.mark.parametrize(
    ("profile", "fixture", "billed"),
    [
        ("full", "units_exceed", True),
        ("epic", "units_exceed", False),
        ("oracle", "oracle_chargeitem", True),
    ],
)
def test_chart_launch_to_review_page(profile, fixture, billed):
    encounter = f"{fixture.replace('_', '-')}-enc-1"
    with running_sandbox(profile) as ehr, app_against(ehr):
        page = launch_from_chart(ehr, encounter)
    assert page.status_code == 200, page.text[:500]
    assert f"/review/{encounter}" in page.url
    html = page.text
    if fixture == "units_exceed":
        assert f'data-code="97112" data-billed-units="{3 if billed else 0}"' in html
        assert ('data-rule="units-exceed-time"' in html) is billed
    else:
        assert 'data-verdict="supported"' in html
    # the episode, read over HTTP as each vendor serves it, is shown before signing
    assert 'data-episode-known="true"' in html
    assert re.search(r'data-episode-day="1"\s+data-certified-through="\d{4}-\d{2}-\d{2}"', html)
    assert "PT treatment day 1 of 10 since the episode start" in html


@pytest.mark.parametrize("profile", ["full", "epic", "oracle"])
def test_fetch_visit_over_http_reviews_like_the_file(profile):
    fixture = "oracle_chargeitem" if profile == "oracle" else "kx_missing"
    encounter = f"{fixture.replace('_', '-')}-enc-1"
    bundle = json.loads((FIXTURES / f"{fixture}.json").read_text())
    with running_sandbox(profile, open_access=True) as ehr:
        stats = FetchStats()
        fetched = fetch_visit(
            FhirClient(ehr.fhir, session=make_session(retries=0)), encounter, stats=stats
        )
    assert stats.rounds <= 6
    # the searches were built to the vendor's rules: no refusal came back as a note
    assert not [n for n in outcome_texts(fetched) if "refused" in n]
    assert sum(e["resource"]["resourceType"] == "Observation" for e in fetched["entry"]) == sum(
        e["resource"]["resourceType"] == "Observation" for e in bundle["entry"]
    )
    from_file = review_bundle(bundle, encounter_id=encounter)
    over_http = review_bundle(fetched, encounter_id=encounter)
    if profile == "epic":  # no charges readable: only the non-billing findings compare
        assert over_http.visit.billed is None
        billing = {"missing-kx", "targeted-review-threshold"}
        assert {f.rule for f in over_http.findings} == {
            f.rule for f in from_file.findings if f.rule not in billing
        }
    else:
        assert [(f.rule, f.code) for f in over_http.findings] == [
            (f.rule, f.code) for f in from_file.findings
        ]


def outcome_texts(bundle: dict) -> list[str]:
    return [
        issue.get("diagnostics", "")
        for e in bundle["entry"]
        if (e.get("search") or {}).get("mode") == "outcome"
        for issue in e["resource"]["issue"]
    ]


class WithoutCategory(FhirClient):
    """A client that drops the Observation category, as the fetch did before Epic refused it."""

    def search(self, resource_type, params=None):
        if resource_type == "Observation":
            params = {k: v for k, v in (params or {}).items() if k != "category"}
        return super().search(resource_type, params)


def test_a_search_the_sandbox_refuses_becomes_a_note_and_the_review_goes_on():
    encounter = "kx-missing-enc-1"
    with running_sandbox("epic", open_access=True) as ehr:
        client = WithoutCategory(ehr.fhir, session=make_session(retries=0))
        fetched = fetch_visit(client, encounter)
    refused = [n for n in outcome_texts(fetched) if "refused the Observation search (400" in n]
    assert len(refused) == 1 and "category" in refused[0]
    assert "kx-missing-pat-1" not in refused[0]
    assert not [e for e in fetched["entry"] if e["resource"]["resourceType"] == "Observation"]
    report = review_bundle(fetched, encounter_id=encounter)
    assert any("refused the Observation search" in n for n in report.visit.notes)
    # Unread is not absent: the visit's measure was not read, so it is not reported missing.
    rules = {f.rule: f.message for f in report.findings}
    assert "doc-no-objective-measure" not in rules
    assert rules["reading-incomplete"] == (
        "Observations could not be read from Epic: objective measures not checked"
    )
    assert [(u.resource, u.ehr) for u in report.visit.unread] == [("Observation", "Epic")]


def pkce_pair(verifier: str = "v" * 64) -> tuple[str, str]:
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.decode().rstrip("=")


def authorize(
    ehr, challenge: str, scope: str = "launch patient/*.rs", **extra
) -> requests.Response:
    launch = ehr.launch("units-exceed-enc-1", "units-exceed-pat-1")
    params = {
        "response_type": "code",
        "client_id": "c1",
        "redirect_uri": "http://app.test/cb",
        "scope": scope,
        "state": "s",
        "aud": ehr.fhir,
        "launch": launch,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }
    return requests.get(f"{ehr.base_url}/oauth/authorize", params=params, allow_redirects=False)


def code_of(response: requests.Response) -> str:
    return re.search(r"code=([^&]+)", response.headers["Location"]).group(1)


def test_pkce_scopes_and_tokens():
    with running_sandbox("full") as ehr:
        ehr.register("c1", "http://app.test/cb")
        verifier, challenge = pkce_pair()
        token_url = f"{ehr.base_url}/oauth/token"
        # wrong verifier refused
        code = code_of(authorize(ehr, challenge))
        bad = requests.post(
            token_url,
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": "http://app.test/cb",
                "client_id": "c1",
                "code_verifier": "w" * 64,
            },
        )
        assert bad.status_code == 400 and "PKCE" in bad.json()["error_description"]
        # plain PKCE refused at authorize
        plain = authorize(ehr, challenge, code_challenge_method="plain")
        assert "error=invalid_request" in plain.headers["Location"]
        # a good exchange gives patient/encounter context
        code = code_of(authorize(ehr, challenge))
        good = requests.post(
            token_url,
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": "http://app.test/cb",
                "client_id": "c1",
                "code_verifier": verifier,
            },
        )
        body = good.json()
        assert body["patient"] == "units-exceed-pat-1"
        assert body["encounter"] == "units-exceed-enc-1"
        auth = {"Authorization": f"Bearer {body['access_token']}"}
        fhir = ehr.fhir
        assert requests.get(f"{fhir}/Encounter/units-exceed-enc-1", headers=auth).ok
        # another patient's data is outside the token's compartment
        assert requests.get(f"{fhir}/Encounter/kx-missing-enc-1", headers=auth).status_code == 404
        found = requests.get(f"{fhir}/Encounter", headers=auth).json()
        assert {e["resource"]["id"] for e in found["entry"]} <= {
            "units-exceed-enc-1",
            "units-exceed-enc-0",
        }
        # scope escalation: no write scope granted
        task = {"resourceType": "Task", "status": "requested", "intent": "order"}
        assert requests.post(f"{fhir}/Task", json=task, headers=auth).status_code == 403
        # no token at all
        assert requests.get(f"{fhir}/Encounter/units-exceed-enc-1").status_code == 401
        ehr.sandbox.grants.expire_all()
        assert requests.get(f"{fhir}/Encounter/units-exceed-enc-1", headers=auth).status_code == 401


def test_profile_refusals():
    with running_sandbox("epic", open_access=True) as ehr:
        task = {"resourceType": "Task", "status": "requested", "intent": "order"}
        assert requests.post(f"{ehr.fhir}/Task", json=task).status_code == 405
        assert requests.get(f"{ehr.fhir}/ChargeItem").status_code == 404
        found = requests.get(
            f"{ehr.fhir}/Procedure", params={"encounter": "Encounter/units-exceed-enc-1"}
        ).json()
        assert any(e["search"]["mode"] == "outcome" for e in found["entry"])
    with running_sandbox("oracle", open_access=True) as ehr:
        refused = requests.get(
            f"{ehr.fhir}/Procedure", params={"encounter": "Encounter/units-exceed-enc-1"}
        )
        assert refused.status_code == 400
        assert "not supported" in refused.json()["issue"][0]["diagnostics"]
        charges = requests.get(
            f"{ehr.fhir}/ChargeItem",
            params={"context": "Encounter/oracle-chargeitem-enc-1", "-status": "billable"},
        ).json()
        assert len(charges["entry"]) == 2
        assert requests.get(f"{ehr.fhir}/Task").status_code == 404
    with running_sandbox("full", open_access=True) as ehr:
        task = {
            "resourceType": "Task",
            "status": "requested",
            "intent": "order",
            "identifier": [{"system": "s", "value": "v"}],
        }
        first = requests.post(
            f"{ehr.fhir}/Task", json=task, headers={"If-None-Exist": "identifier=s|v"}
        )
        again = requests.post(
            f"{ehr.fhir}/Task", json=task, headers={"If-None-Exist": "identifier=s|v"}
        )
        assert (first.status_code, again.status_code) == (201, 200)
        assert again.json()["id"] == first.json()["id"]
        url = f"{ehr.fhir}/Task/{first.json()['id']}"
        ok = requests.put(
            url, json=dict(first.json(), status="completed"), headers={"If-Match": 'W/"1"'}
        )
        stale = requests.put(url, json=first.json(), headers={"If-Match": 'W/"1"'})
        assert (ok.status_code, stale.status_code) == (200, 412)
        invalid = requests.post(
            f"{ehr.fhir}/Task", json={"resourceType": "Task", "status": 42, "intent": "order"}
        )
        assert invalid.status_code == 422


def test_faults_retries_and_paging(monkeypatch):
    monkeypatch.setattr("urllib3.util.retry.time.sleep", lambda s: None)
    with running_sandbox("full", open_access=True) as ehr:
        client = FhirClient(ehr.fhir, session=make_session(retries=4, backoff=0))
        ehr.sandbox.faults.throttle = 2
        ehr.sandbox.faults.fail = 1
        assert client.read("Encounter", "units-exceed-enc-1")["id"] == "units-exceed-enc-1"
        ehr.sandbox.faults.page_size = 1
        result = client.search("Practitioner", {})
        assert result.pages == len(result.resources) >= 5


def test_include_revinclude_and_batch():
    with running_sandbox("full", open_access=True) as ehr:
        found = requests.get(
            f"{ehr.fhir}/Procedure",
            params={"encounter": "Encounter/units-exceed-enc-1", "_include": "Procedure:performer"},
        ).json()
        modes = {(e["resource"]["resourceType"], e["search"]["mode"]) for e in found["entry"]}
        assert ("Procedure", "match") in modes and ("Practitioner", "include") in modes
        rev = requests.get(
            f"{ehr.fhir}/Encounter",
            params={"_id": "units-exceed-enc-1", "_revinclude": "Procedure:encounter"},
        ).json()
        assert {e["resource"]["resourceType"] for e in rev["entry"]} == {"Encounter", "Procedure"}
        task = {"resourceType": "Task", "status": "requested", "intent": "order"}
        batch = {
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [
                {"request": {"method": "GET", "url": "Encounter/units-exceed-enc-1"}},
                {"request": {"method": "POST", "url": "Task"}, "resource": task},
                {"request": {"method": "GET", "url": "Encounter/nope"}},
            ],
        }
        answer = requests.post(ehr.fhir, json=batch).json()
        assert answer["type"] == "batch-response"
        assert [e["response"]["status"] for e in answer["entry"]] == ["200", "201", "404"]
        failing = dict(batch, type="transaction")
        assert requests.post(ehr.fhir, json=failing).status_code == 404
        # the FHIR client's batch() speaks the same protocol
        client = FhirClient(ehr.fhir, session=make_session(retries=0))
        assert client.batch(batch)["type"] == "batch-response"


def test_confidential_asymmetric_client_launch(tmp_path):
    """private_key_jwt: the app signs its token request; the sandbox checks it with the JWKS
    the app serves at /.well-known/jwks.json."""
    from joserfc.jwk import RSAKey

    key = RSAKey.generate_key(2048)
    pem = tmp_path / "app.pem"
    pem.write_bytes(key.as_pem(private=True))
    with running_sandbox("full") as ehr, running_app(ehr, "ug-conf", str(pem)) as base:
        served = requests.get(f"{base}/.well-known/jwks.json").json()
        assert served["keys"][0]["n"] == key.as_dict(private=False)["n"]
        assert "d" not in served["keys"][0]  # never the private part
        ehr.register("ug-conf", f"{base}/callback", jwks=served)
        page = launch_from_chart(ehr, "units-exceed-enc-1")
    assert page.status_code == 200 and 'data-rule="units-exceed-time"' in page.text


def test_token_expiring_mid_visit_is_refreshed():
    with running_sandbox("full") as ehr, app_against(ehr):
        browser = requests.Session()
        frame = browser.get(f"{ehr.base_url}/chart/launch/units-exceed-enc-1").text
        src = re.search(r'<iframe id="app" title="unitguard" src="([^"]+)"', frame).group(1)
        first = browser.get(src.replace("&amp;", "&"), timeout=30)
        assert first.ok
        ehr.sandbox.grants.expire_all()  # every access token dies mid-visit
        again = browser.get(first.url, timeout=30)
        ehr.sandbox.grants.expire_all()  # and again: the refreshed tokens were kept
        third = browser.get(first.url, timeout=30)
    assert again.status_code == 200 and 'data-rule="units-exceed-time"' in again.text
    assert third.status_code == 200 and 'data-rule="units-exceed-time"' in third.text


def test_logout_revokes_the_tokens_at_the_ehr():
    """RFC 7009 end to end: the sandbox (full profile) names a revocation_endpoint; after the
    therapist logs out, the EHR holds none of the app's tokens, so a copied refresh token is
    refused (second security review: the EHR's tokens stayed valid after logout)."""
    with running_sandbox("full") as ehr, app_against(ehr) as base:
        browser = requests.Session()
        frame = browser.get(f"{ehr.base_url}/chart/launch/units-exceed-enc-1")
        src = re.search(r'<iframe id="app" title="unitguard" src="([^"]+)"', frame.text).group(1)
        page = browser.get(src.replace("&amp;", "&"), timeout=30)
        grants = ehr.sandbox.grants
        refresh = [t for t, g in grants.refresh.items() if g.client_id == "unitguard"]
        assert refresh and any(g.client_id == "unitguard" for g in grants.tokens.values())
        sid = re.search(r"sid=([^&\"]+)", page.url).group(1)
        form = browser.get(f"{base}/logout?sid={sid}").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
        ended = browser.post(f"{base}/logout?sid={sid}", data={"csrf_token": csrf})
        assert ended.status_code == 200
        APPS[base].extensions["unitguard"].revoker.wait()
        assert not any(g.client_id == "unitguard" for g in grants.tokens.values())
        again = requests.post(
            f"{ehr.base_url}/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": refresh[0]},
            timeout=10,
        )
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
