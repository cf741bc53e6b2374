"""``bluetrace-client``: the phone, wired to the terminal, TCP, UDP and a file.

Glue only: :class:`~bluetrace.phone.core.Phone` holds the protocol and
:class:`~bluetrace.phone.shell.Shell` the commands and texts; this module moves
bytes between them and the sockets, keeps one timer at their nearest
deadline, and shows what the shell says. The terminal shows only what a
user should read: prompts, the specification's texts and one-line errors.
"""

import argparse
import contextlib
import errno
import fcntl
import hashlib
import os
import signal
import socket
import ssl
import sys
from collections.abc import Sequence
from pathlib import Path

from bluetrace import __version__
from bluetrace.phone.commands import HELP_TEXT
from bluetrace.phone.contactfile import contact_line, load_contact_log
from bluetrace.phone.contacts import DEFAULT_MAX_CONTACTS, DEFAULT_RETENTION
from bluetrace.phone.core import DEFAULT_REPLY_TIMEOUT, Phone
from bluetrace.phone.probe import ANSWER_WAIT, ServerProbe, Verdict
from bluetrace.phone.shell import (
    MAX_TYPED_AHEAD,
    CheckServer,
    Connect,
    Disconnect,
    Effect,
    Exit,
    Prompt,
    SendBeacon,
    Shell,
    Show,
    Transmit,
)
from bluetrace.protocol.clock import Clock, SystemClock
from bluetrace.protocol.messages import TempIDWindow
from bluetrace.runtime.cli import fail, port, positive_seconds, seconds, whole
from bluetrace.runtime.reactor import Handle, Reactor
from bluetrace.runtime.storage import LineAppender, replace_lines
from bluetrace.runtime.tls import TlsError, TlsSession, TlsStream, client_context, normalise_pin
from bluetrace.runtime.transports import DatagramEndpoint, Stream, connect
from bluetrace.term.terminal import EditorTerminal, PlainTerminal, Terminal

PROGRAM = "bluetrace-client"
CONNECT_TIMEOUT = 10.0
UDP_RECEIVE_BUFFER = 4 * 1024 * 1024
MAX_FILE_NAME = 255


def contact_log_name(username: str) -> str:
    """``<username>_contactlog.txt``, made safe: a username is the server's
    data, and must not steer the file outside the folder (``../x``), hide it
    (``.x``) or exceed the file-name limit. Unsafe characters are %-encoded;
    an over-long name keeps a prefix and a digest."""
    safe = "".join(
        f"%{ord(char):02X}" if char in "/%\\\0" or not char.isprintable() else char
        for char in username
    )
    if safe.startswith("."):
        safe = "%2E" + safe[1:]
    name = f"{safe}_contactlog.txt"
    if len(name.encode("utf-8")) > MAX_FILE_NAME:
        digest = hashlib.sha256(username.encode("utf-8")).hexdigest()[:16]
        prefix = safe.encode("utf-8")[:160].decode("utf-8", errors="ignore")
        name = f"{prefix}~{digest}_contactlog.txt"
    return name


class FileContactLog:
    """The contact log in the working directory, locked against a second phone
    of the same user in the same folder."""

    def __init__(self, folder: Path, username: str) -> None:
        self.path = folder / contact_log_name(username)
        if self.path.is_symlink():
            raise OSError(errno.ELOOP, f"{self.path.name} is a symbolic link; refusing to use it")
        self._lock_fd = os.open(
            folder / f".{self.path.name}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644
        )
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            raise OSError(
                errno.EBUSY,
                f"another phone of {username} is already running in this folder "
                f"(it holds {self.path.name})",
            ) from None
        self._appender = LineAppender(self.path, durable=False)

    def load(self) -> tuple[list[TempIDWindow], list[str]]:
        return load_contact_log(self.path)

    def append(self, window: TempIDWindow) -> None:
        self._appender.append([contact_line(window)])

    def rewrite(self, windows: Sequence[TempIDWindow]) -> None:
        self._appender.close()  # the rename replaces the file under the old descriptor
        replace_lines(self.path, [contact_line(window) for window in windows])

    def close(self) -> None:
        self._appender.close()
        with contextlib.suppress(OSError):
            os.close(self._lock_fd)


