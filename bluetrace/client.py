"""``bluetrace-client``: the core wired to the terminal, TCP, UDP and a file.

The terminal shows only what a user should read: prompts, the
specification's texts and one-line errors. Nothing else is printed.
"""

import argparse
import contextlib
import os
import signal
import socket
import sys
import termios
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from bluetrace.cli import fail, port, positive_seconds
from bluetrace.client_core import (
    DEFAULT_RETENTION,
    ClientCore,
    Effect,
    Exit,
    Prompt,
    Send,
    SendBeacon,
    Show,
)
from bluetrace.clock import Clock, SystemClock
from bluetrace.errors import ProtocolError
from bluetrace.framing import FrameDecoder
from bluetrace.messages import TempIDWindow, encode
from bluetrace.reactor import DatagramEndpoint, LineReader, Reactor, Stream, Timer
from bluetrace.records import load_contact_log
from bluetrace.storage import LineAppender, replace_lines

PROGRAM = "bluetrace-client"
CONNECT_TIMEOUT = 10.0
UDP_RECEIVE_BUFFER = 4 * 1024 * 1024


class FileContactLog:
    """``<username>_contactlog.txt`` in the working directory."""

    def __init__(self, folder: Path, username: str) -> None:
        self.path = folder / f"{username}_contactlog.txt"
        self._appender = LineAppender(self.path, durable=False)

    def load(self) -> tuple[list[TempIDWindow], list[str]]:
        return load_contact_log(self.path)

    def append(self, line: str) -> None:
        self._appender.append([line])

    def rewrite(self, lines: list[str]) -> None:
        self._appender.close()  # the rename replaces the file under the old descriptor
        replace_lines(self.path, lines)

    def close(self) -> None:
        self._appender.close()


class Terminal:
    """Writes effects' text; hides typing at secret prompts on a real tty."""

    def __init__(self, out: TextIO, fd: int) -> None:
        self.out = out
        self.fd = fd
        self.is_tty = os.isatty(fd)
        self.prompt_showing = False
        self._saved: list[Any] | None = None

    def show(self, text: str) -> None:
        if self.prompt_showing:
            self.out.write("\n")  # output arriving on its own starts a fresh line
            self.prompt_showing = False
        self.out.write(text + "\n")

    def flush(self) -> None:
        self.out.flush()

    def prompt(self, text: str, secret: bool) -> None:
        self.echo(not secret)
        self.out.write(text)
        self.prompt_showing = True

    def line_typed(self) -> None:
        if self._saved is not None:
            self.out.write("\n")  # the Enter was not echoed either
        self.prompt_showing = False
        self.echo(True)

    def echo(self, on: bool) -> None:
        if not self.is_tty:
            return
        if on and self._saved is not None:
            with contextlib.suppress(termios.error):
                termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            self._saved = None
        elif not on and self._saved is None:
            try:
                self._saved = termios.tcgetattr(self.fd)
                quiet = termios.tcgetattr(self.fd)
                quiet[3] &= ~termios.ECHO
                termios.tcsetattr(self.fd, termios.TCSADRAIN, quiet)
            except termios.error:
                self._saved = None


