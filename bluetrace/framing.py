"""Cutting a TCP byte stream into messages, with no sockets in sight.

Like h11's ``receive_data``/``next_event``: the owner feeds whatever bytes
arrived and pulls messages until :data:`NEED_DATA`. The header is checked the
moment its 6 bytes are present, so an oversized or unknown frame is refused
before its body is buffered; after the owner drains the decoder, at most one
header plus ``max_body`` bytes stay buffered.
"""

from typing import Final

from construct import ConstructError

from bluetrace import wire
from bluetrace.errors import FrameTooLargeError, RemoteProtocolError
from bluetrace.messages import Message, _reason, decode

_KNOWN_TYPES = frozenset(int(kind) for kind in wire.MessageType)
"""The header is peeked at directly (it is on every frame's path); the whole
frame, header included, is then parsed by the construct definition."""


class _NeedData:
    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = _NeedData()


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

    def next_message(self) -> Message | _NeedData:
        """The next whole message, or NEED_DATA until more bytes arrive."""
        if self._error is not None:
            raise self._error
        if len(self._buffer) < wire.FRAME_HEADER_LEN:
            return NEED_DATA
        try:
            buffer = self._buffer
            if buffer[0] != wire.FRAME_VERSION or buffer[1] not in _KNOWN_TYPES:
                # Let the construct definition say exactly what is wrong.
                wire.FrameHeader.parse(bytes(buffer[: wire.FRAME_HEADER_LEN]))
            length = int.from_bytes(buffer[2 : wire.FRAME_HEADER_LEN], "big")
            if length > self.max_body:
                raise FrameTooLargeError(
                    f"frame body of {length} bytes exceeds the limit of {self.max_body}"
                )
            end = wire.FRAME_HEADER_LEN + length
            if len(self._buffer) < end:
                return NEED_DATA
            frame = bytes(self._buffer[:end])
            del self._buffer[:end]
            return decode(frame)
        except ConstructError as exc:
            self._error = RemoteProtocolError(_reason(exc))
        except RemoteProtocolError as exc:
            self._error = exc
        self._buffer.clear()
        raise self._error

    def messages(self, data: bytes) -> list[Message]:
        """Feed ``data`` and return every message it completes."""
        self.feed(data)
        found: list[Message] = []
        while not isinstance(message := self.next_message(), _NeedData):
            found.append(message)
        return found
