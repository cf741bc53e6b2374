"""Server mode, sections 3.1 to 3.4 and the uploads of section 4: logging in,
TempIDs and uploads."""

import re
from datetime import timedelta

from bluetrace.conform import frames
from bluetrace.conform.files_target import FilesTarget, check_blocks
from bluetrace.conform.model import (
    CaseContext,
    CaseFailed,
    CaseSkipped,
    Registry,
    bounded_wait,
)
from bluetrace.conform.server_target import (
    ServerTarget,
    allowed_limit,
    expect_error,
    expect_kept,
    expect_status,
    expect_tempid,
    expect_upload_reply,
    lines_with,
    read_data_file,
)
from bluetrace.conform.tcp import Closed, describe
from bluetrace.protocol.messages import ErrorReply, RegisterReply
from bluetrace.protocol.timefmt import format_timestamp, wall_now
from bluetrace.protocol.wire import ErrorCode, LoginStatus, RegisterStatus

case: Registry[ServerTarget] = Registry("server")
CASES = case.cases


# -- section 3.2: login --------------------------------------------------------------


@case("3.2/login-ok", ("BT-4-2",),
      "AWAITING_LOGIN | LOGIN, credentials right, user not blocked | LOGIN_REPLY OK | LOGGED_IN",
      ("LOGIN_REPLY OK (01 81 00000001 00)",))
def login_ok(target: ServerTarget, ctx: CaseContext) -> None:
    target.logged_in(ctx).close()


@case("3.2/unknown-user", ("BT-4-2", "BT-4-11"),
      "AWAITING_LOGIN | LOGIN, unknown username | LOGIN_REPLY UNKNOWN_USER | AWAITING_LOGIN",
      ("LOGIN_REPLY UNKNOWN_USER, connection kept: a right LOGIN then gives OK",))
def unknown_user(target: ServerTarget, ctx: CaseContext) -> None:
    with target.connect(ctx) as conn:
        conn.send(frames.login("no-such-user-" + frames.random_tempid()[:8], "whatever"))
        expect_status(conn, ctx, LoginStatus.UNKNOWN_USER)
        expect_kept(conn, ctx, False, target)


@case("3.2/wrong-password", ("BT-4-2",),
      "AWAITING_LOGIN | LOGIN, wrong password, 1st or 2nd consecutive failure | "
      "LOGIN_REPLY WRONG_PASSWORD | AWAITING_LOGIN",
      ("LOGIN_REPLY WRONG_PASSWORD, connection kept: a right LOGIN then gives OK",))
def wrong_password(target: ServerTarget, ctx: CaseContext) -> None:
    with target.connect(ctx) as conn:
        conn.send(frames.login(target.user, target.password + "x"))
        expect_status(conn, ctx, LoginStatus.WRONG_PASSWORD)
        expect_kept(conn, ctx, False, target)


@case("3.1/case-sensitive", ("BT-3.1-1",),
      "The server compares the password case-sensitively, as the exact text [BT-3.1-1].",
      ("the password with its letters' case swapped gives LOGIN_REPLY WRONG_PASSWORD",))
def case_sensitive(target: ServerTarget, ctx: CaseContext) -> None:
    swapped = target.password.swapcase()
    if swapped == target.password:
        raise CaseSkipped(f"the password of {target.user} has no letters whose case can change")
    with target.connect(ctx) as conn:
        conn.send(frames.login(target.user, swapped))
        expect_status(conn, ctx, LoginStatus.WRONG_PASSWORD, "the case-swapped password gave ")
        expect_kept(conn, ctx, False, target)


@case("4/not-logged-in", ("BT-4-2",),
      "AWAITING_LOGIN | TEMPID_REQUEST, UPLOAD or LOGOUT | ERROR NOT_LOGGED_IN | AWAITING_LOGIN",
      ("ERROR NOT_LOGGED_IN for each of TEMPID_REQUEST, UPLOAD and LOGOUT, connection kept",))
def not_logged_in(target: ServerTarget, ctx: CaseContext) -> None:
    with target.connect(ctx) as conn:
        for name, data in (("TEMPID_REQUEST", frames.TEMPID_REQUEST),
                           ("UPLOAD", frames.upload([], final=True)),
                           ("LOGOUT", frames.LOGOUT)):
            conn.send(data)
            expect_error(conn, ctx, ErrorCode.NOT_LOGGED_IN, f"{name} before login gave ")
        expect_kept(conn, ctx, False, target)


@case("4/already-logged-in", ("BT-4-2",),
      "LOGGED_IN | LOGIN or REGISTER | ERROR ALREADY_LOGGED_IN | LOGGED_IN",
      ("ERROR ALREADY_LOGGED_IN, connection kept and logged in",))
