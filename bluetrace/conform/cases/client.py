"""Client mode: the kit plays the server and a beacon sender against any phone.

Each case starts the phone program afresh (``--exec``), types on its terminal
as a user would, answers its frames as a server would, and reads what it
shows: the texts of the specification's sample session (usernames and
passwords are typed at ``Username:`` and ``Password:`` prompts).

RST or FIN: where the phone must close the connection, both count; the
report says which was seen.
"""

import socket
from datetime import timedelta

from bluetrace.conform import frames
from bluetrace.conform.client_target import (
    BLOCKED,
    BLOCKED_NOW,
    INVALID_COMMAND,
    INVALID_PASSWORD,
    INVALID_USERNAME,
    WELCOME,
    ClientTarget,
)
from bluetrace.conform.model import (
    PARSER_INTERNALS,
    CaseContext,
    CaseFailed,
    CaseNonStrict,
    Registry,
)
from bluetrace.conform.phone import STARTUP, PhoneSession
from bluetrace.conform.tcp import Closed, Conn, describe
from bluetrace.protocol.messages import (
    LoginRequest,
    LogoutReply,
    TempIDReply,
    TempIDRequest,
    TempIDWindow,
    UploadReply,
    UploadRequest,
    encode,
    encode_beacon,
)
from bluetrace.protocol.timefmt import wall_now
from bluetrace.protocol.wire import LoginStatus

case: Registry[ClientTarget] = Registry("client", extra_budget=STARTUP)
CASES = case.cases
# passages of protocol_spec.md that more than one case quotes
ONE_REQUEST = ("A client sends one request and waits for its reply before the next, except "
               "for the UPLOAD chunks of one upload, which it sends back to back [BT-4-15]")


def _phone_closes(phone: PhoneSession, conn: Conn, ctx: CaseContext, after: str) -> Closed:
    ended = conn.wait_closed(ctx, ctx.timeout)
    if ended is None:
        raise CaseFailed(f"the phone kept the connection open {ctx.timeout:g} s {after}")
    if not isinstance(ended, Closed):
        raise CaseFailed(f"the phone sent {describe(ended)} {after} instead of closing")
    ctx.notes.append(f"{ended} {after}")
    return ended


def _window(tempid: str | None = None) -> TempIDWindow:
    now = wall_now()
    return TempIDWindow(tempid or frames.random_tempid(), now, now + timedelta(seconds=899))


def _contact_log(lines: list[str], end: str = "\r\n", final_newline: bool = False) -> bytes:
    text = end.join(lines) + (end if final_newline else "")
    return text.encode("ascii")


# -- section 3.2: login ----------------------------------------------------------------


@case("3.2/login-ok", ("BT-1-1",),
      "0x01 | LOGIN | client | username (Text8), password (Text8)",
      (f"a LOGIN frame carrying exactly the typed username and password; after "
       f"LOGIN_REPLY OK the phone shows {WELCOME!r}",))
def login_ok(target: ClientTarget, ctx: CaseContext) -> None:
    with target.start(ctx) as phone:
        target.login(phone, ctx)


@case("3.2/unknown-user", ("BT-3.2-1",),
      "after UNKNOWN_USER it asks for the username again [BT-3.2-1]",
      (f"{INVALID_USERNAME!r}, then a new 'Username:' prompt; a second LOGIN on the same "
       "connection after typing again",))
def unknown_user(target: ClientTarget, ctx: CaseContext) -> None:
    with target.start(ctx) as phone:
        conn = target.login(phone, ctx, LoginStatus.UNKNOWN_USER)
        phone.expect(INVALID_USERNAME, repr(INVALID_USERNAME))
        target.login(phone, ctx)
        if phone.conn is not conn:
            raise CaseFailed("the phone opened a new connection")


@case("3.2/wrong-password", ("BT-3.2-2",),
      "after WRONG_PASSWORD it asks for the password again [BT-3.2-2]",
      (f"{INVALID_PASSWORD!r}, then a new 'Password:' prompt, and a second LOGIN with the "
       "same username on the same connection",))
