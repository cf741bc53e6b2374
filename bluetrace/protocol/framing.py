"""Cutting a TCP byte stream into messages, with no sockets in sight.

Like h11's ``receive_data``/``next_event``: the owner feeds whatever bytes
arrived and pulls messages until :data:`NEED_DATA`. The header is checked the
moment its 6 bytes are present, so an oversized or unknown frame is refused
before its body is buffered; after the owner drains the decoder, at most one
header plus ``max_body`` bytes stay buffered.
"""

from typing import Final

from bluetrace.protocol import fastcodec, wire
from bluetrace.protocol.errors import FrameTooLargeError, RemoteProtocolError
from bluetrace.protocol.messages import Message, decode_body


class NeedData:
    """The type of :data:`NEED_DATA`: no whole message is buffered yet."""

    def __repr__(self) -> str:
        return "NEED_DATA"


_NeedData = NeedData
"""The earlier, private name of :class:`NeedData`, kept for its importers."""

NEED_DATA: Final = NeedData()


class FrameDecoder:
    """Incremental decoder for one connection's inbound direction.

    Once it has raised, it stays broken and raises the same error again:
    a stream that lost its framing cannot be trusted past that point.
    """

    def __init__(self, max_body: int = wire.MAX_FRAME_BODY) -> None:
        self.max_body = max_body
        self._buffer = bytearray()
        self._error: RemoteProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Bytes held that do not yet form a whole frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> None:
        """Buffer bytes from the peer. Cheap: parsing waits for next_message."""
        if self._error is not None:
            raise self._error
        self._buffer += data

    def next_message(self) -> Message | NeedData:
        """The next whole message, or NEED_DATA until more bytes arrive."""
        if self._error is not None:
            raise self._error
        buffer = self._buffer
        if len(buffer) < wire.FRAME_HEADER_LEN:
            return NEED_DATA
        try:
            kind, length = fastcodec.read_header(buffer)
            if length > self.max_body:
                raise FrameTooLargeError(
                    f"frame body of {length} bytes exceeds the limit of {self.max_body}"
                )
            end = wire.FRAME_HEADER_LEN + length
            if len(buffer) < end:
                return NEED_DATA
            body = bytes(buffer[wire.FRAME_HEADER_LEN : end])
            del buffer[:end]
            return decode_body(kind, body)
        except RemoteProtocolError as exc:
            self._error = exc
        buffer.clear()
        raise self._error

    def messages(self, data: bytes) -> list[Message]:
        """Feed ``data`` and return every message it completes."""
        self.feed(data)
        found: list[Message] = []
        while not isinstance(message := self.next_message(), NeedData):
            found.append(message)
        return found
