"""Backend services against the sandbox, and the coding-review Task delivered to an EHR that
allows Task create, through the outbox, exactly once even when the EHR was down."""

from __future__ import annotations

import requests
from joserfc.jwk import RSAKey

from plugin.review import review_bundle
from plugin.tasks.build import review_task
from plugin.tasks.outbox import Outbox
from plugin.web.launch import ehr_task_sender
from sandbox.testing import running_sandbox
from smart_launch.backend import BackendServices
from tests.builders import VisitBuilder

KEY = RSAKey.generate_key(2048, parameters={"kid": "worker"})


def worker(ehr, scope="system/Task.cru") -> BackendServices:
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
        assert requests.get(f"{ehr.fhir}/Task", headers=auth).status_code == 403  # no "s"
        assertion = backend.assertion()
        form = {
            "grant_type": "client_credentials",
            "scope": "system/Task.r",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        }
        assert requests.post(f"{ehr.base_url}/oauth/token", data=form).status_code == 200
        assert requests.post(f"{ehr.base_url}/oauth/token", data=form).status_code == 401


def test_task_reaches_the_ehr_once_after_an_outage(tmp_path):
    b = VisitBuilder(signed=False)
    b.proc("97112", "09:00", "09:20")
    b.line("97112", 3)
    with running_sandbox("full") as ehr:
        task = review_task(review_bundle(b.bundle()), issuer=ehr.fhir)
        box = Outbox(f"sqlite:///{tmp_path / 'outbox.sqlite'}", base_delay=0)
        box.enqueue(ehr.fhir, task["identifier"][0]["value"], task)
        send = ehr_task_sender({ehr.fhir: worker(ehr)})
        ehr.sandbox.faults.fail = 1  # the EHR is down for the first try
        assert box.deliver(send).failed == 1
        assert box.deliver(send).delivered == 1
        box.enqueue(ehr.fhir, task["identifier"][0]["value"], task)  # re-signed: same Task
        assert box.deliver(send).delivered == 1
        stored = ehr.sandbox.store.all("Task")
        assert len(stored) == 1 and stored[0]["identifier"] == task["identifier"]
