"""A beacon flood against a logged-in phone: does it still answer its user?

2,000 valid beacons a second for longer than the contact log's retention, so
entries expire (and the log is rewritten) while the flood goes on. Meanwhile
a command is typed four times a second; each one's latency is the time until
its answer appears on the phone's output. The ceiling is the same command
latency with no flood, measured in the same run. After the flood, the
phone's CPU use is read from /proc over one second, five seconds later,
beside its CPU use over a second at rest before the flood.
"""

import os
import socket
import subprocess
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

from bluetrace.bench.context import PASSWORD, USER, Context
from bluetrace.bench.load import percentile
from bluetrace.bench.processes import free_udp_port, wait_for
from bluetrace.bench.report import Figure
from bluetrace.protocol.messages import TempIDWindow, encode_beacon

CEILING = (
    "the same command's latency on the same phone with no flood; its CPU use over a second at rest"
)
ANSWER = b"Error. Invalid command"
RATE = 2000
COMMANDS_PER_SECOND = 4


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _commands(stdin: IO[bytes], out: Path, seconds: float, udp_port: int, rate: int) -> list[float]:
    """Type a command every 1/COMMANDS_PER_SECOND s for ``seconds`` while sending
    ``rate`` beacons a second (0: none); the latencies of the answers, in ms."""
    now = datetime.now().replace(microsecond=0)
    window = TempIDWindow("9" * 20, now - timedelta(minutes=1), now + timedelta(minutes=14))
    datagram = encode_beacon(window)
    latencies: list[float] = []
    pending: list[float] = []
    answered = out.read_bytes().count(ANSWER)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        began = time.monotonic()
        sent = typed = 0
        while (now_s := time.monotonic() - began) < seconds or pending:
            if now_s > seconds + 10:
                break  # an answer that never comes is counted below
            while rate and now_s < seconds and sent < now_s * rate:
                sender.sendto(datagram, ("127.0.0.1", udp_port))
                sent += 1
            if now_s < seconds and typed < now_s * COMMANDS_PER_SECOND:
                stdin.write(b"whatsthedate\n")
                stdin.flush()
                pending.append(time.monotonic())
                typed += 1
            count = out.read_bytes().count(ANSWER)
            while count > answered and pending:
                latencies.append((time.monotonic() - pending.pop(0)) * 1000)
                answered += 1
            time.sleep(0.002)
    latencies += [float("inf")] * len(pending)
    return latencies


def run(ctx: Context) -> None:
    ctx.ceiling(CEILING)
    server = ctx.server(ctx.data_dir("flood"))
    folder = ctx.workdir / "flood-phone"
    folder.mkdir()
    udp_port = free_udp_port()
    flood_seconds = 40.0 if ctx.full else 4.0
    retention = 30.0 if ctx.full else 2.0
    out = folder / "stdout.txt"
    with out.open("wb") as stdout:
        phone = ctx.children.start(
            ["-m", "bluetrace.phone.main", "127.0.0.1", str(server.port), str(udp_port),
             "--log-retention", f"{retention:g}"],
            env=ctx.program_env(),
            cwd=folder,
            stdin=subprocess.PIPE,
            stdout=stdout,
        )
    assert phone.stdin is not None
    phone.stdin.write(f"{USER}\n{PASSWORD}\n".encode())
    phone.stdin.flush()
    wait_for(lambda: b"Welcome" in out.read_bytes(), "the phone's login")
    ctx.progress("the phone's CPU use at rest, then command latency with no flood (ceilings)")
    before = _cpu_seconds(phone.pid)
    time.sleep(1.0)  # a second of rest, by definition of the figure
    rest_share = _cpu_seconds(phone.pid) - before
    quiet = _commands(phone.stdin, out, 3.0, udp_port, 0)
    ctx.progress(
        f"{RATE:,} beacons/s for {flood_seconds:g} s with {retention:g} s retention, "
        f"typing {COMMANDS_PER_SECOND} commands a second"
    )
    loud = _commands(phone.stdin, out, flood_seconds, udp_port, RATE)
    ctx.progress("the phone's CPU use 5 s after the flood")
    time.sleep(5.0)  # the figure is what happens 5 s after the flood, by definition
    before = _cpu_seconds(phone.pid)
    time.sleep(1.0)
    idle_share = _cpu_seconds(phone.pid) - before
    p99, base = percentile(loud, 0.99), percentile(quiet, 0.99)
    ctx.add(
        Figure(
            "flood",
            f"p99 command latency under {RATE:,} beacons/s",
            p99,
            "ms",
            base,
            *ctx.judge("< 100 ms", p99 < 100),
        )
    )
    ctx.add(
        Figure(
            "flood",
            "phone CPU share 5-6 s after the flood",
            idle_share * 100,
            "%",
            rest_share * 100,
            *ctx.judge("< 10 %", idle_share < 0.10),
        )
    )
    phone.stdin.write(b"logout\n")
    phone.stdin.close()
    phone.wait(60)
