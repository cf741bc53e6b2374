"""TLS on the C2S connection, as bytes in and bytes out.

``ssl.MemoryBIO`` and ``SSLObject`` keep TLS without I/O, like the
connection objects: a :class:`TlsSession` is fed what arrived from the
socket, gives the plaintext for the protocol object, and hands over the
encrypted bytes to send. A :class:`TlsStream` puts a session over a
:class:`~bluetrace.runtime.transports.Stream` and is used like one, with
plaintext in and out, so a program picks a plain or a TLS stream once, when
the connection is made, and none of its other code knows which it has. The
frames inside are unchanged (protocol_spec.md, section 3.7). Any TLS failure
is one :class:`TlsError` with a one-line reason.
"""

import hashlib
import socket
import ssl
from collections.abc import Callable
from pathlib import Path

from bluetrace.runtime.transports import Stream

READ_SIZE = 64 * 1024


class TlsError(Exception):
    """The TLS layer failed: a bad handshake, a bad record, a wrong certificate.

    ``during_handshake`` says whether the bytes that broke it came before the
    handshake was done (a :class:`TlsStream` sets it), so a server can count
    failed handshakes apart from connections that broke later."""

    def __init__(self, reason: str, *, during_handshake: bool = False) -> None:
        super().__init__(reason)
        self.during_handshake = during_handshake


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """TLS 1.2 or later with the server's certificate and key; OSError or
    ssl.SSLError (the caller says which file) if they cannot be loaded."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


def client_context(cafile: Path | None) -> ssl.SSLContext:
    """With ``cafile``: verify the server against it (name or IP included).
    Without: the certificate is checked by its pinned fingerprint instead
    (``TlsSession(pin=...)``), as a self-signed one cannot be verified."""
    if cafile is not None:
        context = ssl.create_default_context(cafile=str(cafile))
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def fingerprint(der: bytes) -> str:
    """The SHA-256 fingerprint of a DER certificate, as lowercase hex."""
    return hashlib.sha256(der).hexdigest()


def normalise_pin(text: str) -> str:
    """``AB:CD:...`` or ``abcd...`` to 64 lowercase hex digits; ValueError otherwise."""
    pin = text.replace(":", "").strip().lower()
    if len(pin) != 64 or any(char not in "0123456789abcdef" for char in pin):
        raise ValueError("a pin is the certificate's SHA-256 fingerprint: 64 hex digits")
    return pin


class TlsSession:
    """One side of one TLS connection, with no socket."""

    def __init__(
        self,
        context: ssl.SSLContext,
        *,
        server_side: bool,
        server_hostname: str | None = None,
        pin: str | None = None,
    ) -> None:
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._ssl = context.wrap_bio(
            self._incoming, self._outgoing, server_side=server_side,
            server_hostname=server_hostname,
        )  # fmt: skip
        self._pin = pin
        self._server_side = server_side
        self._pending = bytearray()
        self.handshake_done = False

    @property
    def server_side(self) -> bool:
        return self._server_side

    def start(self) -> None:
        """The client's first flight (ClientHello)."""
        self._handshake()

    def receive(self, data: bytes) -> bytes:
        """Encrypted bytes from the peer (``b""`` at its end of stream); the
        plaintext they complete. TlsError if the peer broke TLS."""
        if data:
            self._incoming.write(data)
        else:
            self._incoming.write_eof()
        try:
            if not self.handshake_done and not self._handshake():
                return b""
            chunks = []
            while True:
                try:
                    chunk = self._ssl.read(READ_SIZE)
                except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                    break
                if not chunk:
                    break
                chunks.append(chunk)
        except ssl.SSLError as exc:
            raise TlsError(self._explain(exc)) from None
        return b"".join(chunks)

    def send(self, plain: bytes) -> None:
        """Plaintext for the peer; held until the handshake is done."""
        if not plain:
            return
        if not self.handshake_done:
            self._pending += plain
            return
        try:
            self._ssl.write(plain)
        except ssl.SSLError as exc:
            raise TlsError(_reason(exc)) from None

    def data_to_send(self) -> bytes:
        return self._outgoing.read()

    def _handshake(self) -> bool:
        try:
            self._ssl.do_handshake()
        except ssl.SSLWantReadError:
            return False
        except ssl.SSLError as exc:
            raise TlsError(self._explain(exc)) from None
        self.handshake_done = True
        if self._pin is not None:
            der = self._ssl.getpeercert(binary_form=True)
            if der is None or fingerprint(der) != self._pin:
                raise TlsError(
                    "the server's certificate does not match --tls-pin (the pin is the "
                    "certificate's SHA-256 fingerprint, as make certs prints it; or use "
                    "--tls-ca with the server's cert.pem)"
                )
        if self._pending:
            pending, self._pending = bytes(self._pending), bytearray()
            self.send(pending)
        return True

    def _explain(self, exc: ssl.SSLError) -> str:
        """What went wrong in words that name the option that fixes it; the
        library's own reason only where no mismatch of settings explains it."""
        reason = str(exc.reason or "").upper()
        not_tls = reason in _NOT_TLS or (
            not self.handshake_done and isinstance(exc, ssl.SSLEOFError)
        )
        if self._server_side:
            if not_tls or reason == "HTTP_REQUEST":
                return (
                    "the phone does not speak TLS (this server has --tls-cert; start the "
                    "phone with --tls-ca or --tls-pin)"
                )
            return _reason(exc)
        if not_tls and not self.handshake_done:
            return (
                "the server does not speak TLS: start the phone without --tls-ca and "
                "--tls-pin, or the server with --tls-cert and --tls-key"
            )
        if isinstance(exc, ssl.SSLCertVerificationError) or reason == "CERTIFICATE_VERIFY_FAILED":
            detail = getattr(exc, "verify_message", "") or "not verified"
            return (
                f"the server's certificate is not accepted by --tls-ca ({detail}): give "
                "--tls-ca the server's own cert.pem or the CA that signed it, or use --tls-pin"
            )
        return _reason(exc)


