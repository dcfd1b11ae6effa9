"""UserError: how a command fails, as one clear line on stderr and a fixed exit code."""

from __future__ import annotations

import click


class UserError(click.ClickException):
    """A clear one-line message and a fixed exit code; never a traceback."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file=None) -> None:
        click.echo(f"unitguard: {self.format_message()}", err=True)
