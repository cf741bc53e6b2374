"""``bluetrace-server``: the core wired to a listening socket, files and stdout.

The specification's texts go to stdout; diagnostics go to stderr, starting
with the line ``listening on HOST:PORT`` that names the port actually bound
(so that port 0, chosen by the OS, is usable).
"""

import argparse
import selectors
import signal
import socket
import sys
from pathlib import Path
from typing import TextIO

from bluetrace import wire
from bluetrace.cli import fail, port, positive_seconds, raise_descriptor_limit, whole_seconds
from bluetrace.clock import Clock, SystemClock
from bluetrace.errors import ProtocolError
from bluetrace.framing import FrameDecoder, _NeedData
from bluetrace.messages import ErrorReply, encode
from bluetrace.reactor import Reactor, Stream, Timer
from bluetrace.records import RecordError, load_credentials, load_tempids
from bluetrace.server_core import DEFAULT_TEMPID_LIFETIME, Outcome, ServerCore, Session
from bluetrace.storage import LineAppender

PROGRAM = "bluetrace-server"
PRE_LOGIN_MAX_BODY = 2 * (1 + wire.MAX_TEXT_LEN)
"""Before login only LOGIN is legal, so a stranger may not make us buffer more."""
ACCEPTS_PER_WAKEUP = 64
CHECKS_FILE = "contact_checks.txt"


class Connection:
    def __init__(self, server: "Server", sock: socket.socket, peer: str) -> None:
        self.server = server
        self.session = Session(peer)
        self.decoder = FrameDecoder(max_body=PRE_LOGIN_MAX_BODY)
        self.stream = Stream(server.reactor, sock, self._on_data, self._on_close)
        self.timer: Timer | None = server.reactor.call_later(server.login_timeout, self._timeout)

    def _on_data(self, data: bytes) -> None:
        core = self.server.core
        try:
            self.decoder.feed(data)
            while not self.stream.closed:
                message = self.decoder.next_message()
                if isinstance(message, _NeedData):
                    break
                self._apply(core.handle(self.session, message))
                if self.session.username is not None:
                    self.decoder.max_body = wire.MAX_FRAME_BODY
        except ProtocolError as exc:
            self._apply(core.protocol_error(self.session, exc))

    def _timeout(self) -> None:
        self.timer = None
        self._apply(self.server.core.login_timeout(self.session))

    def _on_close(self, error: OSError | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.server.connections.discard(self)
        outcome = self.server.core.disconnected(self.session)
        if error is not None:
            outcome.log.append(f"{self.session.peer}: connection lost: {error.strerror or error}")
        self.server.report(outcome)

    def _apply(self, outcome: Outcome) -> None:
        for reply in outcome.replies:
            self.stream.write(encode(reply))
        self.server.report(outcome)
        if self.session.username is not None and self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if outcome.close:
            self.stream.close_when_flushed()

    def shut_down(self) -> None:
        self.stream.write(encode(ErrorReply(wire.ErrorCode.SHUTTING_DOWN, "server stopping")))
        self.stream.close()


class Server:
    def __init__(
        self,
        reactor: Reactor,
        core: ServerCore,
        listener: socket.socket,
        *,
        login_timeout: float,
        out: TextIO,
        err: TextIO,
    ) -> None:
        self.reactor = reactor
        self.core = core
        self.listener = listener
        self.login_timeout = login_timeout
        self.out = out
        self.err = err
        self.connections: set[Connection] = set()
        listener.setblocking(False)
        reactor.register(listener, self, selectors.EVENT_READ)

    def on_readable(self) -> None:
        for _ in range(ACCEPTS_PER_WAKEUP):
            try:
                sock, address = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # EMFILE and friends: report, keep serving
                self.err.write(f"accept failed: {exc.strerror or exc}\n")
                self.err.flush()
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.connections.add(Connection(self, sock, f"{address[0]}:{address[1]}"))

    def on_writable(self) -> None:
        pass

    def report(self, outcome: Outcome) -> None:
        if outcome.output:
            self.out.write("\n".join(outcome.output) + "\n")
            self.out.flush()
        if outcome.log:
            self.err.write("".join(f"{PROGRAM}: {line}\n" for line in outcome.log))
            self.err.flush()

    def shut_down(self) -> None:
        self.reactor.unregister(self.listener)
        self.listener.close()
        for connection in list(self.connections):
            connection.shut_down()
        self.reactor.stop()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="BlueTrace health-authority server: authenticates phones, issues "
        "TempIDs and checks uploaded contact logs.",
    )
    parser.add_argument("server_port", type=port, help="TCP port to listen on (0: any free port)")
    parser.add_argument(
        "block_duration",
        type=positive_seconds,
        help="seconds a user stays blocked after 3 consecutive failed logins",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path.cwd(),
        help="folder holding credentials.txt, tempIDs.txt and contact_checks.txt "
        "(default: the working directory)",
    )
    parser.add_argument(
        "--tempid-lifetime",
        type=whole_seconds,
        default=DEFAULT_TEMPID_LIFETIME,
        help="seconds a TempID is valid (default: %(default)s)",
    )
    parser.add_argument(
        "--login-timeout",
        type=positive_seconds,
        default=120.0,
        help="seconds a connection may take to log in (default: %(default)s)",
    )
    parser.add_argument("--host", default="", help="address to listen on (default: all)")
    return parser


def serve(args: argparse.Namespace, clock: Clock | None = None) -> int:
    data_dir: Path = args.data_dir
    try:
        credentials = load_credentials(data_dir / "credentials.txt")
    except RecordError as exc:
        return fail(PROGRAM, str(exc))
    tempids: dict[str, str] = {}
    tempids_path = data_dir / "tempIDs.txt"
    try:
        report = load_tempids(tempids_path, tempids)
    except OSError as exc:
        return fail(PROGRAM, f"{tempids_path}: cannot read: {exc.strerror or exc}")
    for problem in report.problems[:20]:
        print(f"{PROGRAM}: skipped {problem}", file=sys.stderr)
    if len(report.problems) > 20:
        print(f"{PROGRAM}: ... and {len(report.problems) - 20} more bad lines", file=sys.stderr)
    raise_descriptor_limit()
    try:
        listener = socket.create_server(
            (args.host, args.server_port), family=socket.AF_INET, backlog=1024, reuse_port=False
        )
    except OSError as exc:
        return fail(PROGRAM, f"cannot listen on port {args.server_port}: {exc.strerror or exc}")
    tempid_store = LineAppender(tempids_path)
    check_store = LineAppender(data_dir / CHECKS_FILE)
    core = ServerCore(
        credentials,
        args.block_duration,
        clock or SystemClock(),
        tempids=tempids,
        tempid_store=tempid_store,
        check_store=check_store,
        tempid_lifetime=args.tempid_lifetime,
    )
    reactor = Reactor()
    server = Server(
        reactor, core, listener, login_timeout=args.login_timeout, out=sys.stdout, err=sys.stderr
    )
    for signum in (signal.SIGINT, signal.SIGTERM):
        reactor.add_signal_handler(signum, server.shut_down)
    host, bound_port = listener.getsockname()[:2]
    print(
        f"{PROGRAM}: listening on {host}:{bound_port} ({len(credentials)} users, "
        f"{report.loaded} TempIDs known)",
        file=sys.stderr,
        flush=True,
    )
    try:
        reactor.run()
    finally:
        tempid_store.close()
        check_store.close()
        reactor.close()
    print(f"{PROGRAM}: stopped", file=sys.stderr, flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return serve(args)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
