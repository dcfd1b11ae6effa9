"""SMART's Python client (PyPI ``fhirclient`` 4.x) launches against every sandbox profile, as it
would against a real EHR: it discovers the OAuth endpoints from the CapabilityStatement's
``oauth-uris`` extension, sends the user to authorize (standalone: the sandbox's patient picker;
EHR launch: a launch token), exchanges the code with PKCE, refreshes the token, and reads the
launch's Patient and Encounter with its own FHIR models."""

from __future__ import annotations

import pytest
from fhirclient import client as smart_client
from fhirclient.models.bundle import Bundle
from fhirclient.models.encounter import Encounter
from fhirclient.models.patient import Patient

from tests.independent.clients import browse_to_callback
from tests.loopback import running_sandbox

CLIENT_ID = "fhirclient-py"
REDIRECT = "http://127.0.0.1:9/fhirclient-py/callback"  # never loaded: the browser stops there
# A patient with 17 visits, so that a search pages.
PATIENT, ENCOUNTER = "kx-missing-pat-1", "kx-missing-enc-003"


def scopes(style: str) -> str:
    read = "read" if style == "v1" else "rs"
    return f"openid fhirUser offline_access patient/Patient.{read} patient/Encounter.{read}"


@pytest.mark.parametrize("launch", ["standalone", "ehr"])
@pytest.mark.parametrize("profile", ["full", "epic", "oracle"])
def test_fhirclient_launches_and_reads_patient_and_encounter(profile, launch):
    with running_sandbox(profile) as ehr:
        ehr.register(CLIENT_ID, REDIRECT)
        settings = {
            "app_id": CLIENT_ID,
            "api_base": ehr.fhir,
            "redirect_uri": REDIRECT,
            "scope": scopes(ehr.sandbox.profile.scope_style)
            + (" launch/encounter" if launch == "standalone" else ""),
        }
        if launch == "ehr":
            settings["launch_token"] = ehr.launch(ENCOUNTER, PATIENT)
        smart = smart_client.FHIRClient(settings=settings)

        # Discovery: fhirclient reads rest[0].security of /metadata with its R4 models.
        url = smart.authorize_url
        assert url.startswith(f"{ehr.base_url}/oauth/authorize?")
        assert smart.server.auth._token_uri == f"{ehr.base_url}/oauth/token"

        smart.handle_callback(browse_to_callback(url, REDIRECT, pick=PATIENT))
        context = smart.launch_context
        assert smart.ready and context["token_type"] == "Bearer"
        assert context["patient"] == PATIENT
        if launch == "ehr":
            assert context["encounter"] == ENCOUNTER

        patient = smart.patient  # Patient.read of the launch's patient
        assert isinstance(patient, Patient) and patient.id == context["patient"]
        assert smart.human_name(patient.name[0]) not in ("Unknown", "Unnamed")
        encounter = Encounter.read(context["encounter"], smart.server)
        assert encounter.id == context["encounter"] and encounter.status
        assert encounter.subject.reference.endswith(f"Patient/{patient.id}")

        # The refresh token works, and the new access token reads too.
        before = smart.server.auth.access_token
        assert smart.reauthorize()
        assert smart.server.auth.access_token != before
        assert Encounter.read(encounter.id, smart.server).id == encounter.id

        # A search parses as Bundles of fhirclient models (Epic's outcome entry included),
        # one page at a time through the sandbox's next links.
        search = Encounter.where(struct={"patient": patient.id, "_count": "5"})
        pages = list(search.perform_iter(smart.server))
        assert len(pages) == 4 and all(p.type == "searchset" for p in pages)
        assert all(isinstance(p, Bundle) and p.total == 17 for p in pages)
        visits = [e.resource for p in pages for e in p.entry if e.search.mode == "match"]
        assert len({v.id for v in visits}) == 17
        assert all(isinstance(v, Encounter) for v in visits)
        others = {e.resource.resource_type for p in pages for e in p.entry} - {"Encounter"}
        assert others <= {"OperationOutcome"}


def test_fhirclient_reports_a_refused_authorization():
    """The sandbox's errors reach the client the OAuth way: a redirect with ``error``."""
    with running_sandbox("epic") as ehr:
        ehr.register(CLIENT_ID, REDIRECT)
        smart = smart_client.FHIRClient(
            settings={
                "app_id": CLIENT_ID,
                "api_base": ehr.fhir,
                "redirect_uri": REDIRECT,
                "scope": scopes("v1"),
                "launch_token": "not-a-launch-the-ehr-made",
            }
        )
        callback = browse_to_callback(smart.authorize_url, REDIRECT)
        with pytest.raises(Exception, match="unknown launch"):
            smart.handle_callback(callback)
        assert not smart.ready


def test_fhirclient_as_a_confidential_client():
    """client_secret_basic: fhirclient sends the app secret with HTTP Basic to exchange the code
    and to refresh."""
    with running_sandbox("oracle") as ehr:
        ehr.register(CLIENT_ID, REDIRECT, secret="s3cret-for-the-sandbox")
        smart = smart_client.FHIRClient(
            settings={
                "app_id": CLIENT_ID,
                "app_secret": "s3cret-for-the-sandbox",
                "api_base": ehr.fhir,
                "redirect_uri": REDIRECT,
                "scope": scopes("v2"),
                "launch_token": ehr.launch(ENCOUNTER, PATIENT),
            }
        )
        smart.handle_callback(browse_to_callback(smart.authorize_url, REDIRECT))
        assert smart.patient.id == PATIENT
        assert smart.reauthorize()
        assert Encounter.read(ENCOUNTER, smart.server).id == ENCOUNTER
