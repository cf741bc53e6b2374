"""``python -m bluetrace.bench [--quick] [--json PATH]``: every figure, one table.

Runs on 127.0.0.1 only, with OS-chosen ports; every loop is bounded and every
process it starts is ended. ``--quick`` runs a small version of each part
(used by the test suite to keep this code working; it asserts no timings).
"""

import argparse
import json
import os
import random
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path

from bluetrace import wire
from bluetrace.framing import FrameDecoder
from bluetrace.messages import (
    LoginRequest,
    TempIDReply,
    TempIDWindow,
    UploadReply,
    UploadRequest,
    decode,
    decode_beacon,
    encode,
    encode_beacon,
)
from bluetrace.timefmt import format_timestamp

DEFAULT_JSON = Path(".bluetrace/bench/results.json")
USER, PASSWORD = "+61410888888", "comp3331"
WAIT = 60.0


@dataclass
class Figure:
    part: str
    name: str
    value: float
    unit: str
    ceiling: float | None = None
    target: str = ""
    met: bool | None = None

    @property
    def ratio(self) -> float | None:
        if self.ceiling is None or not self.ceiling:
            return None
        return self.value / self.ceiling


@dataclass
class Sizes:
    session_seconds: float
    session_clients: tuple[int, ...]
    tempid_lines: int
    upload_entries: int
    held: int
    beacon_rates: tuple[int, ...]
    beacon_seconds: float
    parser_rounds: int


FULL = Sizes(
    4.0, (1, 10, 100), 1_000_000, 100_000, 5000, (5000, 10000, 20000, 30000, 40000), 1.0, 20000
)
QUICK = Sizes(0.3, (1, 10), 5_000, 3_000, 50, (500, 1000), 0.2, 500)


def progress(text: str) -> None:
    print(f"bench: {text}", file=sys.stderr, flush=True)


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Processes:
    """Every child this run starts, ended on the way out whatever happens."""

    def __init__(self) -> None:
        self.children: list[subprocess.Popen[bytes]] = []

    def start(self, args: list[str], **kwargs: object) -> "subprocess.Popen[bytes]":
        child: subprocess.Popen[bytes] = subprocess.Popen(  # type: ignore[call-overload]
            [sys.executable, *args], **kwargs
        )
        self.children.append(child)
        return child

    def end_all(self) -> None:
        for child in self.children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in self.children:
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(10)
            for pipe in (child.stdin, child.stdout, child.stderr):
                if pipe is not None:
                    pipe.close()


def read_until(child: "subprocess.Popen[bytes]", marker: bytes, timeout: float = WAIT) -> bytes:
    """Bytes from the child's stdout up to a line containing marker."""
    pipe = child.stdout
    assert pipe is not None
    seen = b""
    deadline = time.monotonic() + timeout
    while marker not in seen:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([pipe], [], [], remaining)[0]:
            raise RuntimeError(f"{marker!r} not seen in time; got {seen[-500:]!r}")
        chunk = os.read(pipe.fileno(), 65536)
        if not chunk:
            raise RuntimeError(f"process ended before {marker!r}; got {seen[-500:]!r}")
        seen += chunk
    return seen


