"""The ``unitguard`` command line (Click): the group and its commands, one module per group of
commands (review, audit and synth, serve/sandbox/demo, policy, db)."""

from __future__ import annotations

import click

from plugin import __version__
from plugin.cli.audit_commands import audit, synth
from plugin.cli.db_commands import db
from plugin.cli.policy_commands import policy
from plugin.cli.review_command import review
from plugin.cli.server_commands import demo, sandbox, serve


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="unitguard")
def main() -> None:
    """unitguard: check that therapy documentation supports the billed timed units.

    Reviews a visit's FHIR R4 resources (Encounter, Procedure, Observation, Goal, Claim or
    ChargeItem) against the Medicare 8-minute rule, per-payer unit methods, GP/GO/GN, CQ/CO,
    59/XS with NCCI edits, the KX threshold and the documentation a reviewer looks for.
    """


for command in (review, policy, audit, synth, serve, sandbox, demo, db):
    main.add_command(command)
