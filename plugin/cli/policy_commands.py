"""``unitguard policy``: inspect the policy data and import CMS's NCCI PTP file into it."""

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
def show_policy() -> None:
    """List the policy tables with their version, source and effective date."""
    from plugin.policy import load_policy

    loaded = load_policy()
    for item in loaded.provenance:
        click.echo(f"{item.name:10} v{item.version} from {item.effective_from}: {item.source}")
    click.echo(f"PTP edits loaded: {len(loaded.ptp)}")
