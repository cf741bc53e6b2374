"""The one error root of the protocol layer.

Anything other than :class:`ProtocolError` escaping the parser is a bug, so
callers can guard a connection with a single ``except ProtocolError``.
"""


class ProtocolError(Exception):
    """Bytes or values that do not follow protocol_spec.md."""


class RemoteProtocolError(ProtocolError):
    """The peer sent bytes that break the protocol: close that peer only."""


class FrameTooLargeError(RemoteProtocolError):
    """A frame header announced a body above the receiver's limit."""


class LocalProtocolError(ProtocolError):
    """We were asked to build a message that the protocol cannot carry."""
