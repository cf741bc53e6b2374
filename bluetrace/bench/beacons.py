"""Beacon intake: the highest paced beacon rate a logged-in phone takes with
no loss and an exact contact log, probed step by step; beside a bare UDP
receiver that appends each datagram to a file."""

import socket
import subprocess
import time
from datetime import datetime, timedelta
from pathlib import Path

from bluetrace.bench.context import PASSWORD, USER, Context
from bluetrace.bench.processes import free_udp_port, read_until, wait_for
from bluetrace.bench.report import Figure
from bluetrace.protocol.messages import TempIDWindow, encode_beacon

CEILING = (
    "a bare UDP receiver appending each datagram to a file as a line, probed at the same rates"
)


def count_lines(path: Path, prefix: bytes) -> int:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return 0
    return sum(1 for line in data.split(b"\n") if line.startswith(prefix))


def send_beacons(port: int, rate: int, seconds: float, log: Path, step: int) -> bool:
    """Send rate*seconds valid beacons paced per datagram; True if the log
    then holds every one of them exactly once."""
    total = int(rate * seconds)
    now = datetime.now().replace(microsecond=0)
    prefix = f"9{step:02d}{rate:07d}".encode()
    windows = [
        TempIDWindow(
            f"{prefix.decode()}{i:010d}", now - timedelta(minutes=1), now + timedelta(minutes=14)
        )
        for i in range(total)
    ]
    datagrams = [encode_beacon(window) for window in windows]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        began = time.monotonic()
        for i, datagram in enumerate(datagrams):
            due = began + i / rate
            while time.monotonic() < due:
                pass
            sender.sendto(datagram, ("127.0.0.1", port))
    # Wait until the count stops growing (bounded), then compare exactly.
    last, still_since, deadline = -1, time.monotonic(), time.monotonic() + 60
    while time.monotonic() < deadline:
        current = count_lines(log, prefix)
        if current == total:
            break
        if current != last:
            last, still_since = current, time.monotonic()
        elif time.monotonic() - still_since > 1.0:
            break
        time.sleep(0.05)
    data = log.read_bytes() if log.exists() else b""
    got = sorted(line[:20] for line in data.split(b"\n") if line.startswith(prefix))
    return got == sorted(window.tempid.encode() for window in windows)


def run(ctx: Context) -> None:
    ctx.ceiling(CEILING)
    server = ctx.server(ctx.data_dir("beacons"))
    phone_dir = ctx.workdir / "phone"
    phone_dir.mkdir()
    udp_port = free_udp_port()
    with (phone_dir / "stdout.txt").open("wb") as out:
        phone = ctx.children.start(
            [
                "-m",
                "bluetrace.phone.main",
                "127.0.0.1",
                str(server.port),
                str(udp_port),
                "--log-retention",
                "3600",
            ],
            env=ctx.program_env(),
            cwd=phone_dir,
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=subprocess.DEVNULL,
        )
    assert phone.stdin is not None
    phone.stdin.write(f"{USER}\n{PASSWORD}\n".encode())
    phone.stdin.flush()
    wait_for(lambda: b"Welcome" in (phone_dir / "stdout.txt").read_bytes(), "the phone's login")
    log = phone_dir / f"{USER}_contactlog.txt"
    ceiling_log = ctx.workdir / "ceiling_log.txt"
    ceiling = ctx.helper("bluetrace.bench.ceiling", "udp", str(ceiling_log))
    ceiling_port = int(read_until(ceiling, b"\n").split()[1])
    # The highest rate that passed with every lower rate passing too.
    best = best_ceiling = 0
    phone_ok = ceiling_ok = True
    rates = ctx.sizes.beacon_rates
    seconds = ctx.sizes.beacon_seconds
    for step, rate in enumerate(rates):
        if not (phone_ok or ceiling_ok):
            break
        targets = (("the phone", phone_ok), ("the ceiling", ceiling_ok))
        ctx.progress(
            f"step {step + 1}/{len(rates)}: {rate:,} beacons/s for {seconds:g} s "
            f"to {' and '.join(name for name, ok in targets if ok)}"
        )
        if phone_ok:
            phone_ok = send_beacons(udp_port, rate, seconds, log, step)
            best = rate if phone_ok else best
        if ceiling_ok:
            ceiling_ok = send_beacons(ceiling_port, rate, seconds, ceiling_log, step)
            best_ceiling = rate if ceiling_ok else best_ceiling
    probed = f"probed {rates[0]:,}-{rates[-1]:,}/s" if len(rates) > 1 else ""
    ctx.add(
        Figure(
            "beacons",
            f"highest rate with no loss, exact log ({probed})",
            best,
            "/s",
            best_ceiling,
            *ctx.judge(">= 0.75 x ceiling", best >= 0.75 * best_ceiling),
        )
    )
    phone.stdin.close()
    phone.wait(60)
