"""The checks of ``bluetrace-conform assignment``, each quoting the sentence
of the assignment it grades.

Checks run in groups; a group has one fresh server and its own copies of the
submission, and its checks run in order, building on each other: a check
whose prerequisite did not pass is N/A. Groups run side by side.
"""

import re
import time
from collections.abc import Callable
from pathlib import Path

from bluetrace.conform.assignment import meaning
from bluetrace.conform.assignment.session import (
    AHEAD_TZ,
    CREDENTIALS,
    PASSWORDS,
    SAMPLE_LOG,
    TEMPIDS,
    Failed,
    Group,
    Inconclusive,
    Program,
)
from bluetrace.conform.model import (
    CaseContext,
    CaseNotApplicable,
    CaseSkipped,
    Registry,
)

check: Registry[Group] = Registry("assignment")
CHECKS = check.cases

PREREQUISITES: dict[str, tuple[str, ...]] = {}
GROUPS: dict[str, list[str]] = {}
"""Group name -> check names, in the order they run."""
STARTS_ITSELF = frozenset({"session", "lf-credentials"})
"""Groups whose first check starts the server; the others start it first."""

A, B, C, D = "+61410888888", "+61410777777", "+61410666666", "+61410999999"
UNKNOWN = "+61400000000"


_MEMBERSHIP: dict[Callable[[Group, CaseContext], None], tuple[str, tuple[str, ...]]] = {}


def member(group: str, *needs: str) -> Callable[[Callable[[Group, CaseContext], None]],
                                               Callable[[Group, CaseContext], None]]:
    """Puts the check in a group, after the checks it builds on (``needs``)."""
    def record(run: Callable[[Group, CaseContext], None]) -> Callable[[Group, CaseContext], None]:
        _MEMBERSHIP[run] = (group, needs)
        return run

    return record


def _server(g: Group) -> Program:
    if g.server is None:
        raise CaseNotApplicable("the server is not running; see assignment/start")
    return g.server


def _client(g: Group, label: str) -> Program:
    for program in g.programs:
        if program.label == label:
            return program
    raise CaseNotApplicable(f"no client {label}: an earlier step did not run")


# ---- session: one server, three clients -----------------------------------

@check("start", ("server",),
       "python server.py server_port block_duration ... The server should be executed before "
       "any of the clients.",
       ("the server, started as the assignment says in a folder holding the sample "
        "credentials.txt and tempIDs.txt (CRLF, no final line end), listens on server_port "
        "and keeps running",))
@member("session")
def start(g: Group, ctx: CaseContext) -> None:
    server = g.start_server()
    g.wait(lambda: False, 0.5)
    g.alive_or_fail(server, "at start")


@check("login", ("authentication",),
       "the server should prompt the user to input the username and password and "
       "authenticate the user ... If the credentials are correct, the client is considered to "
       "be logged in and a welcome message is displayed.",
       ("the client asks for a username and a password and, given +61410888888 comp3331, "
        "shows a welcome",))
@member("session", "start")
def login(g: Group, ctx: CaseContext) -> None:
    client = g.start_client("client-a", A)
    status = g.sign_in(client, A, PASSWORDS[A])
    if status != "welcome":
        raise Failed(f"the login was answered '{status}', not with a welcome", client.show())
    g.verify(client)


@check("download-tempid", ("tempid",),
       "After authentication, the client should be able to download a TempID from the server "
       "and display it. (Section 8: the server shows 'user: <phone>' and 'TempID: <TempID>'.)",
       ("after Download_tempID the client shows a 20-digit TempID, and the server's terminal "
        "shows the same TempID and the user's phone number",))
