"""User-facing errors: each carries a one-line message that names the problem."""


class FaceSwapError(Exception):
    """Base class; str(error) is a one-line message fit for a status line or a CLI."""


class ModelFileError(FaceSwapError):
    """A model file is missing, corrupt, or has the wrong signature."""


class ModelOutputError(FaceSwapError):
    """A model ran but its output is unusable (NaN, infinite): the model is broken."""


class InputError(FaceSwapError):
    """An input image or video cannot be read or holds no usable face."""


def one_line(exc: BaseException) -> str:
    """An exception as one status/CLI line: our errors as written, others with their type."""
    lines = str(exc).strip().splitlines()
    message = lines[0] if lines else ""
    if isinstance(exc, FaceSwapError):
        return message or type(exc).__name__
    return f"{type(exc).__name__}: {message}".rstrip(": ")


class TruncatedInput(UserWarning):
    """An input file ends early; what was read is used. The CLI shows it as one line."""


class Terminated(BaseException):
    """SIGTERM arrived: unwinds a command like KeyboardInterrupt does (not an Exception, so
    no `except Exception` swallows it)."""

