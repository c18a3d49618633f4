"""The protocol package's exception hierarchy.

A peer's bad message is reported as a value (a rejection with a reason) by the
code that handles peers; these exceptions are what the low-level parsers raise so
that such code has exactly one thing to catch.
"""


class ProtocolError(Exception):
    """Base of every error raised by `protocol`."""


class DecodeError(ProtocolError):
    """Bytes that are not a canonical encoding of the expected type."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ValidationError(ProtocolError):
    """A well-formed object that breaks a protocol rule (wrong chain, bad signature...)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvariantViolation(ProtocolError):
    """A broken internal invariant: a bug, never a peer's fault. Crash loudly."""