def already_logged_in(target: ServerTarget, ctx: CaseContext) -> None:
    with target.logged_in(ctx) as conn:
        conn.send(frames.login(target.user, target.password))
        expect_error(conn, ctx, ErrorCode.ALREADY_LOGGED_IN)
        expect_kept(conn, ctx, True, target)


@case("3.8/register", ("BT-3.8-1",),
      "Registration is off unless the server was started with --allow-registration; then the "
      "server stores the password hashed (section 5), appends the line to credentials.txt "
      "durably before it replies, and the session stays in AWAITING_LOGIN [BT-3.8-1]",
      ("REGISTER of a fresh number: REGISTER_REPLY CLOSED (registration off), or REGISTERED "
       "and then a LOGIN with that number and password gives LOGIN_REPLY OK on the same "
       "connection; ERROR RATE_LIMITED is SKIPPED (the address's registrations are spent)",))
def register(target: ServerTarget, ctx: CaseContext) -> None:
    number = "+614" + frames.random_tempid()[:8]
    with target.connect(ctx) as conn:
        conn.send(frames.register(number, "kit-pass-1"))
        reply = conn.expect(ctx, "REGISTER_REPLY CLOSED or REGISTERED")
        if isinstance(reply, ErrorReply) and reply.code is ErrorCode.RATE_LIMITED:
            raise CaseSkipped("the server refused with RATE_LIMITED (registrations spent)")
        if not isinstance(reply, RegisterReply) or reply.status not in (
            RegisterStatus.CLOSED, RegisterStatus.REGISTERED,
        ):
            raise CaseFailed(f"REGISTER gave {describe(reply)}, not REGISTER_REPLY CLOSED "
                             "or REGISTERED")
        if reply.status is RegisterStatus.REGISTERED:
            conn.send(frames.login(number, "kit-pass-1"))
            expect_status(conn, ctx, LoginStatus.OK, "LOGIN after REGISTERED gave ")
        else:
            expect_kept(conn, ctx, False, target)


# -- section 3.3: TempIDs --------------------------------------------------------------


@case("3.3/tempid-window", ("BT-3.3-2", "BT-1-5"),
      ("valid from the moment of issue for the server's TempID lifetime [BT-3.3-2]",
       "so expiry = start + 14 min 59 s (the lifetime less one second) [BT-1-5]"),
      ("TEMPID_REPLY whose start is the kit's local time (within 2 s, same machine) and whose "
       "expiry is start + lifetime - 1 s (--tempid-lifetime, default 900)",))
def tempid_window(target: ServerTarget, ctx: CaseContext) -> None:
    with target.logged_in(ctx) as conn:
        before = wall_now()
        window = expect_tempid(conn, ctx).window
        after = wall_now()
    if not before - timedelta(seconds=2) <= window.start <= after + timedelta(seconds=2):
        raise CaseFailed(f"start {format_timestamp(window.start)} is not the moment of issue "
                         f"({format_timestamp(before)}..{format_timestamp(after)})")
    span = window.expiry - window.start
    want = timedelta(seconds=target.tempid_lifetime - 1)
    if span != want:
        raise CaseFailed(f"expiry - start is {span}, not {want} (lifetime "
                         f"{target.tempid_lifetime} s less one second)")


@case("3.3/tempid-unique", ("BT-3.3-1",),
      "a fresh TempID drawn at random, unique among every TempID the server has issued "
      "[BT-3.3-1]",
      ("10 TEMPID_REQUESTs over two connections give 10 different TempIDs",))
def tempid_unique(target: ServerTarget, ctx: CaseContext) -> None:
    seen: list[str] = []
    for channel in ("tcp#1", "tcp#2"):
        with target.logged_in(ctx, channel) as conn:
            seen += [expect_tempid(conn, ctx).window.tempid for _ in range(5)]
    if len(set(seen)) != len(seen):
        raise CaseFailed(f"repeated TempIDs among {seen}")


@case("3.3/tempid-durable", ("BT-3.3-3", "BT-5-3"),
      "The server records it durably before it replies [BT-3.3-3].",
      ("when TEMPID_REPLY arrives, tempIDs.txt in --data-dir already holds the line "
       "'<username> <TempID> <start> <expiry>'",))
def tempid_durable(target: ServerTarget, ctx: CaseContext) -> None:
    target.need_data_dir()
    with target.logged_in(ctx) as conn:
        window = expect_tempid(conn, ctx).window
        text = read_data_file(target, "tempIDs.txt")
    line = f"{conn.user} {' '.join(window.fields_text())}"
    if line not in text.splitlines() and line + "\r" not in text.splitlines():
        found = lines_with(text, window.tempid)
        raise CaseFailed(f"tempIDs.txt lacked {line!r} when the reply arrived "
                         f"(lines with the TempID: {found})")


# -- section 3.4: uploads --------------------------------------------------------------