_NOT_TLS = frozenset({"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG",
                      "UNKNOWN_PROTOCOL", "UNEXPECTED_EOF_WHILE_READING"})  # fmt: skip
"""OpenSSL's reasons when the other side's bytes are not TLS records."""


def _reason(exc: ssl.SSLError) -> str:
    reason = exc.reason or exc.strerror or type(exc).__name__
    return f"TLS failed: {str(reason).replace('_', ' ').lower()}"


class TlsStream:
    """A :class:`Stream` with TLS inside: plaintext to :meth:`write`, plaintext
    to ``on_data``, the encrypted bytes on the wrapped stream.

    It takes the place of the wrapped stream's ``on_data`` and ``on_close``
    (as an SSL stream wraps a transport stream); reading, its scheduling
    (``on_readable``, :meth:`pull`) and the output queue stay the wrapped
    stream's. A client sends its ClientHello at once.

    A TLS failure closes the stream and is reported once, as ``on_close``'s
    error, a :class:`TlsError`, when the socket is closed. A server first sends
    the alert OpenSSL made (so the phone can say why), and closes once it is
    sent; a phone closes at once, since its user is told the reason directly.
    ``on_handshake`` (optional) is called after each piece of the peer's bytes
    fed to an unfinished handshake, with whether it is now done: a server
    charges each step's key-exchange work and ends its handshake deadline.
    """

    def __init__(
        self,
        stream: Stream,
        session: TlsSession,
        on_data: Callable[[bytes], None],
        on_close: Callable[[OSError | TlsError | None], None],
        *,
        on_handshake: Callable[[bool], None] | None = None,
    ) -> None:
        self.transport = stream
        self.session = session
        self.on_data = on_data
        self.on_close = on_close
        self.on_handshake = on_handshake
        self._failure: TlsError | None = None
        stream.on_data = self._on_encrypted
        stream.on_close = self._on_transport_closed
        if not session.server_side:
            try:
                session.start()
            except TlsError as exc:
                self._fail(exc, during_handshake=True)
                return
            self._flush()

    # -- the Stream interface -----------------------------------------------------
    @property
    def sock(self) -> socket.socket:
        return self.transport.sock

    @property
    def closed(self) -> bool:
        """Closed, or failed and closing (nothing more is read or sent)."""
        return self._failure is not None or self.transport.closed

    @property
    def queued(self) -> int:
        """Encrypted bytes written but not yet taken by the kernel."""
        return self.transport.queued

    @property
    def parked(self) -> bool:
        return self.transport.parked

    @property
    def handshake_done(self) -> bool:
        return self.session.handshake_done

    def write(self, data: bytes) -> None:
        """Plaintext for the peer (held by the session until the handshake is done)."""
        if self.closed or not data:
            return
        try:
            self.session.send(data)
        except TlsError as exc:
            self._fail(exc, during_handshake=False)
            return
        self._flush()

    def set_reading(self, wanted: bool) -> None:
        self.transport.set_reading(wanted)

    def pull(self) -> int:
        """Read once (see :meth:`Stream.pull`); the encrypted bytes taken."""
        return self.transport.pull()

    def unpark(self) -> None:
        self.transport.unpark()

    def close_when_flushed(self) -> None:
        self.transport.close_when_flushed()

    def close(self, error: OSError | None = None) -> None:
        self.transport.close(error)

    # -- the TLS layer ------------------------------------------------------------
    def _on_encrypted(self, data: bytes) -> None:
        handshaking = not self.session.handshake_done
        try:
            plain = self.session.receive(data)
        except TlsError as exc:
            if handshaking and self.on_handshake is not None:
                self.on_handshake(False)
            self._fail(exc, during_handshake=handshaking)
            return
        if handshaking and self.on_handshake is not None:
            self.on_handshake(self.session.handshake_done)
        self._flush()  # handshake replies, and what waited for the handshake
        if plain and not self.closed:
            self.on_data(plain)

    def _flush(self) -> None:
        data = self.session.data_to_send()
        if data:
            self.transport.write(data)

    def _fail(self, exc: TlsError, *, during_handshake: bool) -> None:
        self._failure = TlsError(str(exc), during_handshake=during_handshake)
        if self.session.server_side:
            self._flush()  # the alert, if any
            self.transport.close_when_flushed()
        else:
            self.transport.close()

    def _on_transport_closed(self, error: OSError | None) -> None:
        self.on_close(self._failure if self._failure is not None else error)
