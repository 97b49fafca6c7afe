"""The one exception the dev cluster raises for problems a user can act on."""

from __future__ import annotations


class DevClusterError(Exception):
    """A problem with the local cluster that the user can fix (missing binaries, busy workdir, ...).

    Kept separate from `stackops.cli.UserError` so this package does not import the CLI
    (which would be an import cycle once the CLI wires in `stackops dev cluster`); the CLI
    maps it to its usual "one line per problem, exit 2".
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.problems = message.splitlines() or [message]