@case("3.4/upload-one-chunk", ("BT-3.4-3", "BT-3.4-5"),
      "The server answers the final chunk (and only it) with UPLOAD_REPLY, whose body is the "
      "total number of entries received across all chunks (u32) [BT-3.4-3].",
      ("UPLOAD_REPLY 2, body exactly 4 bytes",))
def upload_one_chunk(target: ServerTarget, ctx: CaseContext) -> None:
    with target.logged_in(ctx) as conn:
        conn.send(frames.upload([frames.entry(frames.random_tempid()) for _ in range(2)], True))
        expect_upload_reply(conn, ctx, 2)


@case("3.4/upload-empty", ("BT-3.4-2",),
      "An empty log is one empty final chunk (count 0, final 1), answered UPLOAD_REPLY 0 "
      "[BT-3.4-2].",
      ("UPLOAD_REPLY 0",))
def upload_empty(target: ServerTarget, ctx: CaseContext) -> None:
    with target.logged_in(ctx) as conn:
        conn.send(frames.upload([], True))
        expect_upload_reply(conn, ctx, 0)


@case("3.4/upload-chunks", ("BT-3.4-3", "BT-4-2"),
      "The server answers the final chunk (and only it) with UPLOAD_REPLY, whose body is the "
      "total number of entries received across all chunks (u32) [BT-3.4-3]",
      ("nothing after the final = 0 chunk (0.3 s of silence), UPLOAD_REPLY 5 after the final",))
def upload_chunks(target: ServerTarget, ctx: CaseContext) -> None:
    with target.logged_in(ctx) as conn:
        conn.send(frames.upload([frames.entry(frames.random_tempid()) for _ in range(3)], False))
        early = conn.silence(ctx, 0.3)
        if early is not None:
            raise CaseFailed(f"{describe(early) if not isinstance(early, Closed) else early} "
                             "after a chunk with final = 0")
        conn.send(frames.upload([frames.entry(frames.random_tempid()) for _ in range(2)], True))
        expect_upload_reply(conn, ctx, 5)


def _whole_block_lines(target: ServerTarget) -> list[str]:
    """The check lines of contact_checks.txt that are inside whole blocks."""
    files = FilesTarget(target.need_data_dir())
    try:
        first_begin = next((number for number, raw in enumerate(
            files.raw_lines("contact_checks.txt"), start=1) if raw.startswith(b"begin ")), None)
        checks, _, _ = check_blocks(files)
    except CaseSkipped:
        return []
    if first_begin is None:
        return []
    return [line for number, line in checks if number > first_begin]


@case("3.4/check-durable", ("BT-3.4-4", "BT-4-13", "BT-5-3", "BT-5-6"),
      ("the upload's checking record (contact_checks.txt, section 5) is durable before "
       "UPLOAD_REPLY is sent [BT-3.4-4]",
       "The server maps each entry's TempID to the phone number it was issued to, using "
       "every TempID it has ever issued, whatever the entry's dates [BT-4-13]"),
      ("when UPLOAD_REPLY arrives, contact_checks.txt holds, inside a whole begin/commit "
       "block, one line per entry: the issued TempID (uploaded with 2020 dates) mapped to the "
       "user, the other 'unknown'",))
def check_durable(target: ServerTarget, ctx: CaseContext) -> None:
    target.need_data_dir()
    stranger = frames.random_tempid()
    with target.logged_in(ctx) as conn:
        issued = expect_tempid(conn, ctx).window.tempid
        conn.send(frames.upload([frames.entry(issued), frames.entry(stranger)], True))
        expect_upload_reply(conn, ctx, 2)
        blocked = _whole_block_lines(target)
    stamp = r"\d\d/\d\d/\d{4} \d\d:\d\d:\d\d"
    dates = re.escape(f"{frames.OLD_START} {frames.OLD_EXPIRY}")
    problems = []
    for tempid, contact in ((issued, conn.user), (stranger, "unknown")):
        lines = [line for line in blocked if tempid in line]
        regex = re.compile(f"{stamp} {re.escape(conn.user)} {tempid} {dates} "
                           f"{re.escape(contact)}")
        if not any(regex.fullmatch(line) for line in lines):
            problems.append(f"no line '<checked at> {conn.user} {tempid} <start> <expiry> "
                            f"{contact}' in a whole begin/commit block (lines with it: "
                            f"{lines_with(read_data_file(target, 'contact_checks.txt'), tempid)})")
    if problems:
        raise CaseFailed("when UPLOAD_REPLY arrived: " + "; ".join(problems))


@case("4/upload-interrupted", ("BT-4-2", "BT-4-12"),
      ("UPLOADING | LOGIN, TEMPID_REQUEST, LOGOUT or REGISTER | ERROR UNEXPECTED (upload "
       "discarded) | LOGGED_IN",
       "an upload cut off before its final chunk (disconnect, error) is discarded and "
       "nothing of it is recorded [BT-4-12]"),
      ("ERROR UNEXPECTED, still logged in (TEMPID_REQUEST works), a new upload counts only "
       "its own entries; with --data-dir, the discarded entry is never recorded",))
