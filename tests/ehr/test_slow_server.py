"""A FHIR server that stops answering: the read times out, is retried, then fails with one clear
message that names the request and no patient; the next visit works once the server is back."""

from __future__ import annotations

import pytest

from plugin.ehr.fetch import fetch_visit
from smart_launch.client import FhirClient
from smart_launch.errors import FhirRequestError
from smart_launch.http import make_session
from tests.loopback import running_sandbox


def test_a_server_that_times_out_is_a_clear_error_then_recovers():
    with running_sandbox("full", open_access=True) as ehr:
        session = make_session(retries=1, backoff=0, timeout=(2.0, 0.2))
        client = FhirClient(ehr.fhir, session=session)
        ehr.sandbox.faults.delay = 0.6  # every FHIR request now outlasts the read timeout
        with pytest.raises(FhirRequestError) as caught:
            fetch_visit(client, "clean-97112-97110-enc-1")
        message = str(caught.value)
        assert "no response" in message and "timed out" in message
        assert "clean-97112-97110-pat-1" not in message and "?" not in message
        ehr.sandbox.faults.delay = 0.0
        bundle = fetch_visit(client, "clean-97112-97110-enc-1")
        assert any(e["resource"]["resourceType"] == "Procedure" for e in bundle["entry"])
