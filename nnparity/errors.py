"""Expected errors: the CLI prints their message on one line and exits with their code."""


class NnparityError(Exception):
    """Base class; ``exit_code`` is what the CLI returns."""

    exit_code = 2


class InputError(NnparityError):
    """Bad usage or bad input (a file, a shape, a value): exit 2."""


class ModelError(InputError):
    """A user's model code raised or exited while nnparity called it (exit 2, as bad input)."""


class CheckFailed(NnparityError):
    """A check ran and did not pass: exit 1."""

    exit_code = 1
