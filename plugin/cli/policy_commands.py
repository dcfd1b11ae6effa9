"""``unitguard policy``: the policy data, and imports of CMS's PTP, MUE and fee schedule files."""

from __future__ import annotations

from pathlib import Path

import click

from plugin.cli.user_error import UserError
from plugin.errors import PluginError


@click.group()
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
@click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]), help="Date of service [today].")
def show_policy(day) -> None:
    """Which version of each policy table is in force on a date, and where it came from."""
    from datetime import date

    from plugin.policy import load_policy
    from plugin.policy.show import describe

    try:
        lines = describe(load_policy(), day.date() if day else date.today())
    except PluginError as exc:
        raise UserError(str(exc), exc.exit_code) from None
    click.echo("\n".join(lines))


@policy.command("import-mue")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--into", type=click.Path(file_okay=False), help="Policy folder [UNITGUARD_POLICY_DIR]."
)
@click.option("--effective", type=click.DateTime(["%Y-%m-%d"]), help="When the name has no date.")
@click.option("--all-codes", is_flag=True, help="Keep every code, not only therapy codes.")
def import_mue(file: str, into: str | None, effective, all_codes: bool) -> None:
    """Load CMS's quarterly practitioner MUE file (csv, or the zip as downloaded)."""
    from plugin.policy import user_policy_dir
    from plugin.policy.mue_file import import_mue_file

    try:
        r = import_mue_file(
            Path(file),
            Path(into) if into else user_policy_dir(),
            effective and effective.date(),
            all_codes,
        )
    except PluginError as exc:
        raise UserError(str(exc), exc.exit_code) from None
    click.echo(f"imported {r.kept} MUEs ({r.read} read) in force from {r.effective} into {r.path}")


@policy.command("import-mpfs")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--gpci", type=click.Path(exists=True, dir_okay=False), help="CMS GPCIyyyy file.")
@click.option("--locality", metavar="ID", help="Medicare locality for the amounts, e.g. 10112-00.")
@click.option(
    "--into", type=click.Path(file_okay=False), help="Policy folder [UNITGUARD_POLICY_DIR]."
)
@click.option("--all-codes", is_flag=True, help="Keep every code, not only therapy codes.")
def import_mpfs(
    file: str, gpci: str | None, locality: str | None, into: str | None, all_codes: bool
):
    """Load CMS's PFS relative value file (PPRRVU csv/txt, or the RVUyyA zip) and its GPCIs."""
    from plugin.policy import user_policy_dir
    from plugin.policy.mpfs_file import import_mpfs_file

    folder = Path(into) if into else user_policy_dir()
    try:
        r = import_mpfs_file(Path(file), folder, Path(gpci) if gpci else None, locality, all_codes)
    except PluginError as exc:
        raise UserError(str(exc), exc.exit_code) from None
    click.echo(
        f"imported {r.kept} RVU rows ({r.read} read) in force from {r.effective} into {r.path}"
    )
    if r.gpci_year:
        click.echo(
            f"imported {r.localities} GPCI {r.gpci_year} localities; "
            f"amounts for locality {locality or 'national'}"
        )