@member("session", "login")
def download_tempid(g: Group, ctx: CaseContext) -> None:
    client, server = _client(g, "client-a"), _server(g)
    on_server = server.term.mark()
    mark = g.command(client, "Download_tempID")
    match = g.expect(client, meaning.TEMPID, mark)
    if match is None:
        raise Failed("the client showed no 20-digit TempID", client.show(mark))
    tempid = match.group(0)
    g.state["tempid-a"] = tempid
    if not g.wait(lambda: tempid in server.term.since(on_server), ctx.timeout):
        raise Failed(f"the server's terminal does not show the TempID {tempid}",
                     server.show(on_server))
    if A not in server.term.since(on_server):
        raise Failed(f"the server's terminal does not name the user {A}", server.show(on_server))


_RECORD = re.compile(r"(\S+)\s+(\d{20})\s+(\d\d/\d\d/\d{4}\s+\d\d:\d\d:\d\d)\s+"
                     r"(\d\d/\d\d/\d{4}\s+\d\d:\d\d:\d\d)")


@check("tempids-file", ("tempid", "files"),
       "the server uses a file (tempIDs.txt, which will be in the same directory as the server "
       "program) to associate the relationship between TempIDs and the static UserIDs.",
       ("tempIDs.txt (that exact name) beside the server holds the issued TempID on a line of "
        "its own, '<phone> <TempID> <start> <expiry>' as in the sample file",))
@member("session", "download-tempid")
def tempids_file(g: Group, ctx: CaseContext) -> None:
    server = _server(g)
    tempid = g.state["tempid-a"]
    path = server.folder / "tempIDs.txt"
    text = path.read_bytes().decode("utf-8", "replace") if path.is_file() else ""
    if tempid not in text:
        elsewhere = [str(p.relative_to(server.copy_root)) for p in g.files_holding(server, tempid)]
        raise Failed(f"tempIDs.txt does not hold the TempID {tempid}" +
                     (f"; it is in {', '.join(elsewhere)}" if elsewhere else ""),
                     f"tempIDs.txt:\n{meaning.excerpt(text)}")
    lines = [line.rstrip("\r") for line in text.split("\n")]
    holding = [line for line in lines if tempid in line]
    bad = [line for line in holding
           if (m := _RECORD.fullmatch(line.strip())) is None or m.group(2) != tempid]
    if bad:
        raise Failed("the TempID is not on a line of its own (a record glued onto another?)",
                     "tempIDs.txt lines holding it:\n" + "\n".join(bad[:3]))
    owners = [m.group(1) for line in holding if (m := _RECORD.fullmatch(line.strip()))]
    if A not in owners:
        raise Failed(f"the TempID's line does not name {A}", "\n".join(holding[:3]))


@check("invalid-command", ("commands",),
       "Any command that is not listed above should result in an error message being "
       "displayed to the user.",
       ("after 'whatsthedate' the client shows an error (error, invalid, unknown, not "
        "recognised ...) and keeps running",))
@member("session", "login")
def invalid_command(g: Group, ctx: CaseContext) -> None:
    client = _client(g, "client-a")
    mark = g.command(client, "whatsthedate")
    if g.expect(client, meaning.ERROR, mark) is None:
        raise Failed("no error message", client.show(mark))
    g.wait(lambda: False, 0.3)
    g.alive_or_fail(client, "after an invalid command", mark)


@check("three-clients", ("server",),
       "The server program will be run first followed by multiple instances of the client "
       "program ... Once your server can support multiple clients",
       ("with one client logged in, two more log in, and the last one downloads a TempID",))
@member("session", "login")
def three_clients(g: Group, ctx: CaseContext) -> None:
    for label, user in (("client-b", B), ("client-c", C)):
        client = g.start_client(label, user)
        status = g.sign_in(client, user, PASSWORDS[user])
        if status != "welcome":
            raise Failed(f"{user} logging in while others are: '{status}'", client.show())
    client = _client(g, "client-c")
    mark = g.command(client, "Download_tempID")
    if g.expect(client, meaning.TEMPID, mark) is None:
        raise Failed("the third client got no TempID", client.show(mark))


