"""``unitguard review``: one visit, from a Bundle file, stdin or a FHIR server."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import orjson

from plugin.cli.user_error import UserError
from plugin.errors import EXIT_FINDINGS, EXIT_OK, InputError, PluginError
from plugin.units import METHODS


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


@click.command()
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
    "--ehrs",
    "ehrs_file",
    type=click.Path(dir_okay=False),
    envvar="UNITGUARD_EHRS",
    help="The EHR list (TOML, as for serve). With --fhir, the entry whose issuer is BASE names "
    "the other hosts its note Binaries may be read from with the token (binary_hosts).",
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
    ehrs_file: str | None,
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
            hosts = binary_hosts_for(ehrs_file, fhir_base) if ehrs_file else ()
            data = fetch_from_server(fhir_base, encounter_id, hosts)
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


def binary_hosts_for(ehrs_file: str, base: str) -> tuple[str, ...]:
    """The ``binary_hosts`` of the EHR list's entry for this FHIR base (none when it has none)."""
    from smart_launch.registry import RegistryError, load_registry

    try:
        registry = load_registry(ehrs_file)
    except RegistryError as exc:
        raise InputError(str(exc)) from None
    for ehr in registry.ehrs:
        if ehr.issuer == base.rstrip("/"):
            return ehr.binary_hosts
    return ()


def fetch_from_server(base: str, encounter_id: str, binary_hosts: tuple[str, ...] = ()) -> dict:
    """The visit's Bundle read from a FHIR server with the app's own fetch (contract §1); the
    note Binaries on ``binary_hosts`` are read too, with the same token."""
    import os

    from plugin.ehr.fetch import FetchError, fetch_visit
    from smart_launch.client import FhirClient
    from smart_launch.errors import FhirError

    if not base.startswith(("http://", "https://")):
        raise InputError(f"--fhir {base!r} is not an http(s) URL")
    token = os.environ.get("UNITGUARD_FHIR_TOKEN") or None
    client = FhirClient(base, token=lambda: token)
    try:
        return fetch_visit(client, encounter_id, binary_hosts=binary_hosts)
    except (FhirError, FetchError) as exc:
        raise InputError(f"{base}: the visit could not be read: {exc}") from None
