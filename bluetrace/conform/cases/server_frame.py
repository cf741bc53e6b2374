"""Server mode, sections 1 and 3 and the order of checks: the frames a server
must refuse, and how (RST or FIN: see cases/server.py)."""

import time

from bluetrace.conform import frames
from bluetrace.conform.model import (
    CaseContext,
    CaseFailed,
    Registry,
)
from bluetrace.conform.server_target import (
    CLOSED_AT_ONCE,
    LINGERS,
    ServerTarget,
    expect_closed_at_once,
    expect_error,
    expect_linger,
    expect_status,
    expect_upload_reply,
)
from bluetrace.conform.tcp import Conn
from bluetrace.protocol.wire import ErrorCode, LoginStatus

case: Registry[ServerTarget] = Registry("server")
CASES = case.cases
# passages of protocol_spec.md that more than one case quotes
ORDER = ("A frame is checked in this order, and the first failure decides the answer: the "
         "header (version, a known type, a length within the state's limit), then the body "
         "(every field as section 3 defines it, nothing after it), then this table [BT-4-1]")


# -- section 3: frames -----------------------------------------------------------------


@case("3/header-version", ("BT-3-1", "BT-4-6"),
      "A receiver checks the header as soon as its 6 bytes have arrived: an unknown version "
      "or type, or a length above the limit, is an error before any of the body is read "
      "[BT-3-1].",
      ("ERROR MALFORMED as soon as the 6-byte header (version 0x02) has arrived, then "
       + CLOSED_AT_ONCE,))
def header_version(target: ServerTarget, ctx: CaseContext) -> None:
    with target.connect(ctx) as conn:
        conn.send(frames.header(0x01, 22, version=0x02))
        expect_error(conn, ctx, ErrorCode.MALFORMED)
        expect_closed_at_once(conn, ctx)


@case("3/unknown-types", ("BT-3-4", "BT-4-6"),
      "The types 0x00, 0x06-0x80 and 0x86-0xFE are unknown: a server answers a frame of an "
      "unknown type with ERROR MALFORMED and closes the connection [BT-3-4].",
      ("for each of 0x00, 0x06, 0x7F, 0x80, 0x86, 0xFE: ERROR MALFORMED, then "
       + CLOSED_AT_ONCE,))
def unknown_types(target: ServerTarget, ctx: CaseContext) -> None:
    for kind in frames.UNKNOWN_TYPES:
        with target.connect(ctx, f"tcp/{kind:#04x}") as conn:
            conn.send(frames.header(kind, 0))
            expect_error(conn, ctx, ErrorCode.MALFORMED, f"type {kind:#04x} gave ")
            expect_closed_at_once(conn, ctx, f"type {kind:#04x}: ")


@case("3/reply-types", ("BT-3-5", "BT-4-2", "BT-4-5"),
      "A reply type (0x81-0x85, 0xFF) sent by a client is known but not a client's to send: "
      "the server answers ERROR UNEXPECTED and closes the connection (section 4) [BT-3-5].",
      ("for each reply type (well-formed body), before and after login: ERROR UNEXPECTED, "
       "then " + LINGERS,),
      budget=4.0)
def reply_types(target: ServerTarget, ctx: CaseContext) -> None:
    waiting: list[tuple[str, Conn, float]] = []
    try:
        for logged in (False, True):
            for kind, data in frames.REPLY_FRAMES.items():
                label = f"{kind:#04x}{' logged in' if logged else ''}"
                channel = f"tcp/{kind:#04x}{'+' if logged else ''}"
                conn = target.logged_in(ctx, channel) if logged else target.connect(ctx, channel)
                waiting.append((label, conn, 0.0))
                conn.send(data)
                expect_error(conn, ctx, ErrorCode.UNEXPECTED, f"type {label} gave ")
                waiting[-1] = (label, conn, time.monotonic())
        ctx.notes += expect_linger(waiting, ctx)
    finally:
        for _, conn, _ in waiting:
            conn.close()


@case("3/oversized-before-login", ("BT-3-2", "BT-3-1", "BT-4-6"),
      "Until a session has logged in, the server's limit is 512 bytes, the size of the "
      "largest LOGIN, so that a stranger cannot make it hold more [BT-3-2].",
      ("a LOGIN header announcing 513 bytes, with no body sent: ERROR TOO_LARGE, then "
       + CLOSED_AT_ONCE,))
