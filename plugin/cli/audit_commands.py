"""``unitguard audit`` (every visit of a Bulk Data export or folder) and ``unitguard synth``
(synthetic visits with known defects to audit)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from plugin.cli.user_error import UserError
from plugin.errors import PluginError
from plugin.units import METHODS


@click.command()
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


@click.command()
@click.option("--visits", default=1000, show_default=True, type=int)
@click.option("--defect-rate", default=0.2, show_default=True, type=float)
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
def synth(visits: int, defect_rate: float, seed: int, out_dir: str) -> None:
    """Write synthetic NDJSON visits with known injected defects (truth.csv)."""
    from plugin.batch.synth import generate

    injected = generate(Path(out_dir), visits, defect_rate, seed)
    click.echo(f"{visits} visits, {sum(injected.values())} injected defects into {out_dir}")