@check("empty-upload", ("upload",),
       "The client should be able to upload the contact logs to the server after "
       "authentication.",
       ("a client that has received no beacon types Upload_contact_log: neither it nor the "
        "server crashes, and the client still answers Download_tempID",))
@member("session", "three-clients")
def empty_upload(g: Group, ctx: CaseContext) -> None:
    client, server = _client(g, "client-b"), _server(g)
    on_server = server.term.mark()
    mark = g.command(client, "Upload_contact_log")
    g.settle(client, 0.5, ctx.timeout)
    g.alive_or_fail(client, "after uploading an empty contact log", mark)
    g.alive_or_fail(server, "after an empty upload", on_server)
    again = g.command(client, "Download_tempID")
    if g.expect(client, meaning.TEMPID, again) is None:
        raise Failed("after the empty upload the client no longer answers Download_tempID",
                     client.show(mark))


@check("unknown-user", ("authentication",),
       "The valid username and password combinations will be stored in a file called "
       "credentials.txt ... On entering invalid credentials, the user is prompted to retry.",
       ("a username not in credentials.txt is refused with a sensible answer (invalid, "
        "unknown, not found, try again, or a new prompt); the server keeps running and "
        "serving the clients already logged in",))
@member("session", "login")
def unknown_user(g: Group, ctx: CaseContext) -> None:
    server = _server(g)
    on_server = server.term.mark()
    client = g.start_client("client-unknown", UNKNOWN)
    start = client.term.mark()
    status = g.sign_in(client, UNKNOWN, "whatever1")
    said = client.term.since(start)
    if status == "welcome":
        raise Failed("an unknown user was let in", client.show(start))
    g.alive_or_fail(server, "after a login with an unknown username", on_server)
    crash = g.traceback_in(client, start)
    if crash is not None:
        raise Failed("the client crashed on an unknown username", client.show(start))
    prompts = len(meaning.USER_PROMPT.findall(said)) + len(meaning.PASSWORD_PROMPT.findall(said))
    if status not in ("refused", "blocked", "unknown") and not meaning.UNKNOWN_USER.search(said) \
            and prompts < 3:
        raise Failed(f"no sensible answer to an unknown username ({status})",
                     client.show(start))
    known = _client(g, "client-a")
    mark = g.command(known, "Download_tempID")
    if g.expect(known, meaning.TEMPID, mark) is None:
        raise Failed("afterwards a logged-in client no longer gets a TempID",
                     known.show(mark) + "\n" + server.show(on_server))


@check("logout", ("commands",),
       "logout: log out user A. (Section 8: the server shows '<phone> logout'.)",
       ("after 'logout' the client ends (or says it logged out) and the server's terminal "
        "shows the user's phone number and that it logged out",))
@member("session", "login")
def logout(g: Group, ctx: CaseContext) -> None:
    client, server = _client(g, "client-a"), _server(g)
    on_server = server.term.mark()
    mark = g.command(client, "logout")
    ended = g.wait(lambda: not client.term.alive(), ctx.timeout)
    shown = g.wait(lambda: meaning.near(server.term.since(on_server), A, "logout", 120)
                   or bool(meaning.LOGOUT.search(server.term.since(on_server))
                           and A in server.term.since(on_server)), 1.0)
    if not ended and not meaning.LOGOUT.search(client.term.since(mark)):
        side = "the server shows the logout, but " if shown else ""
        raise Failed(f"{side}the client neither ended nor said it logged out within "
                     f"{ctx.timeout:g} s: it hangs", client.show(mark))
    if not shown:
        raise Failed(f"the server's terminal does not show that {A} logged out",
                     server.show(on_server))


# ---- start-up with a credentials.txt that has LF line ends ------------------

@check("start-lf-credentials", ("server", "files"),
       "We may use a different file for testing so DO NOT hardcode this information in your "
       "program. You may assume that each username and password will be on a separate line",
       ("with credentials.txt rewritten with LF line ends and a final line end, the server "
        "starts and +61410999999 (the last line) logs in",))