def wrong_password(target: ClientTarget, ctx: CaseContext) -> None:
    with target.start(ctx) as phone:
        conn = target.login(phone, ctx, LoginStatus.WRONG_PASSWORD)
        phone.expect(INVALID_PASSWORD, repr(INVALID_PASSWORD))
        phone.expect("Password:", "a new 'Password:' prompt")
        phone.type(target.password)
        request = conn.expect(ctx, "LOGIN")
        if not (isinstance(request, LoginRequest) and request.username == target.user):
            raise CaseFailed(f"after the new password the phone sent {describe(request)}")


def _blocked(target: ClientTarget, ctx: CaseContext, status: LoginStatus, text: str) -> None:
    with target.start(ctx) as phone:
        conn = target.login(phone, ctx, status)
        phone.expect(text, repr(text))
        _phone_closes(phone, conn, ctx, f"after LOGIN_REPLY {status.name}")


@case("3.2/blocked-now", ("BT-3.2-3",),
      "after BLOCKED_NOW or BLOCKED it tells the user and closes the connection itself "
      "[BT-3.2-3]",
      (f"{BLOCKED_NOW!r}, then the phone closes the connection (FIN or RST) within the "
       "timeout",))
def blocked_now(target: ClientTarget, ctx: CaseContext) -> None:
    _blocked(target, ctx, LoginStatus.BLOCKED_NOW, BLOCKED_NOW)


@case("3.2/blocked", ("BT-3.2-3",),
      "after BLOCKED_NOW or BLOCKED it tells the user and closes the connection itself "
      "[BT-3.2-3]",
      (f"{BLOCKED!r}, then the phone closes the connection (FIN or RST) within the timeout",))
def blocked(target: ClientTarget, ctx: CaseContext) -> None:
    _blocked(target, ctx, LoginStatus.BLOCKED, BLOCKED)


def _treated_as_malformed(phone: PhoneSession, conn: Conn, ctx: CaseContext, what: str) -> None:
    _phone_closes(phone, conn, ctx, f"after {what}")
    status = phone.exit_status(ctx.timeout)
    if status != 1:
        raise CaseFailed(f"after {what} the phone "
                         + ("still ran" if status is None else f"exited with status {status}")
                         + ", not with status 1")
    if "Traceback" in phone.recent(2000):
        raise CaseFailed(f"after {what} the phone showed a traceback")


@case("3.2/unknown-status", ("BT-3.2-4",),
      "A phone that receives a status not in this table treats the frame as malformed: it "
      "says so in one line and closes the connection, exiting with status 1 [BT-3.2-4].",
      ("after LOGIN_REPLY status 9, the phone closes the connection and exits with status 1, "
       "showing no traceback",))
def unknown_status(target: ClientTarget, ctx: CaseContext) -> None:
    with target.start(ctx) as phone:
        phone.expect("Username:", "the 'Username:' prompt", wait=STARTUP + ctx.timeout)
        phone.type(target.user)
        target.password_prompt(phone, ctx)
        phone.type(target.password)
        conn = phone.accept()
        conn.expect(ctx, "LOGIN")
        conn.send(frames.frame(0x81, b"\x09"))
        _treated_as_malformed(phone, conn, ctx, "LOGIN_REPLY status 9")


@case("3.6/unknown-error-code", ("BT-3.6-2",),
      "A phone that receives an ERROR code not in this table treats the frame as malformed: "
      "it says so in one line and closes the connection, exiting with status 1 [BT-3.6-2].",
      ("after ERROR code 99 (answering Download_tempID), the phone closes the connection and "
       "exits with status 1, showing no traceback",))
