"""The errors a run raises for what went wrong in it (bad arguments raise ValueError and
TypeError, each naming the argument)."""


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss; the message names the step."""


class CheckpointMismatchError(ValueError):
    """A checkpoint does not fit the run restoring it: other arrays, or another setting.
    Nothing is moved when it is raised."""
