"""deploy/nginx/unitguard.conf in front of `unitguard serve`, as a hospital would run them: TLS
with a throwaway certificate, the app reached only through nginx. One sandbox EHR, one serve and
one nginx for the whole module."""

from __future__ import annotations

import http.client
import os
import re
import ssl
import subprocess
import sys
from contextlib import ExitStack

import pytest
import requests

from tests.loopback import running_sandbox
from tests.nginx_front import free_port as free_tls_port
from tests.nginx_front import nginx_in_front
from tests.test_serve import free_port, serve_env, wait_healthy
from tests.test_serve_gunicorn import Output, stop

RATE = 3  # launches per minute per client, so the limit is reached quickly


@pytest.fixture(scope="module")
def deployed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nginx")
    with ExitStack() as stack:
        ehr = stack.enter_context(running_sandbox("full"))
        app_port, https = free_port(), free_tls_port()
        public = f"https://127.0.0.1:{https}"
        ehrs = tmp / "ehrs.toml"
        ehrs.write_text(
            f'[[ehr]]\nname = "sandbox"\nissuer = "{ehr.fhir}"\nclient_id = "unitguard"\n'
            'scopes = ["launch", "openid", "fhirUser", "patient/*.rs"]\n'
        )
        ehr.register("unitguard", f"{public}/callback")
        ehr.sandbox.app_launch_url = f"{public}/launch"
        proc = subprocess.Popen(
            [sys.executable, "-m", "plugin.cli", "serve", "--port", str(app_port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={
                **os.environ,
                **serve_env(tmp),
                "UNITGUARD_EHRS": str(ehrs),
                "UNITGUARD_PUBLIC_URL": public,
                "UNITGUARD_PROXY_HOPS": "1",
                "UNITGUARD_RATE_LAUNCH": str(RATE),
            },
        )
        out = Output(proc)
        stack.callback(stop, proc, out)
        wait_healthy(app_port, proc)
        front = stack.enter_context(nginx_in_front(app_port, tmp / "nginx", https=https))
        yield ehr, front, app_port


def browser(front) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # else REQUESTS_CA_BUNDLE would replace the certificate below
    session.verify = str(front.cert)
    return session


def test_healthz_answers_through_nginx_over_tls(deployed):
    _, front, _ = deployed
    answer = browser(front).get(f"{front.base}/healthz", timeout=10)
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}
    assert answer.headers["Strict-Transport-Security"].startswith("max-age=")


def test_plain_http_is_sent_to_https(deployed):
    _, front, _ = deployed
    answer = browser(front).get(
        f"http://127.0.0.1:{front.http}/queue", allow_redirects=False, timeout=10
    )
    assert answer.status_code == 301
    assert answer.headers["Location"] == "https://unitguard.example.org/queue"


def test_an_ehr_launch_and_the_review_go_through_nginx(deployed):
    ehr, front, _ = deployed
    client = browser(front)
    frame = client.get(f"{ehr.base_url}/chart/launch/units-exceed-enc-1", timeout=30).text
    src = re.search(r'src="([^"]+)"', frame).group(1).replace("&amp;", "&")
    assert src.startswith(f"{front.base}/launch?")
    page = client.get(src, timeout=30)
    assert page.status_code == 200 and page.url.startswith(f"{front.base}/review/")
    assert 'data-rule="units-exceed-time"' in page.text and "data-verdict" in page.text
    again = client.get(page.url, timeout=30)
    assert again.status_code == 200 and 'data-code="97112"' in again.text
    log = front.access_log()
    assert '"GET /callback" 302' in log and '"GET /review/<encounter_id>" 200' in log
    for secret in ("code=", "state=", "sid=", "iss=", "units-exceed", "?"):
        assert secret not in log


def test_a_body_over_the_limit_gets_413_from_nginx(deployed):
    _, front, _ = deployed
    answer = browser(front).post(f"{front.base}/fhir/Task", data=b"x" * (1024 * 1024 + 1))
    assert answer.status_code == 413 and "nginx" in answer.text


def launch_from(front, source: str, forwarded: str | None = None, port: int | None = None):
    """One GET /launch from the loopback address ``source`` (each a separate client), to
    nginx over TLS, or straight to the app on ``port``."""
    if port is None:
        context = ssl.create_default_context(cafile=str(front.cert))
        conn = http.client.HTTPSConnection(
            "127.0.0.1", front.https, source_address=(source, 0), context=context, timeout=10
        )
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, source_address=(source, 0), timeout=10)
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    try:
        conn.request("GET", "/launch", headers=headers)
        return conn.getresponse().status
    finally:
        conn.close()


def test_two_clients_behind_nginx_have_separate_allowances(deployed):
    _, front, _ = deployed
    first = [launch_from(front, "127.0.0.2") for _ in range(RATE + 1)]
    assert 429 not in first[:RATE] and first[RATE] == 429
    assert launch_from(front, "127.0.0.3") != 429


def test_forged_forwarding_headers_change_nothing(deployed):
    _, front, app_port = deployed
    # Through nginx: whatever a client writes, nginx appends the address it saw.
    through = [launch_from(front, "127.0.0.4", f"198.51.100.{n}") for n in range(RATE + 1)]
    assert through[RATE] == 429
    # Straight to the app from an address that is not the proxy: the header is ignored.
    direct = [
        launch_from(front, "127.0.0.5", f"198.51.100.{n}", port=app_port) for n in range(RATE + 1)
    ]
    assert direct[RATE] == 429