def unknown_error_code(target: ClientTarget, ctx: CaseContext) -> None:
    with target.start(ctx) as phone:
        conn = target.login(phone, ctx)
        phone.type("Download_tempID")
        conn.expect(ctx, "TEMPID_REQUEST")
        conn.send(frames.frame(0xFF, b"\x63" + (4).to_bytes(2, "big") + b"what"))
        _treated_as_malformed(phone, conn, ctx, "ERROR code 99")


# -- sections 3.3 and 2: TempIDs and beacons --------------------------------------------


def _download(target: ClientTarget, phone: PhoneSession, conn: Conn,
              ctx: CaseContext) -> TempIDWindow:
    phone.type("Download_tempID")
    request = conn.expect(ctx, "TEMPID_REQUEST")
    if not isinstance(request, TempIDRequest):
        raise CaseFailed(f"Download_tempID sent {describe(request)}, not TEMPID_REQUEST")
    window = _window()
    conn.send(encode(TempIDReply(window)))
    phone.expect(f"TempID: {window.tempid}", f"'TempID: {window.tempid}'")
    return window


@case("3.3/download", ("BT-4-15",),
      ONE_REQUEST,
      ("Download_tempID sends TEMPID_REQUEST (01 02 00000000); the phone then shows "
       "'TempID: <the TempID>'",))
def download(target: ClientTarget, ctx: CaseContext) -> None:
    with target.start(ctx) as phone:
        conn = target.login(phone, ctx)
        _download(target, phone, conn, ctx)


@case("2/beacon-sent", ("BT-2-2",),
      "A phone sends the window of its current TempID and always the version byte 0x01 "
      "[BT-2-2]",
      ("'Beacon 127.0.0.1 <port>' sends one 59-byte datagram: the TempID, start and expiry "
       "of the last TEMPID_REPLY, then 0x01",))
def beacon_sent(target: ClientTarget, ctx: CaseContext) -> None:
    with target.start(ctx) as phone:
        conn = target.login(phone, ctx)
        window = _download(target, phone, conn, ctx)
        phone.type(f"Beacon 127.0.0.1 {phone.kit_udp_port}")
        data = phone.datagram(ctx.timeout)
        if data is None:
            raise CaseFailed("no datagram arrived")
        want = encode_beacon(window)
        if data != want:
            raise CaseFailed(f"the beacon was {data.hex(' ')}, not {want.hex(' ')}")


# -- section 3.4: uploads ----------------------------------------------------------------


def _upload(conn: Conn, ctx: CaseContext, chunks: int) -> list[UploadRequest]:
    got: list[UploadRequest] = []
    for index in range(chunks):
        request = conn.expect(ctx, f"UPLOAD chunk {index + 1}")
        if not isinstance(request, UploadRequest):
            raise CaseFailed(f"chunk {index + 1}: the phone sent {describe(request)}")
        got.append(request)
    return got


@case("3.4/upload-empty", ("BT-3.4-2",),
      "An empty log is one empty final chunk (count 0, final 1), answered UPLOAD_REPLY 0 "
      "[BT-3.4-2].",
      ("with no contact log, Upload_contact_log sends one UPLOAD 01 03 00000003 01 0000",))
def upload_empty(target: ClientTarget, ctx: CaseContext) -> None:
    with target.start(ctx) as phone:
        conn = target.login(phone, ctx)
        phone.type("Upload_contact_log")
        (chunk,) = _upload(conn, ctx, 1)
        if chunk.entries or not chunk.final:
            raise CaseFailed(f"the chunk had {len(chunk.entries)} entries, final={chunk.final}")
        conn.send(encode(UploadReply(0)))


_LOG_LINES = [
    "12345678901234567890 13/05/2020 17:45:06 13/05/2020 18:00:05",
    "",
    "12345678901234567893 14/05/2020 17:54:06 14/05/2020 18:09:05",
    "00000000000000000007 14/05/2020 18:00:00 14/05/2020 18:14:59",
]