@member("lf-credentials")
def start_lf_credentials(g: Group, ctx: CaseContext) -> None:
    lf = CREDENTIALS.replace(b"\r\n", b"\n") + b"\n"
    server = g.start_server(lf)
    g.wait(lambda: False, 0.5)
    g.alive_or_fail(server, "at start with LF line ends")
    client = g.start_client("client-d", D)
    status = g.sign_in(client, D, PASSWORDS[D])
    if status != "welcome":
        raise Failed(f"{D} (last line of credentials.txt) could not log in: '{status}'",
                     client.show() + "\n" + server.show())


# ---- blocking ----------------------------------------------------------------

@check("wrong-password-retry", ("blocking",),
       "On entering invalid credentials, the user is prompted to retry.",
       ("after a wrong password the client says so (invalid, incorrect, wrong, try again) "
        "and prompts again",))
@member("blocking")
def wrong_password_retry(g: Group, ctx: CaseContext) -> None:
    client = g.start_client("client-x1", D)
    status = g.sign_in(client, D, "wrong-1")
    if status != "refused":
        raise Failed(f"a wrong password was answered '{status}'", client.show())
    after = client.term.since(0)
    last_refusal = list(meaning.REFUSED.finditer(after))[-1]
    if not (meaning.PASSWORD_PROMPT.search(after[last_refusal.end():])
            or meaning.USER_PROMPT.search(after[last_refusal.end():])):
        g.wait(lambda: bool(meaning.PASSWORD_PROMPT.search(client.term.since(0)
                                                           [last_refusal.end():])), 1.0)
        if not meaning.PASSWORD_PROMPT.search(client.term.since(0)[last_refusal.end():]):
            raise Failed("no new prompt after the refusal", client.show())


def _in_time(g: Group) -> None:
    """A login that the grader could only try after the block had ended
    proves nothing: say so rather than fail the submission."""
    late = time.monotonic() - g.marks["blocked"]
    if late >= g.settings.block:
        raise Inconclusive(f"the grader needed {late:.1f} s to try again, longer than the "
                           f"{g.settings.block:g} s block: give a longer --block")


def _retype(g: Group, client: Program, user: str, password: str) -> str:
    """Another attempt in the same client: the username again if it asks."""
    tail = client.term.text[-80:]
    prompts = list(re.finditer(f"{meaning.PASSWORD_PROMPT.pattern}|user|name", tail,
                               re.IGNORECASE))
    if prompts and not meaning.PASSWORD_PROMPT.search(prompts[-1].group(0)):
        return g.sign_in(client, user, password)
    return g.password(client, password)


@check("block-after-3", ("blocking",),
       "After 3 consecutive failed attempts, the user is blocked for a duration of "
       "block_duration seconds ... and cannot login during this duration",
       ("the third wrong password is answered with a block message, and a new client from "
        "the same address with the right password is refused as blocked",))
@member("blocking", "wrong-password-retry")
def block_after_3(g: Group, ctx: CaseContext) -> None:
    client = _client(g, "client-x1")
    for attempt in (2, 3):
        status = _retype(g, client, D, f"wrong-{attempt}")
        if attempt == 2 and status != "refused":
            raise Failed(f"the second wrong password was answered '{status}'", client.show())
    g.marks["blocked"] = time.monotonic()
    if status != "blocked":
        raise Failed(f"the third wrong password was answered '{status}', not blocked",
                     client.show())
    if not g.wait(lambda: not client.term.alive(), 3.0):
        ctx.notes.append("the client did not shut down after the block message")
    again = g.start_client("client-x2", D)
    status = g.sign_in(again, D, PASSWORDS[D])
    _in_time(g)
    if status != "blocked":
        raise Failed(f"right password during the block: '{status}', not blocked", again.show())


@check("blocked-other-address", ("blocking",),
       "After 3 consecutive failed attempts, the user is blocked ... and cannot login during "
       "this duration (even from another IP address).",
       ("a client connecting from 127.0.0.2 with the right password during the block is "
        "refused as blocked",))