class Client:
    def __init__(
        self,
        reactor: Reactor,
        clock: Clock,
        phone: Phone,
        *,
        server_address: tuple[str, int],
        udp: socket.socket,
        terminal: Terminal,
        tls_context: ssl.SSLContext | None = None,
        tls_pin: str | None = None,
    ) -> None:
        self.reactor = reactor
        self.tls_context = tls_context
        self.tls_pin = tls_pin
        self.clock = clock
        self.phone = phone
        self.shell = Shell(phone, clock)
        self.server_address = server_address
        self.terminal = terminal
        self.status = 0
        self.stream: Stream | TlsStream | None = None
        """The server connection: a TlsStream when TLS is on (plaintext either way)."""
        self.udp = DatagramEndpoint(reactor, udp, self._on_datagram, self._on_udp_error)
        terminal.start(reactor, self._on_line, self._on_eof, self.interrupt)
        self._timer: Handle | None = None
        self._applying = False
        """Effects are being carried out (a UDP error then joins them)."""
        self._interrupted = False
        self._abandon_connect: object = None
        self._probe: ServerProbe | None = None
        """While the server is being checked: the check (its connection is
        ``stream``, closed once it has answered)."""
        self._probe_timer: Handle | None = None

    def start(self) -> None:
        self.apply(self.shell.start())

    # -- effects ------------------------------------------------------------------
    def apply(self, effects: list[Effect]) -> None:
        """Carry out effects in order; the terminal is flushed once at the end,
        not per line, which matters when beacons arrive by the thousand."""
        outer, self._applying = self._applying, True
        try:
            for effect in effects:
                if not self._apply(effect):
                    return
        finally:
            self._applying = outer
            self.terminal.flush()
            self.terminal.hold_input(self.shell.typed_ahead_full)
        self._reschedule()

    def _apply(self, effect: Effect) -> bool:
        if isinstance(effect, Show):
            self.terminal.show(effect.text)
        elif isinstance(effect, Prompt):
            self.terminal.prompt(effect.text, effect.secret)
        elif isinstance(effect, Transmit):
            self._to_server(self.phone.data_to_send())
        elif isinstance(effect, SendBeacon):
            self._send_beacon(effect)
        elif isinstance(effect, CheckServer):
            host, port_number = self.server_address
            self._probe = ServerProbe(f"{host}:{port_number}")
            self._abandon_connect = connect(
                self.reactor,
                self.server_address,
                self._on_connected,
                self._on_connect_failed,
                timeout=CONNECT_TIMEOUT,
            )
        elif isinstance(effect, Connect):
            self._abandon_connect = connect(
                self.reactor,
                self.server_address,
                self._on_connected,
                self._on_connect_failed,
                timeout=CONNECT_TIMEOUT,
            )
        elif isinstance(effect, Disconnect):
            if self.stream is not None:
                self.stream.close_when_flushed()
        elif isinstance(effect, Exit):
            self.terminal.end_prompt()
            self.status = effect.status
            self.reactor.stop()
            return False
        return True

    def _send_beacon(self, effect: SendBeacon) -> None:
        host, port_number = effect.address
        try:
            self.udp.send(effect.data, effect.address)
        except OSError as exc:
            self.terminal.show(
                f"Could not send the beacon to {host}:{port_number}: {exc.strerror or exc}"
            )
            return
        for text in effect.shown:
            self.terminal.show(text)

    def _after_phone(self) -> None:
        """Whatever the phone did: send its bytes, and let the shell speak."""
        effects = self.shell.events(self.phone.next_events())
        self._to_server(self.phone.data_to_send())
        self.apply(effects)

    def _to_server(self, data: bytes) -> None:
        if self.stream is not None:
            self.stream.write(data)

    def _reschedule(self) -> None:
        deadlines = [d for d in (self.phone.get_timer(), self.shell.get_timer()) if d is not None]
        deadline = min(deadlines) if deadlines else None
        if self._timer is not None and (deadline is None or self._timer.when != deadline):
            self._timer.cancel()
            self._timer = None
        if deadline is not None and self._timer is None:
            self._timer = self.reactor.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        now = self.clock.monotonic()
        self.phone.handle_timer(now)
        self._after_phone()
        self.apply(self.shell.handle_timer(now))

    # -- the server connection ---------------------------------------------------
    def _on_connected(self, sock: socket.socket) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.stream = Stream(self.reactor, sock, self._on_data, self._on_server_closed)
        if self.tls_context is not None:
            host = self.server_address[0]
            session = TlsSession(
                self.tls_context, server_side=False, server_hostname=host, pin=self.tls_pin
            )
            # Sends the ClientHello; plaintext from here on, as without TLS.
            self.stream = TlsStream(self.stream, session, self._on_data, self._on_server_closed)
        if self._probe is not None:
            self._to_server(self._probe.request())
            self._probe_timer = self.reactor.call_later(ANSWER_WAIT, self._probe_timed_out)
            return
        self.apply(self.shell.connected(self.clock.monotonic()))

    def _on_connect_failed(self, reason: str) -> None:
        host, port_number = self.server_address
        self._probe = None
        hint = ""
        if "refused" in reason.lower():
            hint = " (is the server running, and on this port?)"
        self.apply(self.shell.connect_failed(f"{host}:{port_number}: {reason}{hint}"))

    # -- the check before the password ------------------------------------------
    def _probed(self, verdict: Verdict) -> None:
        """The check is over: its connection is closed either way (the login
        opens its own, so the server's login deadline starts only then)."""
        self._probe = None
        if self._probe_timer is not None:
            self._probe_timer.cancel()
            self._probe_timer = None
        if self.stream is not None:
            self.stream.on_close = _ignore_close  # the check's end is no lost session
            self.stream.close()
        self.stream = None
        if verdict.ready:
            self.apply(self.shell.server_ready())
        else:
            self.apply(self.shell.server_unusable(verdict.reason))

    def _probe_timed_out(self) -> None:
        self._probe_timer = None
        if self._probe is not None:
            self._probed(self._probe.timed_out())

    def _on_data(self, data: bytes) -> None:
        if self._probe is not None:
            verdict = self._probe.feed(data)
            if verdict is not None:
                self._probed(verdict)
            return
        self.phone.receive_data(data, self.clock.monotonic())
        self._after_phone()

    def _on_server_closed(self, error: OSError | TlsError | None) -> None:
        if self._probe is not None:
            if error is None:
                verdict = self._probe.closed()
            elif isinstance(error, TlsError):
                verdict = Verdict(False, str(error))
            else:
                verdict = Verdict(False, f"{self._probe.where}: {error.strerror or error}")
            self._probed(verdict)
            return
        if isinstance(error, TlsError):
            self.phone.connection_lost(str(error))
        elif error is None:
            self.phone.receive_data(b"", self.clock.monotonic())
        else:
            self.phone.connection_lost(str(error.strerror or error))
        self._after_phone()

    # -- beacons --------------------------------------------------------------------
    def _on_datagram(self, data: bytes, sender: tuple[str, int]) -> None:
        self.phone.receive_beacon(data, sender, self.clock.monotonic())
        self._after_phone()

    def _on_udp_error(self, error: OSError, destination: tuple[str, int] | None) -> None:
        """An ICMP error for an earlier beacon, most often "port unreachable":
        nobody listens there. Reported while a beacon is being sent (the
        earlier one's error first), the line joins that command's output."""
        text = beacon_error_text(error, destination)
        if self._applying:
            self.terminal.show(text)
        else:
            self.apply(self.shell.notice(text))

    # -- the terminal -----------------------------------------------------------------
    def _on_line(self, text: str) -> None:
        self.apply(self.shell.line(text))

    def _on_eof(self) -> None:
        self.apply(self.shell.end_of_input())

    def interrupt(self) -> None:
        """Ctrl-C logs out like end of input; a second one leaves at once."""
        if self._interrupted:
            self.terminal.show("Interrupted.")
            self.terminal.flush()
            self.status = 130
            self.reactor.stop()
            return
        self._interrupted = True
        self.apply(self.shell.end_of_input(interrupted=True))

    def close(self) -> None:
        self.udp.close()
        if self.stream is not None and not self.stream.closed:
            self.stream.close()
        self.terminal.restore()


