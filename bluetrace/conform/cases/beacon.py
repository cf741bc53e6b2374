"""Beacon mode: datagrams at a running phone's UDP port, and its contact log.

The 59-byte beacon is fixed by the original assignment, so this mode grades
any implementation of it, whatever its TCP protocol. The phone must be
running and logged in (a phone keeps no contact log before login), on this
machine: validity is judged against the kit's own local wall clock.

Before anything else the kit finds out whether the phone stores the raw
59-byte beacon at all (``2/format``): many implementations of the assignment
beacon in a format of their own, and for them every other case is N/A, one
clear verdict instead of ten rule failures. A phone that stops storing valid
beacons during a case (its listener died on a malformed datagram) is said to
be dead, loudly, with the time, and the later cases are N/A.

"Not stored" is shown, not assumed: after each beacon that must be rejected
the kit sends a valid sentinel beacon and waits until the sentinel's line is
in the log; the rejected beacon, sent first, must then be absent.
"""

import re
import socket
import time
from datetime import timedelta
from functools import partial

from bluetrace.conform import frames
from bluetrace.conform.beacon_target import BeaconTarget
from bluetrace.conform.model import (
    CaseContext,
    CaseFailed,
    CaseNotApplicable,
    CaseSkipped,
    Registry,
    bounded_wait,
)
from bluetrace.protocol.timefmt import format_timestamp, wall_now

_LINE = re.compile(r"[0-9]{20} \d\d/\d\d/\d{4} \d\d:\d\d:\d\d \d\d/\d\d/\d{4} \d\d:\d\d:\d\d")


case: Registry[BeaconTarget] = Registry("beacon")
CASES = case.cases
# passages of protocol_spec.md that more than one case quotes
RECEIVING = ("A datagram that is not exactly a well-formed beacon (any other length, a "
             "non-digit in the TempID, an impossible date, a version byte other than 0x01 or "
             "0x31) is rejected and changes nothing [BT-2-1]")
VALID_STORED = ("A well-formed beacon is valid if the receiver's current local time lies in "
                "its window (inclusive at both ends) and invalid otherwise: the receiver "
                "compares its own local wall-clock reading with start and expiry as calendar "
                "values (section 1). Only valid beacons are stored, as a line of the contact "
                "log (section 5) [BT-2-4]")


@case("2/format", ("BT-2-1",),
      ("A beacon is exactly 59 bytes and nothing else",
       RECEIVING),
      ("a valid 59-byte beacon is stored: the phone speaks the assignment's beacon format "
       "(if not, every other beacon case is N/A)",))
def speaks_format(target: BeaconTarget, ctx: CaseContext) -> None:
    if target.dead is not None:
        raise CaseNotApplicable(f"the phone stopped storing beacons {target.dead}")
    if not target.probe_format(ctx):
        raise CaseFailed("a valid raw 59-byte beacon was not stored: the phone speaks "
                         "another beacon format (JSON, text, a handshake), so the other "
                         "beacon cases are N/A")


@case("2/valid-stored", ("BT-2-4", "BT-5-3"),
      "Only valid beacons are stored, as a line of the contact log (section 5) [BT-2-4]",
      ("a beacon valid from a minute ago for 15 minutes appears as the line "
       "'<TempID> <start> <expiry>' within the timeout",))
def valid_stored(target: BeaconTarget, ctx: CaseContext) -> None:
    target.gate(ctx)
    now = wall_now()
    tempid = frames.random_tempid()
    start, expiry = now - timedelta(minutes=1), now + timedelta(minutes=14)
    target.send(ctx, frames.beacon(tempid, start, expiry))
    line = target.wait_stored(ctx, tempid, "the valid beacon")
    want = f"{tempid} {format_timestamp(start)} {format_timestamp(expiry)}"
    if line != want:
        raise CaseFailed(f"stored as {line!r}, not {want!r}")


@case("2/version-31", ("BT-2-3",),
      "it also reads the digit 1 (0x31) as version 1, because other implementations of the "
      "assignment write the version as text, and their beacons must be heard [BT-2-3]",
      ("a valid beacon whose version byte is 0x31 is stored",))
def version_31(target: BeaconTarget, ctx: CaseContext) -> None:
    target.gate(ctx)
    now = wall_now()
    tempid = frames.random_tempid()
    target.send(ctx, frames.beacon(tempid, now - timedelta(minutes=1),
                                   now + timedelta(minutes=14), version=0x31))
    target.wait_stored(ctx, tempid, "the beacon with version byte 0x31")