@member("blocking", "block-after-3")
def blocked_other_address(g: Group, ctx: CaseContext) -> None:
    source = g.settings.source2
    if source is None:
        raise CaseSkipped("this machine offers no second loopback address (127.0.0.2)")
    client = g.start_client("client-x3", D, source=source)
    seen: list[str] = []

    def connected() -> bool:
        seen.extend(g.source_of(client))
        return bool(seen) or not client.term.alive()

    g.wait(connected, 2.0)
    status = g.sign_in(client, D, PASSWORDS[D])
    seen += g.source_of(client)
    _in_time(g)
    if seen and source not in seen:
        raise CaseSkipped(f"the client connected from {', '.join(sorted(set(seen)))}, not "
                          f"{source} (only Python clients can be moved)")
    if not seen:
        ctx.notes.append("the client's source address was not observed")
    if status != "blocked":
        raise Failed(f"right password from {source} during the block: '{status}'",
                     client.show())


@check("unblock-after-duration", ("blocking",),
       "the user is blocked for a duration of block_duration seconds",
       ("once block_duration has passed since the block, the right password logs in",))
@member("blocking", "block-after-3")
def unblock_after_duration(g: Group, ctx: CaseContext) -> None:
    due = g.marks["blocked"] + g.settings.block + 1.0
    g.wait(lambda: time.monotonic() >= due, max(0.0, due - time.monotonic()) + 0.1)
    client = g.start_client("client-x4", D)
    status = g.sign_in(client, D, PASSWORDS[D])
    if status != "welcome":
        raise Failed(f"after block_duration the right password was answered '{status}'",
                     client.show())


@check("block-across-connections", ("blocking",),
       "After 3 consecutive failed attempts, the user is blocked ... (even from another IP "
       "address).",
       ("one wrong password in a client that is then closed, and two in a new client, block "
        "the user: the failures count per user, not per connection",))
@member("blocking", "wrong-password-retry")
def block_across_connections(g: Group, ctx: CaseContext) -> None:
    first = g.start_client("client-y1", B)
    status = g.sign_in(first, B, "wrong-1")
    if status != "refused":
        raise CaseNotApplicable(f"the first wrong password was answered '{status}'")
    first.term.end()
    second = g.start_client("client-y2", B)
    statuses = [g.sign_in(second, B, "wrong-2")]
    if statuses[0] == "refused":
        statuses.append(_retype(g, second, B, "wrong-3"))
    if "blocked" in statuses:
        return
    third = g.start_client("client-y3", B)
    status = g.sign_in(third, B, PASSWORDS[B])
    if status != "blocked":
        raise Failed(f"after 3 failures in two clients the right password was answered "
                     f"'{status}', not blocked", second.show() + "\n" + third.show())


# ---- P2P: beacons, the contact log, upload and contact log checking ----------

@check("beacon-before-download", ("beacon",),
       "Beacon <dest IP> <dest port>: send a beacon ... (what it does before Download_tempID "
       "is left open; a crash is a defect)",
       ("'Beacon' before any Download_tempID does not crash the client: it keeps running and "
        "then answers Download_tempID",))
@member("p2p")
def beacon_before_download(g: Group, ctx: CaseContext) -> None:
    client = g.login("client-q", C)
    mark = g.command(client, f"Beacon 127.0.0.1 {g.free_udp()}")
    g.settle(client, 0.5, ctx.timeout)
    g.alive_or_fail(client, "on Beacon before Download_tempID", mark)
    again = g.command(client, "Download_tempID")
    if g.expect(client, meaning.TEMPID, again) is None:
        raise Failed("after Beacon the client no longer answers Download_tempID",
                     client.show(mark))


