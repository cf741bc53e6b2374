"""Each mode's cases, and the target each mode builds from its options."""

import argparse
import socket
from pathlib import Path
from typing import Any

from bluetrace.conform.assignment.procs import udp_port_bound
from bluetrace.conform.beacon_target import BeaconTarget
from bluetrace.conform.cases import beacon, client, files, server
from bluetrace.conform.client_target import ClientTarget
from bluetrace.conform.files_target import FilesTarget
from bluetrace.conform.model import Case, CaseSetupError
from bluetrace.conform.server_target import ServerTarget

MODES: dict[str, list[Case[Any]]] = {
    "server": list(server.CASES),
    "client": list(client.CASES),
    "beacon": list(beacon.CASES),
    "files": list(files.CASES),
}


def read_credentials(path: Path) -> dict[str, str]:
    """``<username> <password>`` lines, LF or CRLF; blank lines, ``#`` comment
    lines and a leading byte-order mark skipped (section 5)."""
    try:
        text = path.read_bytes().removeprefix(b"\xef\xbb\xbf").decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CaseSetupError(f"cannot read {path}: {exc}") from None
    users: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split(" ")
        if len(parts) != 2 or not all(parts):
            raise CaseSetupError(f"{path}:{number}: not '<username> <password>'")
        users[parts[0]] = parts[1]
    if not users:
        raise CaseSetupError(f"{path}: no users")
    return users


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise CaseSetupError(f"expected HOST:PORT, not {text!r}")
    return host, int(port)


def server_target(args: argparse.Namespace) -> ServerTarget:
    host, port = _host_port(args.address)
    users = read_credentials(args.credentials)
    user = args.user or next(iter(users))
    for role, name in (("--user", user), ("--spare-user", args.spare_user),
                       ("--burst-user", args.burst_user)):
        if name is not None and name not in users:
            raise CaseSetupError(f"{role} {name} is not in {args.credentials}")
    special = [name for name in (args.spare_user, args.burst_user) if name is not None]
    if user in special or len(set(special)) != len(special):
        raise CaseSetupError("--user, --spare-user and --burst-user must be different accounts")
    try:
        socket.create_connection((host, port), timeout=args.timeout).close()
    except OSError as exc:
        raise CaseSetupError(f"cannot reach the server at {host}:{port}: "
                             f"{exc.strerror or exc}") from None
    if args.second_address is not None:
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            probe.bind((args.second_address, 0))
        except OSError as exc:
            raise CaseSetupError(f"cannot use --second-address {args.second_address}: "
                                 f"{exc.strerror or exc}") from None
        finally:
            probe.close()
    return ServerTarget(
        host=host, port=port, users=users, user=user, spare=args.spare_user,
        second_address=args.second_address, block_duration=args.block_duration,
        login_timeout=args.login_timeout, tempid_lifetime=args.tempid_lifetime,
        data_dir=args.data_dir, server_pid=args.server_pid, max_wait=args.max_wait,
        burst_user=args.burst_user, idle_timeout=args.idle_timeout,
        stall_timeout=args.stall_timeout,
    )


def build_target(args: argparse.Namespace) -> Any:
    if args.mode == "server":
        return server_target(args)
    if args.mode == "client":
        return ClientTarget(args.command, args.user, args.password,
                            max_wait=args.max_wait)
    if args.mode == "beacon":
        host, port = _host_port(args.address)
        if host.startswith("127.") and not udp_port_bound(port):
            raise CaseSetupError(f"nothing listens on UDP port {port} here: start the phone "
                                 "(logged in) first")
        return BeaconTarget(host, port, args.log, args.retention,
                            max_wait=args.max_wait)
    if not args.folder.is_dir():
        raise CaseSetupError(f"{args.folder} is not a folder")
    return FilesTarget(args.folder)
