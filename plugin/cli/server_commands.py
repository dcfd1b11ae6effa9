"""``unitguard serve`` (the SMART app), ``sandbox`` (the sandbox EHR) and ``demo`` (both,
registered together)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from plugin.cli.user_error import UserError
from plugin.errors import PluginError


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--ehrs",
    "ehrs_file",
    envvar="UNITGUARD_EHRS",
    type=click.Path(dir_okay=False),
    help="TOML file of registered EHRs (or UNITGUARD_EHRS).",
)
@click.option(
    "--workers",
    default=2,
    show_default=True,
    type=int,
    help="Worker processes (1-32); they share sessions, launches and limits via the databases.",
)
@click.option("--threads", default=4, show_default=True, type=int, help="Threads per worker.")
@click.option(
    "--timeout",
    default=30,
    show_default=True,
    type=int,
    help="Seconds a request may run before its worker is replaced.",
)
@click.option(
    "--header-timeout",
    default=10,
    show_default=True,
    type=int,
    help="Seconds a client has to send its request head; a slower one is disconnected.",
)
@click.option(
    "--check",
    is_flag=True,
    help="Check the configuration against the EHRs (discovery, keys, data folder, schema), "
    "print one line per check and exit: 0 all passed, 2 one failed.",
)
def serve(
    host: str,
    port: int,
    ehrs_file: str | None,
    workers: int,
    threads: int,
    timeout: int,
    header_timeout: int,
    check: bool,
) -> None:
    """Serve the SMART app under gunicorn: /launch, /callback, /review/<id>, /queue,
    /fhir/Task, /healthz.

    Settings come from UNITGUARD_* variables (docs/settings.md): the EHR list (--ehrs or
    UNITGUARD_EHRS), UNITGUARD_DATA_DIR or UNITGUARD_DATABASE_URL, and, off loopback,
    UNITGUARD_PUBLIC_URL (https). It refuses to start without them, or when the database's
    schema is behind (run `unitguard db upgrade`). SIGTERM or SIGINT stops it gracefully.
    """
    import os
    import secrets

    from plugin.datadir import PRIVATE_UMASK
    from plugin.serving import GunicornLimits, run_gunicorn
    from plugin.web import create_app
    from plugin.web.settings import Settings
    from plugin.web.startup import check as run_checks
    from plugin.web.startup import refusal
    from smart_launch.registry import RegistryError

    os.umask(PRIVATE_UMASK)  # whatever serve writes is its user's alone
    overrides: dict = {"ehrs_file": ehrs_file}
    if not os.environ.get("UNITGUARD_SECRET_KEY"):
        # Sessions and tokens live on the server; the key only signs what Flask itself signs.
        # Every worker is forked from this process, so all of them hold this one key.
        overrides["secret_key"] = secrets.token_hex(32)
    public_url_set = bool(os.environ.get("UNITGUARD_PUBLIC_URL"))
    if not public_url_set:
        overrides["public_url"] = f"http://{host}:{port}"
    limits = GunicornLimits(
        workers=workers, threads=threads, timeout=timeout, head_timeout=header_timeout
    )
    try:
        limits.validated()
        settings = Settings.from_env(**overrides)
    except PluginError as exc:
        raise UserError(str(exc), 2) from None
    if check:
        failed = 0
        for result in run_checks(settings, host, public_url_set):
            click.echo(result.line())
            failed += not result.ok
        click.echo(f"{'all checks passed' if not failed else f'{failed} check(s) failed'}")
        sys.exit(2 if failed else 0)
    problem = refusal(settings, host, public_url_set)
    if problem:
        raise UserError(problem, 2)
    try:
        app = create_app(settings)
    except (PluginError, RegistryError) as exc:
        raise UserError(str(exc), 2) from None
    base = f"http://{host}:{port}"

    def announce() -> None:
        click.echo(f"unitguard app on {base}")
        for path in (
            "/launch",
            "/callback",
            "/review/<encounter id>",
            "/queue",
            "/fhir/Task",
            "/healthz",
        ):
            click.echo(f"  {base}{path}")
        if settings.public_url != base:
            click.echo(f"  (reached as {settings.public_url})")
        click.echo(f"  ({workers} workers x {threads} threads, {timeout} s per request)")
        sys.stdout.flush()

    try:
        run_gunicorn(app, host, port, limits, announce)
    except PluginError as exc:
        raise UserError(str(exc), 2) from None


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8090, show_default=True, type=int)
@click.option(
    "--profile",
    type=click.Choice(["full", "epic", "oracle"]),
    default="full",
    show_default=True,
    help="Which EHR's capabilities and refusals to reproduce.",
)
@click.option(
    "--data",
    "data_dir",
    type=click.Path(file_okay=False, exists=True),
    default="fixtures",
    show_default=True,
    help="Load every *.json Bundle and *.ndjson file here (adds Group all-patients).",
)
@click.option("--open", "open_access", is_flag=True, help="Serve FHIR without a token.")
@click.option(
    "--allow-remote",
    is_flag=True,
    help="Listen on a --host other machines can reach (it hands out tokens for any patient).",
)
@click.option(
    "--app-url",
    default="http://127.0.0.1:8080",
    show_default=True,
    help="The unitguard app the chart launches (its /launch and /callback).",
)
def sandbox(
    host: str,
    port: int,
    profile: str,
    data_dir: str,
    open_access: bool,
    allow_remote: bool,
    app_url: str,
) -> None:
    """Run the sandbox EHR (synthetic data only; never patient data).

    FHIR at /fhir, SMART discovery at /fhir/.well-known/smart-configuration, the chart at /.
    The client id "unitguard" is registered with APP_URL/callback as its redirect URI.
    """
    from plugin.serving import bind, is_loopback, log_routes, serve_until_stopped
    from sandbox.app import create_app as create_sandbox
    from sandbox.auth import Client
    from sandbox.seed import build_sandbox

    if not allow_remote and not is_loopback(host):
        raise UserError(
            f"--host {host} is not a loopback address, and the sandbox hands out tokens for any "
            "patient to whoever reaches it: use 127.0.0.1, or add --allow-remote",
            2,
        )
    base = f"http://{host}:{port}"
    try:
        server = bind(host, port, lambda environ, start: [])
    except PluginError as exc:
        raise UserError(str(exc), 2) from None
    box = build_sandbox(profile, Path(data_dir), open_access, base, f"{app_url}/launch")
    box.grants.register(Client("unitguard", (f"{app_url}/callback",)))
    server.app = create_sandbox(box, base)
    log_routes(server.app)

    def announce() -> None:
        click.echo(f"sandbox EHR ({profile} profile, synthetic data only) on {base}")
        click.echo(f"  chart  {base}/")
        click.echo(f"  FHIR   {base}/fhir")
        click.echo(f"  SMART  {base}/fhir/.well-known/smart-configuration")

    serve_until_stopped([server], announce)


@click.command()
@click.option(
    "--port",
    default=8080,
    show_default=True,
    type=int,
    help="The app's port; the sandbox EHR listens on PORT+10.",
)
def demo(port: int) -> None:
    """Start the sandbox EHR (full profile, fixtures loaded) and the app, registered together.

    Open the printed chart URL and press "unitguard" beside a visit.
    """
    import secrets

    from plugin.serving import bind, log_routes, serve_until_stopped
    from plugin.web import create_app
    from plugin.web.settings import Settings
    from sandbox.app import create_app as create_sandbox
    from sandbox.auth import Client
    from sandbox.seed import APP_SCOPES, CODER_ROLE_CODES, CODERS, build_sandbox
    from smart_launch import Registry
    from smart_launch.registry import RegisteredEhr

    host = "127.0.0.1"
    app_base, ehr_base = f"http://{host}:{port}", f"http://{host}:{port + 10}"
    fixtures = Path(__file__).resolve().parents[2] / "fixtures"
    try:
        ehr_server = bind(host, port + 10, lambda environ, start: [])
        app_server = bind(host, port, lambda environ, start: [])
    except PluginError as exc:
        raise UserError(str(exc), 2) from None
    box = build_sandbox("full", fixtures, False, ehr_base, f"{app_base}/launch")
    box.grants.register(Client("unitguard", (f"{app_base}/callback",)))
    ehr_server.app = create_sandbox(box, ehr_base)
    log_routes(ehr_server.app)
    registry = Registry(
        (
            RegisteredEhr(
                name="sandbox",
                issuer=f"{ehr_base}/fhir",
                client_id="unitguard",
                scopes=APP_SCOPES,
                profile="full",
                coders=CODERS,
                coder_role_codes=CODER_ROLE_CODES,
            ),
        )
    )
    settings = Settings.from_env(
        secret_key=secrets.token_hex(32),
        public_url=app_base,
        task_db="sqlite://",
        outbox_db="sqlite://",
        session_db="sqlite://",
    )
    app_server.app = create_app(settings, registry=registry)

    def announce() -> None:
        click.echo(f"sandbox EHR (synthetic data only): {ehr_base}/")
        click.echo(f"unitguard app:                     {app_base}/")
        click.echo(f"Therapist: Open {ehr_base}/ and press 'unitguard' beside a visit.")
        click.echo(
            f"Coder:     Open {ehr_base}/ and press 'Coding work queue' (EHR launch), or sign "
            f"in at {app_base}/login?iss={ehr_base}/fhir as Casey Coder (standalone launch)."
        )

    serve_until_stopped([ehr_server, app_server], announce)
