"""Errors of the unitguard application and the CLI exit codes they map to.

PluginError
 +-- InputError        the input cannot be reviewed (exit 2): not JSON, not a Bundle, no Encounter
 +-- PolicyError       policy data is missing or malformed (exit 3)
"""

from __future__ import annotations

# Exit codes are never reused: 0 clean, 1 error findings, 2 input cannot be reviewed,
# 3 policy data broken.
EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_BAD_INPUT = 2
EXIT_POLICY = 3


class PluginError(Exception):
    """Base of unitguard's own errors; the message is safe to show to a user."""

    exit_code = EXIT_BAD_INPUT


class InputError(PluginError, ValueError):
    """The input cannot be reviewed; the message says what and where."""

    exit_code = EXIT_BAD_INPUT


class PolicyError(PluginError):
    """Policy data is missing or malformed."""

    exit_code = EXIT_POLICY