@case("3.4/upload-entries", ("BT-3.4-1", "BT-5-1"),
      ("a phone sends its entries in log order, and a log of up to 1024 entries is one chunk "
       "[BT-3.4-1]",
       "readers accept LF or CRLF line ends and a last line with or without a line end, and "
       "skip blank lines [BT-5-1]"),
      ("a contact log of 3 entries (CRLF, a blank line, no final line end) already in the "
       "phone's folder is uploaded as one final chunk holding the 3 entries in file order",))
def upload_entries(target: ClientTarget, ctx: CaseContext) -> None:
    files = {f"{target.user}_contactlog.txt": _contact_log(_LOG_LINES)}
    with target.start(ctx, files) as phone:
        conn = target.login(phone, ctx)
        phone.type("Upload_contact_log")
        (chunk,) = _upload(conn, ctx, 1)
        sent = [" ".join(entry.fields_text()) for entry in chunk.entries]
        want = [line for line in _LOG_LINES if line]
        if sent != want or not chunk.final:
            raise CaseFailed(f"the chunk (final={chunk.final}) held {sent}, not {want}")
        conn.send(encode(UploadReply(3)))


@case("3.4/upload-chunks", ("BT-3.4-1", "BT-4-15"),
      ("Every chunk but the last has final = 0; the last has final = 1; a phone sends its "
       "entries in log order, and a log of up to 1024 entries is one chunk [BT-3.4-1]",
       ONE_REQUEST),
      ("a 1025-entry contact log goes as two chunks sent back to back, before any reply: "
       "1024 entries with final = 0, then 1 entry with final = 1",))
def upload_chunks(target: ClientTarget, ctx: CaseContext) -> None:
    lines = [f"{index:020d} 14/05/2020 17:54:06 14/05/2020 18:09:05" for index in range(1025)]
    files = {f"{target.user}_contactlog.txt": _contact_log(lines, "\n", True)}
    with target.start(ctx, files) as phone:
        conn = target.login(phone, ctx)
        phone.type("Upload_contact_log")
        first, last = _upload(conn, ctx, 2)
        shape = [(len(first.entries), first.final), (len(last.entries), last.final)]
        if shape != [(1024, False), (1, True)]:
            raise CaseFailed(f"chunks (entries, final) were {shape}, not [(1024, False), "
                             "(1, True)]")
        tempids = [e.tempid for e in first.entries + last.entries]
        if tempids != [f"{index:020d}" for index in range(1025)]:
            raise CaseFailed("the entries were not sent in log order")
        conn.send(encode(UploadReply(1025)))


@case("4/one-request-at-a-time", ("BT-4-15",),
      ONE_REQUEST,
      ("Download_tempID typed twice: the second TEMPID_REQUEST comes only after the first "
       "TEMPID_REPLY (0.5 s of silence before it)",))
def one_request_at_a_time(target: ClientTarget, ctx: CaseContext) -> None:
    with target.start(ctx) as phone:
        conn = target.login(phone, ctx)
        phone.type("Download_tempID")
        phone.type("Download_tempID")
        conn.expect(ctx, "TEMPID_REQUEST")
        early = conn.silence(ctx, 0.5)
        if early is not None:
            raise CaseFailed(f"{early if isinstance(early, Closed) else describe(early)} "
                             "before the first reply")
        conn.send(encode(TempIDReply(_window())))
        second = conn.expect(ctx, "the second TEMPID_REQUEST")
        if not isinstance(second, TempIDRequest):
            raise CaseFailed(f"then {describe(second)}, not TEMPID_REQUEST")


@case("4/upload-too-large", ("BT-4-4",),
      "The phone reports the refusal and stays logged in too [BT-4-4].",
      ("after ERROR TOO_LARGE answering an upload, the phone stays connected: a typed "
       "Download_tempID then sends TEMPID_REQUEST",))