def oversized_before_login(target: ServerTarget, ctx: CaseContext) -> None:
    with target.connect(ctx) as conn:
        conn.send(frames.header(0x01, frames.PRE_LOGIN_MAX + 1))
        expect_error(conn, ctx, ErrorCode.TOO_LARGE, "a 513-byte LOGIN header gave ")
        expect_closed_at_once(conn, ctx)


@case("3/oversized-after-login", ("BT-3-1", "BT-4-6"),
      ("L <= 59395 (the largest legal body, a full upload chunk)",
       "largest frame body | 59,395 bytes (a header announcing more is refused at once)"),
      ("an UPLOAD header announcing 59396 bytes, with no body sent: ERROR TOO_LARGE, then "
       + CLOSED_AT_ONCE,))
def oversized_after_login(target: ServerTarget, ctx: CaseContext) -> None:
    with target.logged_in(ctx) as conn:
        conn.send(frames.header(0x03, frames.MAX_BODY + 1))
        expect_error(conn, ctx, ErrorCode.TOO_LARGE, "a 59396-byte UPLOAD header gave ")
        expect_closed_at_once(conn, ctx)


@case("3/trailing-bytes", ("BT-3-3", "BT-4-6"),
      "A body is exactly what its type defines, with nothing after it; anything else is "
      "malformed [BT-3-3].",
      ("TEMPID_REQUEST with a 1-byte body: ERROR MALFORMED, then " + CLOSED_AT_ONCE,))
def trailing_bytes(target: ServerTarget, ctx: CaseContext) -> None:
    with target.logged_in(ctx) as conn:
        conn.send(frames.frame(0x02, b"\x00"))
        expect_error(conn, ctx, ErrorCode.MALFORMED)
        expect_closed_at_once(conn, ctx)


@case("3/split-frames", ("BT-4-2",),
      "Every C2S message is one frame: a 6-byte header, then a body whose layout the type "
      "selects.",
      ("a LOGIN sent one byte at a time gives LOGIN_REPLY OK",))
def split_frames(target: ServerTarget, ctx: CaseContext) -> None:
    with target.connect(ctx) as conn:
        for byte in frames.login(target.user, target.password):
            conn.send(bytes([byte]))
            time.sleep(0.005)  # pacing, so that each byte travels alone
        expect_status(conn, ctx, LoginStatus.OK)


# -- section 4: order of checks ----------------------------------------------------------


@case("4/order-malformed-before-login", ("BT-4-1",),
      ORDER,
      ("an UPLOAD with flags 0x02 before login: ERROR MALFORMED (not NOT_LOGGED_IN), then "
       + CLOSED_AT_ONCE,))
def order_malformed_before_login(target: ServerTarget, ctx: CaseContext) -> None:
    with target.connect(ctx) as conn:
        conn.send(frames.frame(0x03, b"\x02\x00\x00"))
        expect_error(conn, ctx, ErrorCode.MALFORMED)
        expect_closed_at_once(conn, ctx)


@case("4/order-long-login-before-login", ("BT-4-1", "BT-3-2"),
      (ORDER,
       "Until a session has logged in, the server's limit is 512 bytes, the size of the "
       "largest LOGIN, so that a stranger cannot make it hold more [BT-3-2]"),
      ("a LOGIN header announcing 600 bytes before login: ERROR TOO_LARGE, then "
       + CLOSED_AT_ONCE,))
def order_long_login_before(target: ServerTarget, ctx: CaseContext) -> None:
    with target.connect(ctx) as conn:
        conn.send(frames.header(0x01, 600))
        expect_error(conn, ctx, ErrorCode.TOO_LARGE)
        expect_closed_at_once(conn, ctx)


@case("4/order-long-login-after-login", ("BT-4-1",),
      ORDER,
      ("a 622-byte LOGIN body after login: ERROR MALFORMED (not ALREADY_LOGGED_IN), then "
       + CLOSED_AT_ONCE,))
def order_long_login_after(target: ServerTarget, ctx: CaseContext) -> None:
    with target.logged_in(ctx) as conn:
        body = frames.text8(b"u" * 255) + frames.text8(b"p" * 255) + b"x" * 110
        conn.send(frames.frame(0x01, body))
        expect_error(conn, ctx, ErrorCode.MALFORMED)
        expect_closed_at_once(conn, ctx)


# -- section 1: field values ------------------------------------------------------------