@case("2/expired", ("BT-2-4",),
      VALID_STORED,
      ("a beacon that expired a minute ago is not stored (a valid sentinel sent after it is)",))
def expired(target: BeaconTarget, ctx: CaseContext) -> None:
    target.gate(ctx)
    now = wall_now()
    tempid = frames.random_tempid()
    data = frames.beacon(tempid, now - timedelta(minutes=16), now - timedelta(minutes=1))
    target.rejected(ctx, [("the expired beacon", data, tempid)])


@case("2/not-yet-valid", ("BT-2-4",),
      VALID_STORED,
      ("a beacon whose window starts in a minute is not stored",))
def not_yet_valid(target: BeaconTarget, ctx: CaseContext) -> None:
    target.gate(ctx)
    now = wall_now()
    tempid = frames.random_tempid()
    data = frames.beacon(tempid, now + timedelta(minutes=1), now + timedelta(minutes=16))
    target.rejected(ctx, [("the future beacon", data, tempid)])


@case("2/inclusive-bounds", ("BT-2-4", "BT-1-2"),
      (VALID_STORED,
       "They are compared as calendar values, field by field (year, month, day, hour, "
       "minute, second)"),
      ("sent just after a second begins: a beacon starting at this second and one expiring "
       "at this second are both stored (up to 3 tries, since a phone that reads its clock "
       "after the second has ended may rightly refuse the second one)",),
      budget=4.0)
def inclusive_bounds(target: BeaconTarget, ctx: CaseContext) -> None:
    target.gate(ctx)
    missing: list[str] = []
    for attempt in range(1, 4):
        bounded_wait(lambda: 0.02 < time.time() % 1.0 < 0.3, 1.2, 0.005)
        now = wall_now()
        starts, ends = frames.random_tempid(), frames.random_tempid()
        target.send(ctx, frames.beacon(starts, now, now + timedelta(minutes=14)))
        target.send(ctx, frames.beacon(ends, now - timedelta(minutes=14), now))
        ctx.log.note("kit", f"try {attempt}: both sent at {format_timestamp(now)} "
                     f"(+{time.time() % 1.0:.3f} s)")
        wait = ctx.remaining(min(ctx.timeout, 0.9))
        missing = [name for name, tempid in (("starting", starts), ("expiring", ends))
                   if not bounded_wait(partial(target.has, tempid), wait)]
        if not missing:
            return
    raise CaseFailed(f"in 3 tries, the beacon {' and '.join(missing)} at the current second "
                     "was not stored")


@case("2/wrong-length", ("BT-2-1",),
      RECEIVING,
      ("datagrams of 58 and 60 bytes (a valid beacon cut short or with a byte added) and of "
       "0 bytes are not stored",))
def wrong_length(target: BeaconTarget, ctx: CaseContext) -> None:
    target.gate(ctx)
    short_id, short = frames.valid_beacon()
    long_id, long = frames.valid_beacon()
    target.rejected(ctx, [("58 bytes", short[:58], short_id), ("60 bytes", long + b"1", long_id),
                          ("0 bytes", b"", "")])


@case("2/bad-fields", ("BT-2-1", "BT-1-1"),
      RECEIVING,
      ("59-byte datagrams with a letter in the TempID, day 31/02, hour 24, version 0x02 or "
       "version 0x00 are not stored",))
def bad_fields(target: BeaconTarget, ctx: CaseContext) -> None:
    target.gate(ctx)
    now = wall_now()
    soon = now + timedelta(minutes=10)
    letter = frames.random_tempid()[:19]
    ids = [frames.random_tempid() for _ in range(4)]
    probes = [
        ("a letter in the TempID", frames.beacon(letter + "A", now, soon), letter),
        ("31/02", frames.beacon(ids[0], "31/02/2021 10:00:00", soon), ids[0]),
        ("hour 24", frames.beacon(ids[1], now, f"{format_timestamp(soon)[:11]}24:00:00"), ids[1]),
        ("version 0x02", frames.beacon(ids[2], now, soon, version=0x02), ids[2]),
        ("version 0x00", frames.beacon(ids[3], now, soon, version=0x00), ids[3]),
    ]
    target.rejected(ctx, probes)