def upload_too_large(target: ClientTarget, ctx: CaseContext) -> None:
    files = {f"{target.user}_contactlog.txt": _contact_log(_LOG_LINES)}
    with target.start(ctx, files) as phone:
        conn = target.login(phone, ctx)
        phone.type("Upload_contact_log")
        _upload(conn, ctx, 1)
        conn.send(frames.frame(0xFF, b"\x04" + (15).to_bytes(2, "big") + b"upload too big."))
        phone.type("Download_tempID")
        request = conn.expect(ctx, "TEMPID_REQUEST")
        if not isinstance(request, TempIDRequest):
            raise CaseFailed(f"after the refusal, Download_tempID sent {describe(request)}")


# -- section 3.5 and 3: logout and a bad header ------------------------------------------


@case("3.5/logout", ("BT-3.5-1",),
      "The client closes the connection on receiving LOGOUT_REPLY [BT-3.5-1]",
      ("'logout' sends LOGOUT; after LOGOUT_REPLY the phone closes the connection (FIN or "
       "RST) within the timeout",))
def logout(target: ClientTarget, ctx: CaseContext) -> None:
    with target.start(ctx) as phone:
        conn = target.login(phone, ctx)
        phone.type("logout")
        request = conn.expect(ctx, "LOGOUT")
        if describe(request) != "LOGOUT":
            raise CaseFailed(f"'logout' sent {describe(request)}, not LOGOUT")
        conn.send(encode(LogoutReply()))
        _phone_closes(phone, conn, ctx, "after LOGOUT_REPLY")


@case("3/bad-header", ("BT-3-1",),
      "A receiver checks the header as soon as its 6 bytes have arrived: an unknown version "
      "or type, or a length above the limit, is an error before any of the body is read "
      "[BT-3-1]",
      ("a TEMPID_REPLY header announcing 4 GB, with no body: the phone closes the connection "
       "within the timeout",))
def bad_header(target: ClientTarget, ctx: CaseContext) -> None:
    with target.start(ctx) as phone:
        conn = target.login(phone, ctx)
        phone.type("Download_tempID")
        conn.expect(ctx, "TEMPID_REQUEST")
        conn.send(frames.header(0x82, 0xFFFFFFFF))
        _phone_closes(phone, conn, ctx, "after a header announcing 4 GB")


@case("3.6/beacon-version-text", ("BT-3.6-1",),
      "a beacon refused for its version byte is reported naming the version byte [BT-3.6-1]",
      ("after a 59-byte beacon with version byte 0x02, the phone shows a line that names the "
       "version, with no parser internals",),
      level="SHOULD")
def beacon_version_text(target: ClientTarget, ctx: CaseContext) -> None:
    with target.start(ctx) as phone:
        target.login(phone, ctx)
        now = wall_now()
        data = frames.beacon(frames.random_tempid(), now, now + timedelta(minutes=10), 0x02)
        ctx.log.sent("udp", data)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(data, ("127.0.0.1", phone.phone_udp_port))
        try:
            line = phone.expect(r"[^\r\n]*[Vv]ersion[^\r\n]*", "a line naming the version",
                                literal=False)
        except CaseFailed as exc:
            raise CaseNonStrict(exc.actual) from None
        if PARSER_INTERNALS.search(line):
            raise CaseNonStrict(f"the phone's line shows parser internals: {line!r}")
        ctx.notes.append(f"shown: {line.strip()!r}")


@case("notes/invalid-command", (),
      "[client] > whatsthedate / Error. Invalid command (the assignment's sample session)",
      (f"{INVALID_COMMAND!r}, and nothing sent to the server",))
def invalid_command(target: ClientTarget, ctx: CaseContext) -> None:
    with target.start(ctx) as phone:
        conn = target.login(phone, ctx)
        phone.type("whatsthedate")
        phone.expect(INVALID_COMMAND, repr(INVALID_COMMAND))
        sent = conn.silence(ctx, 0.3)
        if sent is not None:
            shown = sent if isinstance(sent, Closed) else describe(sent)
            raise CaseFailed(f"the phone sent {shown} for an invalid command")
