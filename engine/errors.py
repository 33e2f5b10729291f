"""Typed user-facing failures.

Anything a user can cause (bad file, bad number, missing weights) is raised as a `StillMotionError`; the CLI and
the panel turn it into one clear line. Anything else is a bug and is reported as such.
"""

from __future__ import annotations


class StillMotionError(Exception):
    """A failure the user can act on; its message is the one line they see."""

    exit_code = 2


class BadInputError(StillMotionError):
    """An input file or argument is missing, unreadable or out of range."""


class OutputExistsError(StillMotionError):
    """The output exists and replacing it was not asked for."""


class OutputError(StillMotionError):
    """The output cannot be written (folder missing or not writable, disk full)."""


class MissingWeightsError(StillMotionError):
    """A diffusion engine's local weights were not found."""


class CancelledError(StillMotionError):
    """The user cancelled the job."""

    exit_code = 130


class WorkerCrashedError(StillMotionError):
    """A worker process died without reporting a result."""

    exit_code = 1
