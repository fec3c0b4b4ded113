"""Expected failures, each with the exit code the CLI reports (ARCHITECTURE §5)."""
from __future__ import annotations


class NetdoctorError(Exception):
    """A failure the user can act on; shown as one line, never as a traceback."""

    exit_code = 3


class UsageProblem(NetdoctorError):
    """Bad input: a file that does not parse, an unknown rule, a wrong option (exit 2)."""

    exit_code = 2


class CouldNotRun(NetdoctorError):
    """The diagnosis could not run: API unreachable, forbidden, probes never ready (exit 3)."""

    exit_code = 3
