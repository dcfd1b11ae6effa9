"""The ``unitguard`` command line (Click)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import orjson

from plugin import __version__
from plugin.errors import EXIT_FINDINGS, EXIT_OK, InputError, PluginError
from plugin.units import METHODS


class UserError(click.ClickException):
    """A clear one-line message and a fixed exit code; never a traceback."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file=None) -> None:
        click.echo(f"unitguard: {self.format_message()}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="unitguard")
def main() -> None:
    """unitguard: check that therapy documentation supports the billed timed units.

    Reviews a visit's FHIR R4 resources (Encounter, Procedure, Observation, Goal, Claim or
    ChargeItem) against the Medicare 8-minute rule, per-payer unit methods, GP/GO/GN, CQ/CO,
    59/XS with NCCI edits, the KX threshold and the documentation a reviewer looks for.
    """


def read_json(path: str) -> object:
    """Parse a JSON file ('-' for stdin); InputError names the file and the position."""
    try:
        raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the file ({exc.strerror or exc})") from exc
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        # orjson refuses integers past 64 bits, which are still JSON: let the stdlib try.
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):
            raise InputError(f"{path}: not valid JSON ({exc})") from exc


@main.command()
@click.argument("bundle", required=False, type=click.Path(dir_okay=False, allow_dash=True))
@click.option(
    "--fhir",
    "fhir_base",
    metavar="BASE",
    help="Read the visit from this FHIR R4 server (needs --encounter) with the app's fetch; "
    "a bearer token is taken from UNITGUARD_FHIR_TOKEN when set.",
)
@click.option("--method", type=click.Choice(METHODS), help="Unit method; default: the payer's.")
@click.option(
    "--encounter",
    "encounter_id",
    metavar="ID",
    help="The Encounter id to review; default: the latest by period.start.",
)
@click.option(
    "--code-map",
    "code_map_file",
    type=click.Path(dir_okay=False),
    help="CSV 'system,code,cpt' mapping the EHR's own procedure codes to CPT/HCPCS.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Text for people, JSON for tools.",
)
@click.option(
    "--strict", is_flag=True, help="Also validate every resource against the FHIR R4 models first."
)
def review(
    bundle: str | None,
    fhir_base: str | None,
    method: str | None,
    encounter_id: str | None,
    code_map_file: str | None,
    fmt: str,
    strict: bool,
) -> None:
    """Review one visit of a FHIR R4 Bundle (BUNDLE is a file, or - for stdin), or of a FHIR
    server with --fhir BASE --encounter ID.

    Exit status: 0 no error finding, 1 at least one error finding, 2 the input cannot be
    reviewed (one line on stderr says what and where).
    """
    from plugin.fhir.codemap import load_code_map
    from plugin.review import review_bundle

    if (bundle is None) == (fhir_base is None):
        raise UserError("give either a BUNDLE file or --fhir BASE --encounter ID", 2)
    if fhir_base is not None and not encounter_id:
        raise UserError("--fhir needs --encounter ID (the visit to read from the server)", 2)
    try:
        code_map = load_code_map(code_map_file) if code_map_file else None
        if fhir_base is not None:
            data = fetch_from_server(fhir_base, encounter_id)
            source = f"{fhir_base.rstrip('/')}/Encounter/{encounter_id}"
        else:
            data = read_json(bundle)
            source = bundle
        report = review_bundle(
            data,
            encounter_id=encounter_id,
            method=method,
            strict=strict,
            source=source,
            code_map=code_map,
        )
    except PluginError as exc:
        raise UserError(str(exc), exc.exit_code) from None
    from plugin import report as render

    if fmt == "json":
        sys.stdout.buffer.write(orjson.dumps(render.to_dict(report)) + b"\n")
    else:
        colour = sys.stdout.isatty()
        for text, fg in render.to_lines(report):
            click.echo(click.style(text, fg=fg) if colour and fg else text)
    sys.exit(EXIT_FINDINGS if report.verdict == "unsupported" else EXIT_OK)


def fetch_from_server(base: str, encounter_id: str) -> dict:
    """The visit's Bundle read from a FHIR server with the app's own fetch (contract §1)."""
    import os

    from plugin.ehr.fetch import FetchError, fetch_visit
    from smart_launch.client import FhirClient
    from smart_launch.errors import FhirError

    if not base.startswith(("http://", "https://")):
        raise InputError(f"--fhir {base!r} is not an http(s) URL")
    token = os.environ.get("UNITGUARD_FHIR_TOKEN") or None
    client = FhirClient(base, token=lambda: token)
    try:
        return fetch_visit(client, encounter_id)
    except (FhirError, FetchError) as exc:
        raise InputError(f"{base}: the visit could not be read: {exc}") from None


