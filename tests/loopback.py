"""The sandbox EHR and the unitguard app on loopback for tests and benchmarks: real HTTP,
ephemeral ports."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from flask import Flask
from werkzeug.serving import make_server

from plugin.serving import bind, running
from plugin.web import create_app
from plugin.web.settings import Settings
from sandbox.app import create_app as create_sandbox
from sandbox.auth import Client
from sandbox.seed import APP_SCOPES, CODER_ROLE_CODES, CODERS, FIXTURES, build_sandbox
from sandbox.state import Sandbox
from smart_launch import Registry
from smart_launch.registry import RegisteredEhr

APPS: dict[str, Flask] = {}  # the running apps by base URL (tests reach their stores)


@dataclass
class RunningSandbox:
    base_url: str
    sandbox: Sandbox

    @property
    def fhir(self) -> str:
        return f"{self.base_url}/fhir"

    def register(
        self,
        client_id: str,
        redirect_uri: str,
        secret: str | None = None,
        jwks: dict | None = None,
        scopes: frozenset[str] | None = None,
    ) -> None:
        self.sandbox.grants.register(Client(client_id, (redirect_uri,), secret, jwks, scopes))

    def launch(self, encounter: str, patient: str = "pat-1") -> str:
        return self.sandbox.grants.new_launch(patient, encounter)


@contextmanager
def running_sandbox(
    profile: str = "full", data_dir: Path | None = FIXTURES, open_access: bool = False
) -> Iterator[RunningSandbox]:
    server = make_server("127.0.0.1", 0, lambda e, s: None, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    sandbox = build_sandbox(profile, data_dir, open_access, base)
    server.app = create_sandbox(sandbox, base)
    with running([server]):
        yield RunningSandbox(base, sandbox)


@contextmanager
def running_app(
    ehr: RunningSandbox,
    client_id: str = "unitguard",
    private_key: str | None = None,
    others: tuple[RunningSandbox, ...] = (),
    binary_hosts: tuple[str, ...] = (),
    **settings: object,
) -> Iterator[str]:
    """The unitguard app on an ephemeral loopback port, registered with the sandbox (and the
    sandbox's chart pointed at it); yields the app's base URL (``APPS`` maps it to the Flask
    app while it runs). ``others`` registers more sandboxes as further EHRs of the same app
    (each with the same coder list); ``binary_hosts`` is the first EHR's (the hosts besides its
    own whose note Binaries are read); ``settings`` override the app's Settings."""

    def entry(n: int, box: RunningSandbox) -> RegisteredEhr:
        profile = box.sandbox.profile
        return RegisteredEhr(
            name="sandbox" if n == 0 else f"sandbox {n + 1}",
            issuer=box.fhir,
            client_id=client_id,
            scopes=APP_SCOPES,
            scope_style=profile.scope_style,
            profile=profile.name,
            private_key=private_key,
            coders=CODERS,
            coder_role_codes=CODER_ROLE_CODES,
            binary_hosts=binary_hosts if n == 0 else (),
        )

    boxes = (ehr, *others)
    registry = Registry(tuple(entry(n, box) for n, box in enumerate(boxes)))
    server = bind("127.0.0.1", 0, lambda environ, start_response: [])
    base = f"http://127.0.0.1:{server.server_port}"
    config = Settings(
        testing=True,
        public_url=base,  # the redirect URI and links come from it, never from the Host
        task_db="sqlite://",
        outbox_db="sqlite://",
        session_db="sqlite://",
        private_key=private_key,
        **settings,
    ).validated()
    server.app = APPS[base] = create_app(config, registry=registry)
    for box in boxes:
        box.sandbox.app_launch_url = f"{base}/launch"
    try:
        with running([server]):
            yield base
    finally:
        APPS.pop(base, None)
