"""Backend services against the sandbox, and the coding-review Task delivered to an EHR that
allows Task create, through the outbox, exactly once even when the EHR was down."""

from __future__ import annotations

import requests
from joserfc.jwk import RSAKey

from plugin.review import review_bundle
from plugin.synthetic.visit import VisitBuilder
from plugin.tasks.build import review_task
from plugin.tasks.outbox import Outbox
from plugin.web.launch import ehr_task_sender, task_support
from smart_launch.backend import BackendServices
from tests.loopback import running_sandbox

KEY = RSAKey.generate_key(2048, parameters={"kid": "worker"})


def worker(ehr, scope="system/Task.cruds") -> BackendServices:
    ehr.register("worker", "", jwks={"keys": [KEY.as_dict(private=False)]})
    return BackendServices(
        f"{ehr.base_url}/oauth/token", "worker", KEY.as_pem(private=True), scope, kid="worker"
    )


def test_backend_services_token_and_replay_refusal():
    with running_sandbox("full") as ehr:
        backend = worker(ehr)
        token = backend.token()
        assert backend.token() == token  # cached
        auth = {"Authorization": f"Bearer {token}"}
        task = {"resourceType": "Task", "status": "requested", "intent": "order"}
        assert requests.post(f"{ehr.fhir}/Task", json=task, headers=auth).status_code == 201
        narrow = BackendServices(
            f"{ehr.base_url}/oauth/token",
            "worker",
            KEY.as_pem(private=True),
            "system/Task.cr",
            kid="worker",
        )
        narrow_auth = {"Authorization": f"Bearer {narrow.token()}"}
        assert requests.get(f"{ehr.fhir}/Task", headers=narrow_auth).status_code == 403
        assertion = backend.assertion()
        form = {
            "grant_type": "client_credentials",
            "scope": "system/Task.r",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        }
        assert requests.post(f"{ehr.base_url}/oauth/token", data=form).status_code == 200
        assert requests.post(f"{ehr.base_url}/oauth/token", data=form).status_code == 401


import pytest  # noqa: E402


@pytest.mark.parametrize("conditional", [True, False])
def test_task_reaches_the_ehr_once_after_an_outage(tmp_path, conditional, monkeypatch):
    monkeypatch.setattr("urllib3.util.retry.time.sleep", lambda s: None)
    b = VisitBuilder(signed=False)
    b.proc("97112", "09:00", "09:20")
    b.line("97112", 3)
    with running_sandbox("full") as ehr:
        task = review_task(review_bundle(b.bundle()), issuer=ehr.fhir)
        box = Outbox(f"sqlite:///{tmp_path / 'outbox.sqlite'}", base_delay=0)
        box.enqueue(ehr.fhir, task["identifier"][0]["value"], task)
        send = ehr_task_sender({ehr.fhir: worker(ehr)}, {ehr.fhir: conditional})
        ehr.sandbox.faults.fail = 10**6  # the EHR is down (GETs exhaust their retries too)
        assert box.deliver(send).failed == 1
        ehr.sandbox.faults.fail = 0  # and back
        assert box.deliver(send).delivered == 1
        box.enqueue(ehr.fhir, task["identifier"][0]["value"], task)  # re-signed: same Task
        assert box.deliver(send).delivered == 1
        stored = ehr.sandbox.store.all("Task")
        assert len(stored) == 1 and stored[0]["identifier"] == task["identifier"]
        assert stored[0]["meta"]["versionId"] == "2"  # the re-sign updated it


def test_task_support_is_read_from_the_capability_statement():
    for profile, expected in (
        ("full", (True, True)),
        ("epic", (False, False)),
        ("oracle", (False, False)),
    ):
        with running_sandbox(profile, open_access=True) as ehr:
            statement = requests.get(f"{ehr.fhir}/metadata").json()
            assert task_support(statement) == expected, profile