_BAD_ENTRIES = {
    "TempID with a letter": frames.entry("1234567890123456789A"),
    "day 31/02": frames.entry(frames.random_tempid(), "31/02/2021 10:00:00"),
    "29/02 in 2021": frames.entry(frames.random_tempid(), "29/02/2021 10:00:00"),
    "year 0000": frames.entry(frames.random_tempid(), "01/01/0000 10:00:00"),
    "hour 24": frames.entry(frames.random_tempid(), "01/01/2021 24:00:00"),
    "no leading zero": frames.entry(frames.random_tempid(), " 1/01/2021 10:00:00"),
}


@case("1/field-values", ("BT-1-1",),
      "A field outside its allowed values (in this table or in any table below) makes a "
      "frame malformed (section 3.6) and a datagram no beacon (section 2) [BT-1-1]",
      ("ERROR MALFORMED, then " + CLOSED_AT_ONCE + ", for: an empty username, flags 0x02, "
       "count 1025, a count that disagrees with the body, and entries with " +
       ", ".join(_BAD_ENTRIES),))
def field_values(target: ServerTarget, ctx: CaseContext) -> None:
    probes: list[tuple[str, bytes, bool]] = [
        ("empty username", frames.frame(0x01, frames.text8(b"") + frames.text8(b"pw")), False),
        ("flags 0x02", frames.frame(0x03, b"\x02\x00\x00"), True),
        ("count 1025", frames.frame(0x03, b"\x01\x04\x01"), True),
        ("count 2 with 1 entry", frames.upload([frames.entry(frames.random_tempid())], True,
                                               count=2), True),
    ]
    probes += [(name, frames.upload([data], True), True) for name, data in _BAD_ENTRIES.items()]
    problems = []
    for index, (name, data, logged) in enumerate(probes):
        channel = f"tcp#{index + 1}"
        conn = target.logged_in(ctx, channel) if logged else target.connect(ctx, channel)
        with conn:
            conn.send(data)
            try:
                expect_error(conn, ctx, ErrorCode.MALFORMED)
                expect_closed_at_once(conn, ctx)
            except CaseFailed as exc:
                problems.append(f"{name}: {exc.actual}")
    if problems:
        raise CaseFailed("; ".join(problems))


@case("1/printable", ("BT-1-3", "BT-1-4"),
      "A character is printable unless its Unicode general category is Cc, Cf, Cs, Co, Cn, "
      "Zl, Zp or Zs, except that U+0020 SPACE is printable (this is Python's "
      "str.isprintable, Unicode 15.0 for Python 3.11) [BT-1-3]. Text8 also excludes every "
      "white-space character (Python's str.isspace), the space included [BT-1-4]",
      ("usernames holding U+00A0 (Zs), U+200B (Cf), U+0009 (Cc), U+2028 (Zl) or a space: "
       "ERROR MALFORMED; a username holding U+00E9 (a letter): LOGIN_REPLY UNKNOWN_USER",))
def printable(target: ServerTarget, ctx: CaseContext) -> None:
    problems = []
    for index, char in enumerate(("\u00a0", "\u200b", "\t", "\u2028", " ", "\u00e9")):
        name = f"U+{ord(char):04X}"
        with target.connect(ctx, f"tcp#{index + 1}") as conn:
            conn.send(frames.login(f"+61{char}4108", "password"))
            try:
                if char == "\u00e9":
                    expect_status(conn, ctx, LoginStatus.UNKNOWN_USER, f"{name} gave ")
                else:
                    expect_error(conn, ctx, ErrorCode.MALFORMED, f"{name} gave ")
            except CaseFailed as exc:
                problems.append(exc.actual)
    if problems:
        raise CaseFailed("; ".join(problems))


@case("1/calendar", ("BT-1-2",),
      "They are compared as calendar values, field by field (year, month, day, hour, minute, "
      "second), so a time inside a daylight-saving gap is a legal value [BT-1-2]",
      ("UPLOAD_REPLY 4 for entries dated 29/02/2020, 29/03/2026 02:30:00 (a gap in much of "
       "Europe), 08/03/2026 02:30:00 (a gap in much of America), 31/12/9999 23:59:59",))
def calendar(target: ServerTarget, ctx: CaseContext) -> None:
    stamps = ("29/02/2020 12:00:00", "29/03/2026 02:30:00", "08/03/2026 02:30:00",
              "31/12/9999 23:59:59")
    with target.logged_in(ctx) as conn:
        conn.send(frames.upload([frames.entry(frames.random_tempid(), s, s) for s in stamps], True))
        expect_upload_reply(conn, ctx, len(stamps))