@main.group()
def policy() -> None:
    """Inspect and update the policy data (PTP pairs, thresholds, phrase lists)."""


@policy.command("import-ncci")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--into",
    type=click.Path(file_okay=False),
    default=None,
    help="Policy folder to write to; default: UNITGUARD_POLICY_DIR or the user data folder.",
)
@click.option(
    "--all-codes", is_flag=True, help="Keep every pair, not only pairs with a therapy code."
)
def import_ncci(file: str, into: str | None, all_codes: bool) -> None:
    """Load CMS's quarterly practitioner PTP file (txt, csv or zip) into the policy data."""
    from plugin.policy.ncci import import_ptp_file

    try:
        result = import_ptp_file(Path(file), Path(into) if into else None, all_codes=all_codes)
    except PluginError as exc:
        raise UserError(str(exc), exc.exit_code) from None
    click.echo(
        f"imported {result.kept} PTP edits ({result.read} read, {result.skipped} rows skipped) "
        f"into {result.path}"
    )


@policy.command("show")
def show_policy() -> None:
    """List the policy tables with their version, source and effective date."""
    from plugin.policy import load_policy

    loaded = load_policy()
    for item in loaded.provenance:
        click.echo(f"{item.name:10} v{item.version} from {item.effective_from}: {item.source}")
    click.echo(f"PTP edits loaded: {len(loaded.ptp)}")


@main.command()
@click.argument("source")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder for findings and visits (.csv, .parquet), errors.csv, report.html.",
)
@click.option("--method", type=click.Choice(METHODS), help="Unit method; default: each payer's.")
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="A Dask cluster's scheduler address (workers must see the UNITGUARD_SCRATCH folder), "
    "or 'sync' to run in this process; default: local worker processes.",
)
@click.option(
    "--partitions",
    default=16,
    show_default=True,
    type=int,
    help="Least number of patient buckets (Dask tasks); large inputs get more.",
)
@click.option("--group", metavar="ID", help="Bulk export: Group/ID/$export (Epic, Oracle Health).")
@click.option("--since", metavar="INSTANT", help="Bulk export: only resources changed since.")
@click.option(
    "--client-id",
    envvar="UNITGUARD_BULK_CLIENT_ID",
    help="Bulk export: Backend Services client id [env UNITGUARD_BULK_CLIENT_ID].",
)
@click.option(
    "--private-key",
    envvar="UNITGUARD_BULK_KEY",
    type=click.Path(dir_okay=False),
    help="Bulk export: PEM key that signs the client assertion [env UNITGUARD_BULK_KEY].",
)
@click.option(
    "--key-id",
    envvar="UNITGUARD_BULK_KEY_ID",
    help="Bulk export: the key's kid in your registered JWKS (default: its RFC 7638 thumbprint).",
)
@click.option(
    "--keep-export",
    type=click.Path(file_okay=False),
    help="Bulk export: keep the downloaded NDJSON here (default: a temporary folder, removed).",
)
def audit(
    source: str,
    out_dir: str,
    method: str | None,
    scheduler: str | None,
    partitions: int,
    group: str | None,
    since: str | None,
    client_id: str | None,
    private_key: str | None,
    key_id: str | None,
    keep_export: str | None,
) -> None:
    """Audit every therapy visit in SOURCE: a folder of FHIR Bulk Data NDJSON (one file per
    resource type), or a FHIR base URL to run a Bulk $export from (SMART Backend Services auth).
    Other encounters (wellness, emergency, inpatient) are counted and listed as skipped.

    Same rules as `review`, one code path, plus the rules only a batch can see; malformed
    lines are listed in errors.csv with file and line number and the audit goes on.
    """
    import tempfile

    from plugin.batch.audit import run_audit

    progress = sys.stderr.isatty()
    try:
        with tempfile.TemporaryDirectory(prefix="unitguard-export-") as scratch:
            folder = Path(source)
            if source.startswith(("https://", "http://")):
                from plugin.batch.export import ExportRequest, bulk_export

                folder = Path(keep_export or scratch)
                if keep_export and folder.is_dir() and any(folder.glob("*.ndjson")):
                    raise UserError(
                        f"{keep_export}: already holds NDJSON; give an empty or new folder so "
                        "one export is not mixed with another",
                        2,
                    )
                request = ExportRequest(
                    source,
                    client_id,
                    Path(private_key) if private_key else None,
                    group,
                    since,
                    key_id=key_id,
                )
                exported = bulk_export(
                    request, folder, (lambda text: click.echo(text, err=True)) if progress else None
                )
                click.echo(
                    f"exported {sum(exported.resources.values())} resources in "
                    f"{len(exported.files)} files ({exported.polls} status polls)",
                    err=True,
                )
                for problem in exported.errors[:10]:
                    click.echo(f"export error reported by the server: {problem}", err=True)
            elif not folder.is_dir():
                raise UserError(f"{source}: no such folder (or give a FHIR base URL)", 2)
            result = run_audit(
                folder,
                Path(out_dir),
                method=method,
                scheduler=scheduler,
                buckets=partitions,
                progress=progress,
            )
    except PluginError as exc:
        raise UserError(str(exc), exc.exit_code) from None
    click.echo(
        f"{result.visits} therapy visits reviewed, {result.skipped} other encounters skipped, "
        f"{result.findings} findings, {len(result.bad_lines)} unreadable lines; "
        f"wrote {result.out}/report.html"
    )