def beacon_error_text(error: OSError, destination: tuple[str, int] | None) -> str:
    """One line for a beacon the network sent back."""
    if destination is None:
        return f"A beacon was not delivered: {error.strerror or error}"
    host, port_number = destination
    if error.errno == errno.ECONNREFUSED:
        return f"Beacon to {host}:{port_number}: nobody is listening there (port unreachable)"
    return f"Beacon to {host}:{port_number} was not delivered: {error.strerror or error}"


def _ignore_close(error: OSError | TlsError | None) -> None:
    """The check's connection ended; nothing depends on it."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="BlueTrace phone client: log in, download TempIDs, beacon other "
        "phones over UDP and upload the contact log.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=HELP_TEXT
        + "\n\nBefore it asks for the password, the phone checks that a bluetrace server\n"
        f"answers at server_ip:server_port: a peer that does not answer within {ANSWER_WAIT:g} s\n"
        "is reported as no bluetrace server. While a reply from the server is awaited,\n"
        f"up to {MAX_TYPED_AHEAD} typed commands wait, then run in order.\n\n"
        "Exit status: 0 after logout, 1 if the login is refused or the "
        "server is lost,\n2 for a usage error, 130 after Ctrl-C.",
    )
    parser.add_argument("server_ip", help="address or host name of the server")
    parser.add_argument(
        "server_port", type=lambda t: port(t, allow_zero=False), help="server TCP port"
    )
    parser.add_argument(
        "client_udp_port",
        type=lambda t: port(t, allow_zero=False),
        help="UDP port to receive beacons on",
    )
    parser.add_argument(
        "--log-retention",
        type=positive_seconds,
        default=DEFAULT_RETENTION,
        help="seconds a received beacon stays in the contact log (up to a year; "
        "default: %(default)s)",
    )
    parser.add_argument(
        "--reply-timeout",
        type=seconds(0, 3600),
        default=DEFAULT_REPLY_TIMEOUT,
        help="seconds to wait for the server's reply before giving up (default: %(default)s)",
    )
    parser.add_argument(
        "--auto-refresh",
        type=seconds(0, 3600),
        default=None,
        metavar="S",
        help="download a new TempID on its own S seconds before the current one expires "
        "(default: only when asked)",
    )
    parser.add_argument(
        "--max-contacts",
        type=whole(1, 10_000_000),
        default=DEFAULT_MAX_CONTACTS,
        help="entries the contact log holds at most; when it is full, each new contact "
        "replaces the oldest (you are told once, and an upload says how many it left out) "
        "(default: %(default)s, what one upload may carry)",
    )
    security = parser.add_argument_group("TLS (opt-in; protocol_spec.md, 3.7)")
    security.add_argument(
        "--tls-ca", type=Path, metavar="FILE", help="speak TLS; verify the server against this CA"
    )
    security.add_argument(
        "--tls-pin",
        metavar="SHA256",
        help="speak TLS; accept only a server certificate with this SHA-256 fingerprint",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def _resolve(host: str, port_number: int) -> tuple[str, int] | str:
    """The server's IPv4 address, looked up once before the loop starts."""
    try:
        found = socket.getaddrinfo(host, port_number, socket.AF_INET, socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        return f"cannot resolve {host}: {exc.strerror if isinstance(exc, OSError) else exc}"
    address = found[0][4]
    return str(address[0]), int(address[1])


def _stdin_fd() -> int:
    """fd 0, or /dev/null when the process was started with no stdin at all."""
    try:
        fd = sys.stdin.fileno()
        os.fstat(fd)
    except (AttributeError, ValueError, OSError):
        return os.open(os.devnull, os.O_RDONLY)
    return fd


def run(args: argparse.Namespace, clock: Clock | None = None) -> int:
    server_address = _resolve(args.server_ip, args.server_port)
    if isinstance(server_address, str):
        return fail(PROGRAM, server_address)
    tls_context, pin = None, None
    if args.tls_ca is not None or args.tls_pin is not None:
        try:
            pin = normalise_pin(args.tls_pin) if args.tls_pin is not None else None
            tls_context = client_context(args.tls_ca)
        except (ValueError, OSError, ssl.SSLError) as exc:
            return fail(PROGRAM, f"cannot set up TLS: {getattr(exc, 'strerror', None) or exc}", 2)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        udp.bind(("", args.client_udp_port))
    except OSError as exc:
        udp.close()
        return fail(
            PROGRAM,
            f"cannot receive beacons on UDP port {args.client_udp_port}: "
            f"{exc.strerror or exc} (choose another port)",
        )
    # Beacons come in bursts; a larger receive buffer (capped by the kernel's
    # rmem_max) absorbs a burst while the loop is busy printing.
    udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
    stores: list[FileContactLog] = []

    def open_store(username: str) -> FileContactLog:
        store = FileContactLog(Path.cwd(), username)
        stores.append(store)
        return store

    system_clock = clock or SystemClock()
    phone = Phone(
        system_clock,
        open_store,
        retention=args.log_retention,
        reply_timeout=args.reply_timeout,
        max_contacts=args.max_contacts,
        refresh_before=args.auto_refresh,
    )
    reactor = Reactor(system_clock.monotonic)
    stdin_fd = _stdin_fd()
    stdout_fd = sys.stdout.fileno()
    terminal: Terminal = (
        EditorTerminal(stdin_fd, stdout_fd)
        if EditorTerminal.usable(stdin_fd, stdout_fd)
        else PlainTerminal(sys.stdout, stdin_fd)
    )
    client = Client(
        reactor,
        system_clock,
        phone,
        server_address=server_address,
        udp=udp,
        terminal=terminal,
        tls_context=tls_context,
        tls_pin=pin,
    )
    reactor.add_signal_handler(signal.SIGINT, client.interrupt)
    reactor.add_signal_handler(signal.SIGTERM, client.interrupt)
    try:
        client.start()
        reactor.run()
    finally:
        client.close()
        for store in stores:
            store.close()
        reactor.close()
    return client.status


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return run(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