@check("beacon-valid-stored", ("beacon",),
       "After receiving the packet/beacon, the central device will compare current timestamp "
       "with the start time and expiry time ... If the timing information is valid ... the "
       "central device will store the beacon information in a local file (_contactlog.txt)",
       ("after 'Beacon 127.0.0.1 <port>' in a client holding a fresh TempID, a file in the "
        "receiving client's folder gains that TempID",))
@member("p2p")
def beacon_valid_stored(g: Group, ctx: CaseContext) -> None:
    sender, receiver = g.login("client-p", A), g.login("client-r", B)
    tempid = g.download(sender)
    g.state["tempid-p"] = tempid
    heard = receiver.term.mark()
    mark = g.command(sender, f"Beacon 127.0.0.1 {receiver.udp}")
    found: list[str] = []

    def stored() -> bool:
        found.extend(str(p) for p in g.files_holding(receiver, tempid))
        return bool(found)

    if not g.wait(stored, ctx.timeout):
        raise Failed("no file in the receiver's folder gained the TempID",
                     sender.show(mark) + "\n" + receiver.show(heard))
    g.state["log"] = found[0]
    g.marks["received"] = time.monotonic()


_ZID_LOG = re.compile(r"z[0-9]{7}_contactlog\.txt")


@check("contact-log-name", ("beacon", "files"),
       "the central device will store the beacon information in a local file "
       "(<zID>_contactlog.txt)",
       ("the receiving client's contact log is <username>_contactlog.txt, or "
        "<zID>_contactlog.txt with the student's zID (z and 7 digits)",))
@member("p2p", "beacon-valid-stored")
def contact_log_name(g: Group, ctx: CaseContext) -> None:
    receiver = _client(g, "client-r")
    path = g.state["log"]
    want = f"{receiver.user}_contactlog.txt"
    name = path.rsplit("/", 1)[-1]
    if name != want and not _ZID_LOG.fullmatch(name):
        shown = path.removeprefix(str(receiver.copy_root) + "/")
        raise Failed(f"the contact log is {shown}, not {want} or <zID>_contactlog.txt",
                     f"found by content: {shown}")
    if name != want:
        ctx.notes.append(f"named after the student's zID: {name}")


@check("upload-received", ("upload",),
       "Once a user has been tested as a COVID-19 positive, he/she will upload his/her "
       "contact log to the reporting server.",
       ("after Upload_contact_log the server's terminal shows the uploaded entry's TempID",))
@member("p2p", "beacon-valid-stored")
def upload_received(g: Group, ctx: CaseContext) -> None:
    receiver, server = _client(g, "client-r"), _server(g)
    tempid = g.state["tempid-p"]
    on_server = server.term.mark()
    g.marks["upload"] = on_server
    mark = g.command(receiver, "Upload_contact_log")
    if not g.wait(lambda: tempid in meaning.without_tracebacks(server.term.since(on_server)),
                  ctx.timeout):
        crashed = " (it printed a traceback)" if g.traceback_in(server, on_server) else ""
        raise Failed(f"the server's terminal does not show the uploaded TempID {tempid}"
                     + crashed, server.show(on_server) + "\n" + receiver.show(mark))
    g.settle(server, 0.5, ctx.timeout)


@check("contact-check-maps", ("upload",),
       "the server will map the TempID to reveal the UserID and retrieve start time and "
       "expiry time ... you program will print out a list of phone numbers and encounter "
       "timestamps.",
       ("after the upload the server's terminal names the beacon sender's phone number "
        "with its TempID and a DD/MM/YYYY HH:MM:SS time",))
@member("p2p", "upload-received")
def contact_check_maps(g: Group, ctx: CaseContext) -> None:
    server = _server(g)
    tempid, since = g.state["tempid-p"], int(g.marks["upload"])

    def mapped() -> bool:
        text = meaning.without_tracebacks(server.term.since(since))
        return any(A in text[max(0, m.start() - 200): m.end() + 200]
                   and meaning.STAMP.search(text[max(0, m.start() - 200): m.end() + 200])
                   for m in re.finditer(tempid, text))

    if not g.wait(mapped, ctx.timeout):
        raise Failed(f"the server does not name {A} with its TempID {tempid} and a time",
                     server.show(since))


