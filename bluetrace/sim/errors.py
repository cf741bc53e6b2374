"""Errors of the simulator that the command line turns into one line (no numpy here)."""


class EngineUnavailableError(RuntimeError):
    """The chosen engine cannot run here; the message is one line for the user."""
