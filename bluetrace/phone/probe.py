"""Is a bluetrace server there? Asked before the user types a password.

The phone connects as soon as it starts and sends one LOGOUT: before a login
every bluetrace server answers it with ERROR NOT_LOGGED_IN and keeps the
session as it was (protocol_spec.md, section 4, the AWAITING_LOGIN row for
TEMPID_REQUEST, UPLOAD or LOGOUT), so the question costs the server nothing
and counts toward no limit. Any other answer, no answer, or the connection
closed says, in words a user can act on, what listens there instead. Like the
phone, this object does no I/O: bytes in, a verdict out.
"""

from dataclasses import dataclass

from bluetrace.protocol.errors import ProtocolError
from bluetrace.protocol.framing import FrameDecoder, NeedData
from bluetrace.protocol.messages import ErrorReply, LogoutRequest, encode
from bluetrace.protocol.wire import ErrorCode

ANSWER_WAIT = 3.0
"""Seconds a connected peer has to answer the probe (a bluetrace server
answers at once, from memory) before the phone says it is not one."""
TLS_HINT = "start the phone with --tls-ca FILE or --tls-pin SHA256 (make certs prints the pin)"
SHOWN_BYTES = 40
"""How much of a foreign answer is quoted to the user."""


@dataclass(frozen=True, slots=True)
class Verdict:
    ready: bool
    reason: str = ""
    """Why the phone cannot use this peer, for people (empty when ready)."""


READY = Verdict(True)


def looks_like_tls(data: bytes) -> bool:
    """A TLS record: content type 20-23 (handshake, alert, ...), then major
    version 3. No bluetrace frame starts so: its first byte is 0x01."""
    return len(data) >= 2 and 20 <= data[0] <= 23 and data[1] == 3


class ServerProbe:
    """One probe of one peer, named ``where`` (``host:port``) in its verdicts."""

    def __init__(self, where: str) -> None:
        self.where = where
        self._decoder = FrameDecoder()
        self._first = b""

    @staticmethod
    def request() -> bytes:
        return encode(LogoutRequest())

    def feed(self, data: bytes) -> Verdict | None:
        """Bytes from the peer (``b""``: it closed); None while undecided."""
        if not data:
            return self.closed()
        if len(self._first) < SHOWN_BYTES:
            self._first += data[: SHOWN_BYTES - len(self._first)]
        if looks_like_tls(self._first):
            return Verdict(False, f"{self.where} speaks TLS: {TLS_HINT}")
        try:
            self._decoder.feed(data)
            message = self._decoder.next_message()
        except ProtocolError:
            return Verdict(False, f"{self.where} is not a bluetrace server ({self._quoted()})")
        if isinstance(message, NeedData):
            return None
        if isinstance(message, ErrorReply):
            if message.code is ErrorCode.NOT_LOGGED_IN:
                return READY
            return Verdict(False, f"the server at {self.where} refused: {message.text}")
        return Verdict(
            False, f"{self.where} answered with {message.TYPE.name}: not a bluetrace server"
        )

    def closed(self) -> Verdict:
        return Verdict(
            False,
            f"{self.where} closed the connection without answering: not a bluetrace "
            f"server, or one that speaks TLS (then {TLS_HINT})",
        )

    def timed_out(self) -> Verdict:
        return Verdict(
            False,
            f"{self.where} accepted the connection but did not answer within "
            f"{ANSWER_WAIT:g} s: not a bluetrace server (is this the right port?)",
        )

    def _quoted(self) -> str:
        text = self._first.decode("ascii", "replace")
        printable = "".join(char if char.isprintable() else " " for char in text).strip()
        if printable and sum(char.isalnum() for char in printable) >= len(printable) // 2:
            return f'it answered "{" ".join(printable.split())}"'
        return f"it answered {len(self._first)} bytes that are no bluetrace frame"
