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
from bluetrace.messages import ErrorReply, Message, TempIDReply, UploadRequest, encode
from bluetrace.reactor import Reactor, Stream, Timer
from bluetrace.records import RecordError, load_credentials, load_tempids
from bluetrace.server_core import DEFAULT_TEMPID_LIFETIME, Outcome, ServerCore, Session
from bluetrace.storage import LineAppender

PROGRAM = "bluetrace-server"
LINGER = 2.0
"""Seconds to wait for a client to close after the server's last reply."""
PRE_LOGIN_MAX_BODY = 2 * (1 + wire.MAX_TEXT_LEN)
"""Before login only LOGIN is legal, so a stranger may not make us buffer more."""
ACCEPTS_PER_WAKEUP = 64
CHECKS_FILE = "contact_checks.txt"
STORAGE_FAILED = ErrorReply(
    wire.ErrorCode.STORAGE, "the server could not record a TempID; try later"
)


class Connection:
    def __init__(self, server: "Server", sock: socket.socket, peer: str) -> None:
        self.server = server
        self.session = Session(peer)
        self.decoder = FrameDecoder(max_body=PRE_LOGIN_MAX_BODY)
        self.stream = Stream(server.reactor, sock, self._on_data, self._on_close)
        self.timer: Timer | None = server.reactor.call_later(server.login_timeout, self._timeout)
        self.held: list[Message] | None = None
        """Replies waiting for the group commit; later replies queue behind
        them so that a connection's replies keep their order."""
        self.end_after_held: bool | None = None

    def _on_data(self, data: bytes) -> None:
        try:
            self.decoder.feed(data)
        except ProtocolError as exc:
            self._broken(exc)
            return
        self._process()

    def _process(self) -> None:
        core = self.server.core
        try:
            while not self.stream.closed:
                message = self.decoder.next_message()
                if isinstance(message, _NeedData):
                    break
                self._apply(core.handle(self.session, message))
                if self.session.username is not None:
                    self.decoder.max_body = wire.MAX_FRAME_BODY
                if isinstance(message, UploadRequest) and self.decoder.buffered:
                    # One upload chunk per loop turn: a large upload must not
                    # hold up every other phone. Reading pauses meanwhile, so
                    # what is buffered stays bounded.
                    self.stream.pause_reading()
                    self.server.reactor.call_soon(self._resume)
                    return
        except ProtocolError as exc:
            self._broken(exc)

    def _resume(self) -> None:
        if not self.stream.closed:
            self.stream.resume_reading()
            self._process()

    def _broken(self, exc: ProtocolError) -> None:
        self._apply(self.server.core.protocol_error(self.session, exc), abort=True)

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

    def _apply(self, outcome: Outcome, *, abort: bool = False) -> None:
        if self.held is None and any(isinstance(reply, TempIDReply) for reply in outcome.replies):
            self.held = []  # a TempID may be told only once it is on disk
            self.server.hold(self)
        for reply in outcome.replies:
            if self.held is not None:
                self.held.append(reply)
            else:
                self.stream.write(encode(reply))
        self.server.report(outcome)
        if self.session.username is not None and self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if outcome.close:
            if self.held is not None:
                self.end_after_held = abort
            else:
                self._end(abort)

    def _end(self, abort: bool) -> None:
        # A peer that broke the framing is cut off; any other ending lets
        # the client close first (see Stream.finish).
        if abort:
            self.stream.close_when_flushed()
        else:
            self.stream.finish(LINGER)

    def release(self, durable: bool) -> None:
        """After the group commit: send what was held, or, if the TempIDs
        could not be made durable, a storage error in their place."""
        held, self.held = self.held or [], None
        for reply in held:
            refused = not durable and isinstance(reply, TempIDReply)
            self.stream.write(encode(STORAGE_FAILED if refused else reply))
        if self.end_after_held is not None:
            self._end(self.end_after_held)

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
        tempid_store: LineAppender,
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
        self.tempid_store = tempid_store
        self._holding: list[Connection] = []
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

    def hold(self, connection: Connection) -> None:
        """Group commit: every TempID issued in this loop turn is made
        durable by one fdatasync at the end of the turn, then answered."""
        if not self._holding:
            self.reactor.call_soon(self._commit)
        self._holding.append(connection)

    def _commit(self) -> None:
        holding, self._holding = self._holding, []
        try:
            self.tempid_store.sync()
            durable = True
        except OSError as exc:
            durable = False
            self.err.write(f"{PROGRAM}: cannot flush tempIDs.txt to disk: {exc.strerror or exc}\n")
            self.err.flush()
        for connection in holding:
            connection.release(durable)

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
    tempid_store = LineAppender(tempids_path, durable=False)  # synced by the group commit
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
        reactor,
        core,
        listener,
        login_timeout=args.login_timeout,
        tempid_store=tempid_store,
        out=sys.stdout,
        err=sys.stderr,
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
