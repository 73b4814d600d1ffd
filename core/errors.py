"""User-facing errors: each carries a one-line message that names the problem."""


class FaceSwapError(Exception):
    """Base class; str(error) is a one-line message fit for a status line or a CLI."""


class ModelFileError(FaceSwapError):
    """A model file is missing, corrupt, or has the wrong signature."""


class InputError(FaceSwapError):
    """An input image or video cannot be read or holds no usable face."""