@case("2/no-ack", ("BT-2-6",),
      "Beacons are not acknowledged [BT-2-6].",
      ("nothing comes back to the sending socket within 0.5 s of a valid beacon",))
def no_ack(target: BeaconTarget, ctx: CaseContext) -> None:
    target.gate(ctx)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        tempid, data = frames.valid_beacon()
        target.send(ctx, data, sock)
        target.wait_stored(ctx, tempid, "the valid beacon")
        sock.settimeout(0.5)
        try:
            reply, _ = sock.recvfrom(65536)
        except TimeoutError:
            return
        except OSError as exc:
            raise CaseFailed(f"the send drew an error: {exc.strerror or exc}") from None
        ctx.log.received("udp", reply)
        raise CaseFailed(f"a {len(reply)}-byte datagram came back")


@case("2/retention", ("BT-2-5",),
      "each stored entry is removed a fixed retention time after it was received (3 minutes "
      "by default) [BT-2-5]",
      ("two beacons 1 s apart: each line stays until shortly before --retention has passed "
       "since it was sent, and is gone (whole line) within the timeout after; the other "
       "stays meanwhile",),
      budget=4.0)
def retention(target: BeaconTarget, ctx: CaseContext) -> None:
    target.gate(ctx)
    keep = target.retention
    if keep is None:
        raise CaseSkipped("needs --retention S, the phone's retention (set it short)")
    if keep > target.max_wait:
        raise CaseSkipped(f"retention {keep:g} s is longer than --max-wait")
    ctx.deadline += keep
    first_id, first = frames.valid_beacon()
    target.send(ctx, first)
    sent_first = time.monotonic()
    target.wait_stored(ctx, first_id, "the first beacon")
    bounded_wait(lambda: time.monotonic() >= sent_first + 1.0, 1.1)
    second_id, second = frames.valid_beacon()
    target.send(ctx, second)
    sent_second = time.monotonic()
    target.wait_stored(ctx, second_id, "the second beacon")
    early = sent_first + max(0.0, keep - 0.5)
    if bounded_wait(lambda: not target.has(first_id), max(0.0, early - time.monotonic())):
        gone = time.monotonic() - sent_first
        raise CaseFailed(f"the first entry was gone {gone:.2f} s after it was sent, before "
                         f"the {keep:g} s retention")
    if not bounded_wait(lambda: not target.has(first_id),
                        max(0.0, sent_first + keep + ctx.timeout - time.monotonic())):
        raise CaseFailed(f"the first entry was still there {keep + ctx.timeout:g} s after it "
                         "was sent")
    ctx.notes.append(f"first entry gone {time.monotonic() - sent_first:.2f} s after sending")
    if time.monotonic() < sent_second + keep - 0.5 and not target.has(second_id):
        raise CaseFailed("the second entry, received 1 s later, went with the first")
    if not bounded_wait(lambda: not target.has(second_id),
                        max(0.0, sent_second + keep + ctx.timeout - time.monotonic())):
        raise CaseFailed("the second entry was never removed")
    bad = [line for line in target.lines() if line and not _LINE.fullmatch(line)]
    if bad:
        raise CaseFailed(f"after the removals the log holds broken lines: {bad[:3]}")


@case("5/whole-lines", ("BT-5-2", "BT-5-3"),
      ("Writers append whole lines and start a new line first if the file does not end with "
       "one [BT-5-2]",
       "Each line holds exactly the fields its row names, one space apart; timestamps in "
       "files have the same DD/MM/YYYY HH:MM:SS form as on the wire [BT-5-3]"),
      ("after a valid beacon is stored, the contact log ends with a line end and every "
       "non-blank line is '<TempID> <start> <expiry>'",))
def whole_lines(target: BeaconTarget, ctx: CaseContext) -> None:
    target.gate(ctx)
    tempid, data = frames.valid_beacon()
    target.send(ctx, data)
    target.wait_stored(ctx, tempid, "the valid beacon")
    raw = target.log_path.read_bytes()
    if not raw.endswith(b"\n"):
        raise CaseFailed(f"the log ends with {raw[-20:]!r}, not a line end")
    bad = [line for line in target.lines() if line and not _LINE.fullmatch(line)]
    if bad:
        raise CaseFailed(f"lines that are not '<TempID> <start> <expiry>': {bad[:3]}")
