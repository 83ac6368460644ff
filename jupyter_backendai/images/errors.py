"""The one error type image building raises, so callers can print it as a single line."""


class ImageBuildError(RuntimeError):
    """Image building failed; ``str(err)`` is one line a user can act on."""