@check("client-after-upload", ("upload",),
       "When all tasks are done (e.g., TempID has been obtained or the contact log has been "
       "uploaded), a user should be able to logout from the server.",
       ("after the upload the client still answers: Download_tempID shows a TempID",))
@member("p2p", "upload-received")
def client_after_upload(g: Group, ctx: CaseContext) -> None:
    receiver = _client(g, "client-r")
    mark = g.command(receiver, "Download_tempID")
    if g.expect(receiver, meaning.TEMPID, mark) is None:
        raise Failed("the client no longer answers after the upload", receiver.show(mark))


@check("sample-mapping", ("upload",),
       "An example tempIDs.txt file is provided on the assignment page. (Example 2: a "
       "contact log holding the sample TempIDs maps them to the sample phone numbers.)",
       ("a client whose contact log holds the sample file's two entries uploads it; the "
        "server names +61410999999 with 12345678901234567890 and +61410888888 with "
        "12345678901234567891",))
@member("p2p")
def sample_mapping(g: Group, ctx: CaseContext) -> None:
    server = _server(g)
    log = g.state.get("log")
    name = f"{C}_contactlog.txt"
    if log is not None:
        receiver = _client(g, "client-r")
        name = log.removeprefix(str(receiver.folder) + "/").replace(receiver.user, C)

    def sample(folder: Path) -> None:
        """Put the sample entries in the log: before the client starts (a
        client may read a static log at start) and again after login if it
        emptied the file meanwhile."""
        path = folder / name
        old = path.read_bytes() if path.is_file() else b""
        if SAMPLE_LOG.split(b"\r\n")[0] in old:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(old + (b"\n" if old and not old.endswith(b"\n") else b"") + SAMPLE_LOG)

    client = g.start_client("client-e", C, before=sample)
    status = g.sign_in(client, C, PASSWORDS[C])
    if status != "welcome":
        raise CaseNotApplicable(f"client {C} could not log in ({status}); see assignment/login")
    sample(client.folder)
    on_server = server.term.mark()
    mark = g.command(client, "Upload_contact_log")
    pairs = (("12345678901234567890", D), ("12345678901234567891", A))

    def mapped() -> bool:
        text = meaning.without_tracebacks(server.term.since(on_server))
        return all(meaning.near(text, tempid, phone, 200) for tempid, phone in pairs)

    if not g.wait(mapped, ctx.timeout):
        wiped = TEMPIDS.split(b"\r\n")[0] not in (server.folder / "tempIDs.txt").read_bytes() \
            if (server.folder / "tempIDs.txt").is_file() else True
        raise Failed("the server does not map the sample TempIDs to their phone numbers" +
                     ("; tempIDs.txt no longer holds the sample lines" if wiped else ""),
                     server.show(on_server) + "\n" + client.show(mark))


@check("beacon-expired-refused", ("beacon",),
       "If the timing information is valid (i.e., current timestamp is between start time "
       "and expiry time), the central device will store the beacon information",
       ("a receiver whose clock reads an hour later (TZ) than the sender's TempID window "
        "shows the beacon arrived or is invalid, and stores nothing",))
@member("p2p", "beacon-valid-stored")
def beacon_expired_refused(g: Group, ctx: CaseContext) -> None:
    sender = _client(g, "client-p")
    tempid = g.state["tempid-p"]
    receiver = g.login("client-t", D, tz=AHEAD_TZ)
    heard = receiver.term.mark()
    mark = g.command(sender, f"Beacon 127.0.0.1 {receiver.udp}")
    sign = re.compile(f"{tempid}|{meaning.INVALID_BEACON.pattern}", re.IGNORECASE)
    shown = g.expect(receiver, sign, heard)
    g.wait(lambda: False, 1.0)
    stored = g.files_holding(receiver, tempid)
    if stored:
        raise Failed("the expired beacon was stored",
                     f"{stored[0].name} holds {tempid}\n" + receiver.show(heard))
    g.alive_or_fail(receiver, "on an expired beacon", heard)
    if shown is None:
        raise Failed("no sign that the beacon arrived (nothing shown, nothing stored)",
                     sender.show(mark) + "\n" + receiver.show(heard))