class Bench:
    def __init__(self, sizes: Sizes, workdir: Path) -> None:
        self.sizes = sizes
        self.workdir = workdir
        self.procs = Processes()
        self.figures: list[Figure] = []

    def add(self, figure: Figure) -> None:
        self.figures.append(figure)
        progress(f"{figure.part}: {figure.name} = {figure.value:,.2f} {figure.unit}")

    # -- processes ------------------------------------------------------------
    def data_dir(self, name: str) -> Path:
        folder = self.workdir / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "credentials.txt").write_text(f"{USER} {PASSWORD}\n+61410999999 bada4568\n")
        return folder

    def start_server(self, folder: Path) -> tuple["subprocess.Popen[bytes]", int, float]:
        # Both streams go to files: a pipe nobody drains would stop the
        # server once its log filled the pipe's buffer.
        out, err = (folder / "stdout.txt").open("wb"), (folder / "stderr.txt").open("wb")
        began = time.monotonic()
        child = self.procs.start(
            ["-m", "bluetrace.server", "0", "60", "--data-dir", str(folder), "--host", "127.0.0.1"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
        out.close()
        err.close()
        log = folder / "stderr.txt"
        wait_for(
            lambda: b"TempIDs known)" in log.read_bytes() or child.poll() is not None,
            "the server to listen",
            step=0.002,
        )
        ready = time.monotonic() - began
        text = log.read_bytes()
        if b"listening on" not in text:
            raise RuntimeError(f"server did not start: {text[-500:]!r}")
        port = int(text.split(b"listening on 127.0.0.1:")[1].split(b" ")[0])
        return child, port, ready

    def stop(self, child: "subprocess.Popen[bytes]") -> None:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(20)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(10)

    def load(self, port: int, clients: int, seconds: float) -> "subprocess.Popen[bytes]":
        return self.procs.start(
            [
                "-m",
                "bluetrace.bench.load",
                "sessions",
                str(port),
                str(clients),
                str(seconds),
                USER,
                PASSWORD,
            ],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )

    def load_result(self, child: "subprocess.Popen[bytes]") -> dict[str, object]:
        out, _ = child.communicate(timeout=WAIT * 2)
        result: dict[str, object] = json.loads(out)
        return result

    # -- 1. sessions ------------------------------------------------------------
    def sessions(self) -> None:
        seconds = self.sizes.session_seconds
        server, port, _ = self.start_server(self.data_dir("sessions"))
        ceiling = self.procs.start(["-m", "bluetrace.bench.ceiling", "tcp"], stdout=subprocess.PIPE)
        ceiling_port = int(read_until(ceiling, b"\n").split()[1])
        for clients in self.sizes.session_clients:
            progress(f"sessions: {clients} concurrent clients, {seconds} s each side")
            real = self.load_result(self.load(port, clients, seconds))
            bare = self.load_result(self.load(ceiling_port, clients, seconds))
            if real["errors"] or bare["errors"]:
                raise RuntimeError(
                    f"session errors: bluetrace {real['errors']}, ceiling {bare['errors']}"
                )
            latencies = [latency for _, latency in real["records"]]  # type: ignore[attr-defined]
            rate, bare_rate = int(real["sessions"]) / seconds, int(bare["sessions"]) / seconds  # type: ignore[call-overload]
            target = clients == max(self.sizes.session_clients)
            self.add(
                Figure(
                    "sessions",
                    f"sessions/s, {clients} clients",
                    rate,
                    "/s",
                    bare_rate,
                    ">= 0.5 x ceiling" if target else "",
                    rate >= 0.5 * bare_rate if target else None,
                )
            )
            self.add(
                Figure(
                    "sessions",
                    f"p50 latency, {clients} clients",
                    percentile(latencies, 0.5) * 1000,
                    "ms",
                )
            )
            self.add(
                Figure(
                    "sessions",
                    f"p99 latency, {clients} clients",
                    percentile(latencies, 0.99) * 1000,
                    "ms",
                )
            )
        self.stop(server)
        self.stop(ceiling)

    # -- 2. contact checking at scale ----------------------------------------------
    def checking(self) -> None:
        folder = self.data_dir("checking")
        lines = self.sizes.tempid_lines
        progress(f"checking: writing a {lines:,}-line tempIDs.txt")
        tempids = write_tempids(folder / "tempIDs.txt", lines)
        server, port, ready = self.start_server(folder)
        full = lines >= 1_000_000
        self.add(
            Figure(
                "checking",
                f"start-up, {lines:,} TempIDs",
                ready,
                "s",
                None,
                "< 3 s" if full else "",
                ready < 3 if full else None,
            )
        )
        rss = rss_mib(server.pid)
        self.add(
            Figure(
                "checking",
                f"RSS after start, {lines:,} TempIDs",
                rss,
                "MiB",
                None,
                "< 400 MiB" if full else "",
                rss < 400 if full else None,
            )
        )
        count = self.sizes.upload_entries
        start, expiry = datetime(2020, 5, 14, 17, 54, 6), datetime(2020, 5, 14, 18, 9, 5)
        chosen = random.Random(7).choices(tempids, k=count)
        entries = [TempIDWindow(tempid, start, expiry) for tempid in chosen]
        progress(f"checking: encoding an upload of {count:,} entries")
        chunk = wire.MAX_UPLOAD_CHUNK
        payload = b"".join(
            encode(UploadRequest(tuple(entries[i : i + chunk]), final=i + chunk >= count))
            for i in range(0, count, chunk)
        )
        with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as upload:
            upload.sendall(encode(LoginRequest(USER, PASSWORD)))
            decoder = FrameDecoder()
            receive(upload, decoder)
            background_seconds = max(2.0, count / 20_000)
            other = self.load(port, 1, background_seconds)
            time.sleep(0.2)  # let the background sessions start before the upload
            began = time.monotonic()
            upload.sendall(payload)
            reply = receive(upload, decoder)
            took = time.monotonic() - began
        if reply != UploadReply(count):
            raise RuntimeError(f"upload answered {reply}")
        result = self.load_result(other)
        # Sessions that overlapped the upload (back-to-back sessions always do).
        during = [
            lat
            for when, lat in result["records"]  # type: ignore[attr-defined]
            if when <= began + took and when + lat >= began
        ]
        rate = count / took
        self.add(
            Figure(
                "checking",
                f"entries checked/s, {count:,}-entry upload",
                rate,
                "/s",
                None,
                ">= 200,000/s",
                rate >= 200_000,
            )
        )
        p99 = percentile(during, 0.99) * 1000
        self.add(
            Figure(
                "checking",
                f"p99 session latency during upload ({len(during)} sessions)",
                p99,
                "ms",
                None,
                "< 100 ms",
                p99 < 100 if during else None,
            )
        )
        self.stop(server)

    # -- 3. held connections -------------------------------------------------------
    def held(self) -> None:
        count = self.sizes.held
        server, port, _ = self.start_server(self.data_dir("held"))
        before = rss_mib(server.pid)
        progress(f"held: logging in {count:,} idle connections")
        holder = self.procs.start(
            ["-m", "bluetrace.bench.load", "hold", str(port), str(count), USER, PASSWORD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        read_until(holder, b"ready", timeout=WAIT * 2)
        after = rss_mib(server.pid)
        self.add(
            Figure(
                "held",
                f"server RSS per held connection ({count:,} held)",
                (after - before) * 1024 / count,
                "KiB",
            )
        )
        result = self.load_result(self.load(port, 1, max(1.0, self.sizes.session_seconds)))
        latencies = [lat for _, lat in result["records"]]  # type: ignore[attr-defined]
        p99 = percentile(latencies, 0.99) * 1000
        self.add(
            Figure(
                "held",
                f"p99 fresh-session latency with {count:,} held",
                p99,
                "ms",
                None,
                "< 50 ms",
                p99 < 50,
            )
        )
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(WAIT)
        self.stop(server)

    # -- 4. beacon intake ----------------------------------------------------------
    def beacons(self) -> None:
        folder = self.data_dir("beacons")
        server, port, _ = self.start_server(folder)
        phone_dir = self.workdir / "phone"
        phone_dir.mkdir()
        udp_port = free_udp_port()
        out = (phone_dir / "stdout.txt").open("wb")
        phone = self.procs.start(
            [
                "-m",
                "bluetrace.client",
                "127.0.0.1",
                str(port),
                str(udp_port),
                "--log-retention",
                "3600",
            ],
            cwd=phone_dir,
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=subprocess.DEVNULL,
        )
        out.close()
        assert phone.stdin is not None
        phone.stdin.write(f"{USER}\n{PASSWORD}\n".encode())
        phone.stdin.flush()
        wait_for(
            lambda: b"Welcome" in (phone_dir / "stdout.txt").read_bytes(), "the client's login"
        )
        log = phone_dir / f"{USER}_contactlog.txt"
        ceiling_log = self.workdir / "ceiling_log.txt"
        ceiling = self.procs.start(
            ["-m", "bluetrace.bench.ceiling", "udp", str(ceiling_log)], stdout=subprocess.PIPE
        )
        ceiling_port = int(read_until(ceiling, b"\n").split()[1])
        # The highest rate that passed with every lower rate passing too.
        best = best_ceiling = 0
        phone_ok = ceiling_ok = True
        for step, rate in enumerate(self.sizes.beacon_rates):
            progress(f"beacons: {rate:,}/s for {self.sizes.beacon_seconds} s")
            seconds = self.sizes.beacon_seconds
            phone_ok = phone_ok and send_beacons(udp_port, rate, seconds, log, step)
            ceiling_ok = ceiling_ok and send_beacons(ceiling_port, rate, seconds, ceiling_log, step)
            best = rate if phone_ok else best
            best_ceiling = rate if ceiling_ok else best_ceiling
        self.add(
            Figure(
                "beacons",
                "highest rate with no loss, exact log",
                best,
                "/s",
                best_ceiling,
                ">= 20,000/s",
                best >= 20_000 if len(self.sizes.beacon_rates) > 2 else None,
            )
        )
        phone.stdin.close()
        phone.wait(WAIT)
        self.stop(ceiling)
        self.stop(server)

    # -- 5. parser cost ------------------------------------------------------------
    def parsers(self) -> None:
        rounds = self.sizes.parser_rounds
        window = TempIDWindow(
            "12345678901234567893",
            datetime(2020, 5, 14, 17, 54, 6),
            datetime(2020, 5, 14, 18, 9, 5),
        )
        beacon = encode_beacon(window)
        layout = struct.Struct("!20s19s19sB")

        def per_second(action: Callable[[], object], n: int = rounds) -> float:
            return n / timeit.timeit(action, number=n)

        def struct_parse() -> object:
            tempid, start, expiry, version = layout.unpack(beacon)
            return tempid.decode(), start.decode(), expiry.decode(), version

        raw = layout.unpack(beacon)
        ceiling_parse = per_second(struct_parse)
        ceiling_build = per_second(lambda: layout.pack(*raw))
        self.add(
            Figure(
                "parsers",
                "beacon parse, construct plain",
                per_second(lambda: wire.Beacon.parse(beacon)),
                "/s",
                ceiling_parse,
            )
        )
        self.add(
            Figure(
                "parsers",
                "beacon parse, construct compiled (decode_beacon)",
                per_second(lambda: decode_beacon(beacon)),
                "/s",
                ceiling_parse,
            )
        )
        self.add(
            Figure(
                "parsers",
                "beacon build, construct",
                per_second(lambda: encode_beacon(window)),
                "/s",
                ceiling_build,
            )
        )
        frame = encode(TempIDReply(window))
        frame_layout = struct.Struct("!BBI20s19s19s")
        self.add(
            Figure(
                "parsers",
                "TempID reply frame parse",
                per_second(lambda: decode(frame)),
                "/s",
                per_second(lambda: frame_layout.unpack(frame)),
            )
        )
        upload = encode(UploadRequest((window,) * wire.MAX_UPLOAD_CHUNK, final=True))
        n = max(2, rounds // 1000)
        entry_rate = per_second(lambda: decode(upload), n) * wire.MAX_UPLOAD_CHUNK
        entries = struct.Struct("!" + "20s19s19s" * wire.MAX_UPLOAD_CHUNK)
        ceiling_entries = (
            per_second(lambda: entries.unpack_from(upload, 9), n) * wire.MAX_UPLOAD_CHUNK
        )
        self.add(Figure("parsers", "upload entries parsed", entry_rate, "/s", ceiling_entries))


def receive(sock: socket.socket, decoder: FrameDecoder) -> object:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        data = sock.recv(65536)
        if not data:
            raise RuntimeError("server closed the connection")
        messages = decoder.messages(data)
        if messages:
            return messages[0]
    raise RuntimeError("no reply in time")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(
    condition: Callable[[], bool], what: str, timeout: float = WAIT, step: float = 0.02
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(step)


def write_tempids(path: Path, count: int) -> list[str]:
    rng = random.Random(1)
    start = datetime(2020, 5, 14, 17, 54, 6)
    tempids = [f"{rng.randrange(10**20):020d}" for _ in range(count)]
    stamp = (
        f"{format_timestamp(start)} {format_timestamp(start + timedelta(minutes=14, seconds=59))}"
    )
    with path.open("w") as handle:
        for i, tempid in enumerate(tempids):
            handle.write(f"+614{i % 1000:08d} {tempid} {stamp}\n")
    return tempids


def count_lines(path: Path, prefix: bytes) -> int:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return 0
    return sum(1 for line in data.split(b"\n") if line.startswith(prefix))


def send_beacons(port: int, rate: int, seconds: float, log: Path, step: int) -> bool:
    """Send rate*seconds valid beacons paced per millisecond; True if the log
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
    last, still_since, deadline = -1, time.monotonic(), time.monotonic() + WAIT
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


def table(figures: list[Figure]) -> str:
    rows = [("part", "figure", "value", "ceiling", "ratio", "target", "met")]
    for f in figures:
        rows.append(
            (
                f.part,
                f.name,
                f"{f.value:,.2f} {f.unit}",
                "" if f.ceiling is None else f"{f.ceiling:,.2f} {f.unit}",
                "" if f.ratio is None else f"{f.ratio:.2f}",
                f.target,
                "" if f.met is None else ("yes" if f.met else "NO"),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


@contextmanager
def workspace() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="bluetrace-bench-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bluetrace.bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a small version of every part")
    parser.add_argument(
        "--json", type=Path, default=DEFAULT_JSON, help="where to write the results"
    )
    parser.add_argument(
        "--only",
        nargs="*",
        default=None,
        choices=["sessions", "checking", "held", "beacons", "parsers"],
    )
    args = parser.parse_args(argv)
    with workspace() as folder:
        bench = Bench(QUICK if args.quick else FULL, folder)
        try:
            for part in ("parsers", "sessions", "checking", "held", "beacons"):
                if args.only is None or part in args.only:
                    getattr(bench, part)()
        finally:
            bench.procs.end_all()
    print(table(bench.figures))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    machine = {"cores": os.cpu_count(), "python": sys.version.split()[0], "platform": sys.platform}
    args.json.write_text(
        json.dumps(
            {
                "machine": machine,
                "quick": args.quick,
                "figures": [asdict(f) | {"ratio": f.ratio} for f in bench.figures],
            },
            indent=2,
        )
    )
    print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