def upload_interrupted(target: ServerTarget, ctx: CaseContext) -> None:
    dropped, sentinel = frames.random_tempid(), frames.random_tempid()
    with target.logged_in(ctx) as conn:
        conn.send(frames.upload([frames.entry(dropped)], False))
        conn.send(frames.TEMPID_REQUEST)
        expect_error(conn, ctx, ErrorCode.UNEXPECTED, "a TEMPID_REQUEST inside an upload gave ")
        expect_kept(conn, ctx, True, target)
        conn.send(frames.upload([frames.entry(sentinel)], True))
        expect_upload_reply(conn, ctx, 1)
    if target.data_dir is not None:
        _sentinel_only(target, ctx, dropped, sentinel)


def _sentinel_only(target: ServerTarget, ctx: CaseContext, dropped: str, sentinel: str) -> None:
    if not bounded_wait(lambda: sentinel in read_data_file(target, "contact_checks.txt"),
                        ctx.remaining(ctx.timeout)):
        raise CaseFailed(f"the completed upload ({sentinel}) never reached contact_checks.txt")
    if dropped in read_data_file(target, "contact_checks.txt"):
        raise CaseFailed(f"the discarded entry {dropped} was recorded in contact_checks.txt")


@case("4/upload-cut-off", ("BT-4-12",),
      "an upload cut off before its final chunk (disconnect, error) is discarded and nothing "
      "of it is recorded [BT-4-12]",
      ("after a disconnect mid-upload, a later complete upload is recorded and the cut-off "
       "entry never is (contact_checks.txt in --data-dir)",))
def upload_cut_off(target: ServerTarget, ctx: CaseContext) -> None:
    target.need_data_dir()
    dropped, sentinel = frames.random_tempid(), frames.random_tempid()
    with target.logged_in(ctx, "tcp#1") as conn:
        conn.send(frames.upload([frames.entry(dropped)], False))
        conn.silence(ctx, 0.1)
    with target.logged_in(ctx, "tcp#2") as conn:
        conn.send(frames.upload([frames.entry(sentinel)], True))
        expect_upload_reply(conn, ctx, 1)
    _sentinel_only(target, ctx, dropped, sentinel)


_FULL_CHUNK_ENTRIES = 1024
_UPLOAD_LIMIT = 200_000


@case("4/upload-limit", ("BT-4-3", "BT-4-2"),
      "An upload that passes the upload limit (200,000 entries) is discarded chunk by chunk "
      "through its final chunk: nothing of it is held or recorded, the final chunk is "
      "answered with one ERROR TOO_LARGE, and the session stays logged in [BT-4-3].",
      ("no reply to any chunk before the final, one ERROR TOO_LARGE to the final chunk, then "
       "TEMPID_REQUEST still works; with --data-dir, nothing of the upload recorded",),
      budget=20.0)
def upload_limit(target: ServerTarget, ctx: CaseContext) -> None:
    marker = frames.random_tempid()
    filler = frames.entry(frames.random_tempid())
    first = frames.upload([frames.entry(marker)] + [filler] * (_FULL_CHUNK_ENTRIES - 1), False)
    full = frames.upload([filler] * _FULL_CHUNK_ENTRIES, False)
    chunks = _UPLOAD_LIMIT // _FULL_CHUNK_ENTRIES + 1  # 196 chunks: 200,704 entries
    with target.logged_in(ctx) as conn:
        conn.sock.settimeout(ctx.remaining())
        conn.send(first)
        for _ in range(chunks - 1):
            conn.sock.sendall(full)  # logged as one line below, not 196 times
        ctx.log.note("tcp", f"sent {chunks - 1} more chunks of 1024 entries (final = 0)")
        early = conn.silence(ctx, 0.2)
        if early is not None:
            raise CaseFailed(f"{describe(early) if not isinstance(early, Closed) else early} "
                             f"before the final chunk, after {chunks * 1024} entries")
        conn.send(frames.upload([filler], True))
        reply = conn.expect(ctx, "ERROR TOO_LARGE", wait=ctx.remaining())
        allowed_limit(reply)
        if not (isinstance(reply, ErrorReply) and reply.code is ErrorCode.TOO_LARGE):
            raise CaseFailed(f"the final chunk of a {chunks * 1024 + 1}-entry upload gave "
                             f"{describe(reply)}, not ERROR TOO_LARGE")
        expect_kept(conn, ctx, True, target)
    if target.data_dir is not None and marker in read_data_file(target, "contact_checks.txt"):
        raise CaseFailed(f"an entry of the refused upload ({marker}) was recorded")
