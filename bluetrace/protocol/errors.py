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
    """We were asked for something the protocol cannot do: a message it cannot
    carry, or a call its state does not allow."""


class DataAfterEndError(LocalProtocolError):
    """The host fed bytes after it had said the stream ended (``b""``), as
    h11 refuses them: a bug in the host, which must not be dropped unseen."""