@main.command()
@click.option("--visits", default=1000, show_default=True, type=int)
@click.option("--defect-rate", default=0.2, show_default=True, type=float)
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
def synth(visits: int, defect_rate: float, seed: int, out_dir: str) -> None:
    """Write synthetic NDJSON visits with known injected defects (truth.csv)."""
    from plugin.batch.synth import generate

    injected = generate(Path(out_dir), visits, defect_rate, seed)
    click.echo(f"{visits} visits, {sum(injected.values())} injected defects into {out_dir}")


@main.command()
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
def serve(
    host: str, port: int, ehrs_file: str | None, workers: int, threads: int, timeout: int
) -> None:
    """Serve the SMART app under gunicorn: /launch, /callback, /review/<id>, /queue,
    /fhir/Task, /healthz.

    Settings come from UNITGUARD_* variables (UNITGUARD_SECRET_KEY, UNITGUARD_TASK_DB, ...).
    SIGTERM or SIGINT stops it gracefully (requests in flight may finish).
    """
    import os
    import secrets

    from plugin.serving import GunicornLimits, run_gunicorn
    from plugin.web import create_app
    from plugin.web.settings import Settings
    from smart_launch.registry import RegistryError

    overrides: dict = {"ehrs_file": ehrs_file}
    if not os.environ.get("UNITGUARD_SECRET_KEY"):
        # Sessions and tokens live on the server; the key only signs what Flask itself signs.
        # Every worker is forked from this process, so all of them hold this one key.
        overrides["secret_key"] = secrets.token_hex(32)
    if not os.environ.get("UNITGUARD_PUBLIC_URL"):
        overrides["public_url"] = f"http://{host}:{port}"
    limits = GunicornLimits(workers=workers, threads=threads, timeout=timeout)
    try:
        limits.validated()
        app = create_app(Settings.from_env(**overrides))
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
        click.echo(f"  ({workers} workers x {threads} threads, {timeout} s per request)")
        sys.stdout.flush()

    try:
        run_gunicorn(app, host, port, limits, announce)
    except PluginError as exc:
        raise UserError(str(exc), 2) from None


@main.command()
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
    from pathlib import Path

    from plugin.serving import bind, is_loopback, log_routes, serve_until_stopped
    from sandbox.app import create_app as create_sandbox
    from sandbox.auth import Client
    from sandbox.testing import build_sandbox

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


@main.command()
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
    from pathlib import Path

    from plugin.serving import bind, log_routes, serve_until_stopped
    from plugin.web import create_app
    from plugin.web.settings import Settings
    from sandbox.app import create_app as create_sandbox
    from sandbox.auth import Client
    from sandbox.testing import APP_SCOPES, CODER_ROLE_CODES, CODERS, build_sandbox
    from smart_launch import Registry
    from smart_launch.registry import RegisteredEhr

    host = "127.0.0.1"
    app_base, ehr_base = f"http://{host}:{port}", f"http://{host}:{port + 10}"
    fixtures = Path(__file__).resolve().parents[1] / "fixtures"
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


if __name__ == "__main__":  # pragma: no cover
    main()
