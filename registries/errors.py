"""The registries' one error type, apart from ``base`` so that ``records`` (the rejected-record
bookkeeping every registry owns) and ``base`` (the ``Registry`` interface) can both raise it
without importing each other."""


class RegistryError(Exception):
    """A registry URL or entry that cannot be used (the message says why)."""