# ---- removal after 3 minutes --------------------------------------------------

def removal_window(retention: float) -> tuple[float, float]:
    """Seconds after receipt between which the entry must go: 170 to 200 s for
    the assignment's 3 minutes, scaled for another --retention."""
    return retention - max(retention / 18, 1.0), retention + max(retention / 9, 2.0)


@check("removal-3min", ("beacon", "files"),
       "the central device will store the beacon information in a local file "
       "(_contactlog.txt) for 3 minutes ... remove the outdated (i.e., older than 3 minutes) "
       "contact log automatically",
       ("the entry is gone from the contact log between 170 and 200 s after it was received "
        "(scaled with --retention), with no command typed meanwhile",))
@member("removal")
def removal_3min(g: Group, ctx: CaseContext) -> None:
    if g.settings.quick:
        raise CaseSkipped("--quick skips the 3-minute wait")
    sender, receiver = g.login("client-p", A), g.login("client-r", B)
    tempid = g.download(sender)
    g.state["tempid-p"] = tempid
    g.command(sender, f"Beacon 127.0.0.1 {receiver.udp}")
    if not g.wait(lambda: bool(g.files_holding(receiver, tempid)), ctx.timeout):
        raise CaseNotApplicable("the beacon was never stored; see assignment/beacon-valid-stored")
    received = time.monotonic()
    low, high = removal_window(g.settings.retention)
    ctx.deadline = max(ctx.deadline, received + high + ctx.timeout)
    gone = g.wait(lambda: not g.files_holding(receiver, tempid),
                  max(0.0, received + high - time.monotonic()))
    after = time.monotonic() - received
    if not gone:
        path = next(iter(g.files_holding(receiver, tempid)), None)
        raise Failed(f"the entry was still in the contact log {after:.0f} s after it was "
                     "received", f"{path.name if path else '?'}:\n"
                     + meaning.excerpt(path.read_text("utf-8", "replace") if path else ""))
    if after < low:
        raise Failed(f"the entry was gone {after:.1f} s after it was received, before "
                     f"{low:.0f} s", receiver.show())
    ctx.notes.append(f"gone {after:.1f} s after receipt")


@check("upload-after-removal", ("upload", "files"),
       "remove the outdated (i.e., older than 3 minutes) contact log automatically",
       ("after the removal, Upload_contact_log does not send the removed entry: the server "
        "does not show its TempID, and both programs keep running",))
@member("removal", "removal-3min")
def upload_after_removal(g: Group, ctx: CaseContext) -> None:
    receiver, server = _client(g, "client-r"), _server(g)
    tempid = g.state["tempid-p"]
    on_server = server.term.mark()
    mark = g.command(receiver, "Upload_contact_log")
    g.settle(server, 1.0, ctx.timeout)
    g.settle(receiver, 0.5, ctx.timeout)
    if tempid in meaning.without_tracebacks(server.term.since(on_server)):
        raise Failed("the server shows the removed entry's TempID", server.show(on_server))
    g.alive_or_fail(receiver, "on an upload after the removal", mark)
    g.alive_or_fail(server, "on an upload after the removal", on_server)


ORDER = [case.id.split("/", 1)[1] for case in CHECKS]
for _case in CHECKS:
    _group, _needs = _MEMBERSHIP[_case.run]
    GROUPS.setdefault(_group, []).append(_case.id.split("/", 1)[1])
    PREREQUISITES[_case.id.split("/", 1)[1]] = _needs


def group_of(name: str) -> str:
    return next(group for group, names in GROUPS.items() if name in names)
