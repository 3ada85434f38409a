"""The one error type of model/: every subpackage raises it, so it lives beside them, not in one."""


class ModelError(RuntimeError):
    """A model could not be loaded or returned something invalid; the message says which and why."""