class Client:
    def __init__(
        self,
        reactor: Reactor,
        core: ClientCore,
        server: socket.socket,
        udp: socket.socket,
        terminal: Terminal,
    ) -> None:
        self.reactor = reactor
        self.core = core
        self.terminal = terminal
        self.status = 0
        self.decoder = FrameDecoder()
        self.stream = Stream(reactor, server, self._on_data, self._on_server_closed)
        self.udp = DatagramEndpoint(reactor, udp, self._on_datagram, self._on_udp_error)
        self.stdin = LineReader(reactor, terminal.fd, self._on_line, self._on_eof)
        self._timer: Timer | None = None
        self._interrupted = False

    def start(self) -> None:
        self.apply(self.core.start())

    def apply(self, effects: list[Effect]) -> None:
        """Carry out effects in order; the terminal is flushed once at the end,
        not per line, which matters when beacons arrive by the thousand."""
        try:
            self._apply(effects)
        finally:
            self.terminal.flush()

    def _apply(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Show):
                self.terminal.show(effect.text)
            elif isinstance(effect, Prompt):
                self.terminal.prompt(effect.text, effect.secret)
            elif isinstance(effect, Send):
                self.stream.write(encode(effect.message))
            elif isinstance(effect, SendBeacon):
                self._send_beacon(effect)
            elif isinstance(effect, Exit):
                self.status = effect.status
                self.reactor.stop()
                return
        self._reschedule()

    def _send_beacon(self, effect: SendBeacon) -> None:
        try:
            address = socket.getaddrinfo(
                effect.host, effect.port, socket.AF_INET, socket.SOCK_DGRAM
            )
            host, port_number = address[0][4][:2]
            self.udp.send(effect.data, (str(host), int(port_number)))
        except (OSError, UnicodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self.terminal.show(
                f"Could not send the beacon to {effect.host}:{effect.port}: {reason}"
            )
            return
        for text in effect.shown:
            self.terminal.show(text)

    def _reschedule(self) -> None:
        deadline = self.core.next_deadline()
        if self._timer is not None and (deadline is None or self._timer.when != deadline):
            self._timer.cancel()
            self._timer = None
        if deadline is not None and self._timer is None:
            self._timer = self.reactor.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.apply(self.core.timer())

    def _on_line(self, text: str) -> None:
        self.terminal.line_typed()
        self.apply(self.core.line(text))

    def _on_eof(self) -> None:
        self.terminal.line_typed()
        self.apply(self.core.end_of_input())

    def interrupt(self) -> None:
        """Ctrl-C logs out like EOF; a second one leaves at once."""
        if self._interrupted:
            self.status = 130
            self.reactor.stop()
            return
        self._interrupted = True
        self.terminal.line_typed()
        self.apply(self.core.end_of_input())

    def _on_data(self, data: bytes) -> None:
        try:
            for message in self.decoder.messages(data):
                self.apply(self.core.frame(message))
        except ProtocolError as exc:
            self.terminal.show(f"The server sent something unreadable ({exc}); disconnecting.")
            self.status = 1
            self.reactor.stop()

    def _on_server_closed(self, error: OSError | None) -> None:
        self.apply(self.core.server_closed())

    def _on_datagram(self, data: bytes, sender: tuple[str, int]) -> None:
        self.apply(self.core.datagram(data, sender))

    def _on_udp_error(self, error: OSError) -> None:
        # An ICMP "port unreachable" for an earlier beacon: no one listens there.
        self.apply([Show(f"A beacon was not delivered: {error.strerror or error}")])

    def close(self) -> None:
        self.stdin.close()
        self.udp.close()
        if not self.stream.closed:
            self.stream.close()
        self.terminal.echo(True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="BlueTrace phone client: log in, download TempIDs, beacon other "
        "phones over UDP and upload the contact log.",
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
        help="seconds a received beacon stays in the contact log (default: %(default)s)",
    )
    return parser


@contextlib.contextmanager
def _sockets(args: argparse.Namespace) -> Iterator[tuple[socket.socket, socket.socket] | int]:
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        udp.bind(("", args.client_udp_port))
    except OSError as exc:
        udp.close()
        yield fail(PROGRAM, f"cannot use UDP port {args.client_udp_port}: {exc.strerror or exc}", 2)
        return
    try:
        server = socket.create_connection(
            (args.server_ip, args.server_port), timeout=CONNECT_TIMEOUT
        )
    except OSError as exc:
        udp.close()
        reason = exc.strerror or str(exc) or type(exc).__name__
        yield fail(
            PROGRAM, f"cannot reach the server at {args.server_ip}:{args.server_port}: {reason}"
        )
        return
    server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # Beacons come in bursts; a larger receive buffer (capped by the kernel's
    # rmem_max) absorbs a burst while the loop is busy printing.
    udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
    try:
        yield server, udp
    finally:
        server.close()
        udp.close()


def _stdin_fd() -> int:
    """fd 0, or /dev/null when the process was started with no stdin at all."""
    try:
        fd = sys.stdin.fileno()
        os.fstat(fd)
    except (AttributeError, ValueError, OSError):
        return os.open(os.devnull, os.O_RDONLY)
    return fd


def run(args: argparse.Namespace, clock: Clock | None = None) -> int:
    with _sockets(args) as opened:
        if isinstance(opened, int):
            return opened
        server, udp = opened
        stores: list[FileContactLog] = []

        def open_store(username: str) -> FileContactLog:
            store = FileContactLog(Path.cwd(), username)
            stores.append(store)
            return store

        core = ClientCore(clock or SystemClock(), open_store, retention=args.log_retention)
        reactor = Reactor()
        client = Client(reactor, core, server, udp, Terminal(sys.stdout, _stdin_fd()))
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
