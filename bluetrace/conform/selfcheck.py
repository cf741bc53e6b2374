"""``bluetrace-conform self``: every mode against bluetrace's own programs.

It starts ``bluetrace.server.main`` and ``bluetrace.phone.main`` (with this Python)
in a temporary folder, with short target settings so the slow cases run in
seconds: block 5 s, login timeout 2 s, idle timeout 3 s, stall timeout 1.5 s,
contact-log retention 3 s. Order:
beacon mode (a phone logged in to a server of its own), server mode (its last
case stops the server), client mode, then files mode on the files they wrote.
"""

import argparse
import shutil
import socket
import sys
import tempfile
from importlib import resources
from pathlib import Path

from bluetrace.conform import report
from bluetrace.conform.beacon_target import BeaconTarget
from bluetrace.conform.client_target import ClientTarget
from bluetrace.conform.files_target import FilesTarget
from bluetrace.conform.launch import HeadlessPhone, start_server
from bluetrace.conform.model import Result
from bluetrace.conform.modes import MODES, read_credentials
from bluetrace.conform.phone import free_udp_port
from bluetrace.conform.runner import RunOptions, options_from_values, run_cases
from bluetrace.conform.server_target import ServerTarget

BLOCK = 5.0
IDLE_TIMEOUT = 3.0
STALL_TIMEOUT = 1.5
LOGIN_TIMEOUT = 2.0
RETENTION = 3.0
PHONE_USER = "+61410888888"
SPARE_USER = "+61410999999"
BURST_USER = "+61410777777"


def _second_address() -> str | None:
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.bind(("127.0.0.2", 0))
    except OSError:
        return None
    finally:
        probe.close()
    return "127.0.0.2"


def _samples(into: Path) -> None:
    """The specification's sample files, byte for byte (CRLF, no final line end)."""
    samples = resources.files("bluetrace") / "samples"
    for name in ("credentials.txt", "tempIDs.txt"):
        (into / name).write_bytes((samples / name).read_bytes())


def run_self(args: argparse.Namespace) -> int:
    work = args.keep or Path(tempfile.mkdtemp(prefix="bluetrace-conform-self-"))
    try:
        return report.finish(run_all(work, args), args)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


def run_all(work: Path, args: argparse.Namespace) -> list[Result]:
    options = options_from_values(args)
    python = sys.executable
    folders = {name: work / name for name in ("server", "phone-server", "phone", "files")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    for name in ("server", "phone-server"):
        _samples(folders[name])
    users = read_credentials(folders["server"] / "credentials.txt")
    results = _beacon_mode(python, folders, users, args, options)
    server_dir = folders["server"]
    server, port = start_server(
        [python, "-m", "bluetrace.server.main", "0", f"{BLOCK:g}", "--data-dir", str(server_dir),
         "--host", "127.0.0.1", "--login-timeout", f"{LOGIN_TIMEOUT:g}",
         "--idle-timeout", f"{IDLE_TIMEOUT:g}", "--stall-timeout", f"{STALL_TIMEOUT:g}"],
        server_dir)
    try:
        target = ServerTarget(
            host="127.0.0.1", port=port, users=users, user=next(iter(users)),
            spare=SPARE_USER, second_address=_second_address(), block_duration=BLOCK,
            login_timeout=LOGIN_TIMEOUT, data_dir=server_dir, server_pid=server.pid,
            max_wait=args.max_wait, burst_user=BURST_USER, idle_timeout=IDLE_TIMEOUT,
            stall_timeout=STALL_TIMEOUT)
        results += run_cases(MODES["server"], target, options)
    finally:
        server.stop()
    command = f"{python} -m bluetrace.phone.main {{host}} {{port}} {{udp}}"
    client = ClientTarget(command, PHONE_USER, users[PHONE_USER], max_wait=args.max_wait)
    results += run_cases(MODES["client"], client, options)
    files_dir = folders["files"]
    for source in [*server_dir.glob("*.txt"), *folders["phone"].glob("*_contactlog.txt")]:
        shutil.copy(source, files_dir / source.name)
    results += run_cases(MODES["files"], FilesTarget(files_dir), options)
    return results


def _beacon_mode(python: str, folders: dict[str, Path], users: dict[str, str],
                 args: argparse.Namespace, options: RunOptions) -> list[Result]:
    """A phone logged in to a server of its own (default timeouts, so the
    phone is not timed out while the beacon cases run)."""
    server, port = start_server(
        [python, "-m", "bluetrace.server.main", "0", f"{BLOCK:g}", "--data-dir",
         str(folders["phone-server"]), "--host", "127.0.0.1"], folders["phone-server"])
    try:
        udp = free_udp_port()
        phone = HeadlessPhone(
            [python, "-m", "bluetrace.phone.main", "127.0.0.1", str(port), str(udp),
             "--log-retention", f"{RETENTION:g}"], folders["phone"], PHONE_USER,
            users[PHONE_USER])
        try:
            beacon = BeaconTarget(
                "127.0.0.1", udp, folders["phone"] / f"{PHONE_USER}_contactlog.txt",
                RETENTION, max_wait=args.max_wait)
            return run_cases(MODES["beacon"], beacon, options)
        finally:
            phone.log_out()
    finally:
        server.stop()
