"""One group of checks: a fresh copy of the submission per program, its
server and clients on pseudo-terminals, and the steps a person would type.

Every wait is bounded; every program is ended when the group ends. A step a
check builds on that does not work (a client that cannot log in) makes the
check N/A: the check of its own (``login``) reports the failure once.
"""

import os
import re
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bluetrace.conform.assignment import meaning
from bluetrace.conform.assignment.procs import (
    MARKER,
    SOURCE_VARIABLE,
    Limits,
    Terminal,
    bound_sockets,
    free_port,
    tcp_sources,
    write_shim,
)
from bluetrace.conform.assignment.submission import Submission, copy_into, fill
from bluetrace.conform.model import CaseFailed, CaseNotApplicable, CaseSetupError

CREDENTIALS = (b"+61410666666 kara1234\r\n+61410777777 datha457\r\n+61410888888 comp3331\r\n"
               b"+61410999999 bada4568")
TEMPIDS = (b"+61410999999 12345678901234567890 13/05/2020 17:45:06 13/05/2020 18:00:05\r\n"
           b"+61410888888 12345678901234567891 13/05/2020 17:54:06 13/05/2020 18:09:05\r\n"
           b"+61410777777 12345678901234567892 14/05/2020 17:45:06 14/05/2020 18:00:05")
SAMPLE_LOG = (b"12345678901234567890 13/05/2020 17:45:06 13/05/2020 18:00:05\r\n"
              b"12345678901234567891 13/05/2020 17:54:06 13/05/2020 18:09:05")
"""The assignment's sample files, byte for byte: CRLF, no final line end."""

PASSWORDS = {"+61410666666": "kara1234", "+61410777777": "datha457",
             "+61410888888": "comp3331", "+61410999999": "bada4568"}
HOME_TZ = "UTC0"
"""Every program's time zone, so that the grader knows what 'now' they see."""
AHEAD_TZ = "UTC-1"
"""An hour ahead: a receiver started with it sees fresh beacons as expired."""

STEP_POLL = 0.05


class Failed(CaseFailed):
    """A FAIL with its evidence: terminal excerpts or file lines."""

    def __init__(self, actual: str, evidence: str = "") -> None:
        super().__init__(actual)
        self.evidence = evidence


class Inconclusive(Exception):  # noqa: N818 - named for what the check is
    """The grader could not judge (too slow for a setting): an ERROR, not a FAIL."""


@dataclass(frozen=True)
class Settings:
    """What every group of a run shares (sent to worker processes)."""

    python: str
    work: Path
    token: str
    block: float = 10.0
    retention: float = 180.0
    timeout: float = 5.0
    start_timeout: float = 15.0
    quick: bool = False
    limits: Limits = field(default_factory=Limits)
    source2: str | None = "127.0.0.2"


@dataclass
class Program:
    term: Terminal
    label: str
    folder: Path
    """The program's working folder (inside its own copy)."""
    copy_root: Path
    user: str = ""
    udp: int = 0

    def show(self, since: int = 0) -> str:
        """Evidence: what the terminal showed (read to the end first, so the
        last words of a program that just died are in)."""
        for _ in range(100):
            if not self.term.pump(0.05):
                break
        return f"{self.label} terminal:\n{meaning.excerpt(self.term.since(since))}"


class Group:
    def __init__(self, submission: Submission, settings: Settings, name: str) -> None:
        self.submission = submission
        self.settings = settings
        self.name = name
        self.root = settings.work / submission.name / name
        self.root.mkdir(parents=True, exist_ok=True)
        self.shim = write_shim(self.root / ".shim")
        self.programs: list[Program] = []
        self.server: Program | None = None
        self.port = 0
        self.state: dict[str, str] = {}
        self.marks: dict[str, float] = {}

    # ---- starting programs -------------------------------------------------

    def _copy(self, label: str) -> tuple[Path, Path]:
        root = self.root / label
        folder = copy_into(self.submission, root)
        for name, data in (("credentials.txt", CREDENTIALS), ("tempIDs.txt", TEMPIDS)):
            (folder / name).write_bytes(data)
        return root, folder

    def _env(self, tz: str, source: str | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("PYTHONSTARTUP", None)
        env.update({
            "TZ": tz, MARKER: self.settings.token, "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(self.shim),
            "TERM": "dumb", "COLUMNS": "200", "LINES": "50",
        })
        if source is not None:
            env[SOURCE_VARIABLE] = source
        return env

    def _start(self, argv: list[str], label: str, folder: Path, root: Path, *, tz: str,
               source: str | None = None) -> Program:
        try:
            term = Terminal(argv, folder, self._env(tz, source), self.settings.limits, label)
        except OSError as exc:
            raise CaseSetupError(f"cannot start {argv[0]}: {exc.strerror or exc}") from None
        program = Program(term, label, folder, root)
        self.programs.append(program)
        return program

    def start_server(self, credentials: bytes = CREDENTIALS) -> Program:
        """The server on a free port, once it listens (read from /proc) and
        only on loopback."""
        root, folder = self._copy("server")
        (folder / "credentials.txt").write_bytes(credentials)
        self.port = free_port()
        argv = fill(self.submission.server, port=self.port, block=_num(self.settings.block),
                    python=self.settings.python)
        server = self._start(argv, "server", folder, root, tz=HOME_TZ)
        self.server = server
        if not self.wait(lambda: self._listening(server) or not server.term.alive(),
                         self.settings.start_timeout):
            raise Failed(f"the server was not listening on port {self.port} within "
                         f"{self.settings.start_timeout:g} s", server.show())
        if not server.term.alive():
            raise Failed("the server exited at start", server.show())
        self.verify(server)
        return server

    def _listening(self, program: Program) -> bool:
        return any(e.protocol == "tcp" and e.port == self.port
                   for e in bound_sockets(program.term.pid))

    def verify(self, program: Program) -> None:
        """Refuse to go on if the program can be reached from off this machine."""
        exposed = [e for e in bound_sockets(program.term.pid) if not e.loopback]
        if exposed:
            program.term.end()
            raise CaseSetupError(
                f"{self.submission.name}: refusing to go on: the {program.label} listens on "
                f"{', '.join(map(str, exposed))}, not only on loopback")

    def start_client(self, label: str, user: str, tz: str = HOME_TZ,
                     source: str | None = None,
                     before: Callable[[Path], None] | None = None) -> Program:
        root, folder = self._copy(label)
        if before is not None:
            before(folder)
        udp = free_port(socket.SOCK_DGRAM)
        argv = fill(self.submission.client, host="127.0.0.1", port=self.port, udp=udp,
                    python=self.settings.python, retention=_num(self.settings.retention))
        client = self._start(argv, label, folder, root, tz=tz, source=source)
        client.user, client.udp = user, udp
        return client

    def login(self, label: str, user: str, password: str | None = None,
              tz: str = HOME_TZ, source: str | None = None) -> Program:
        """A client logged in, or N/A: the ``login`` check grades logging in."""
        client = self.start_client(label, user, tz, source)
        status = self.sign_in(client, user, password or PASSWORDS[user])
        if status != "welcome":
            raise CaseNotApplicable(
                f"client {user} could not log in ({status}); see assignment/login")
        self.verify(client)
        return client

    # ---- typing and reading -----------------------------------------------

    def wait(self, condition: Callable[[], bool], seconds: float) -> bool:
        """Poll ``condition`` for at most ``seconds``, reading every terminal
        meanwhile (a program whose terminal is not read may block)."""
        end = time.monotonic() + seconds
        while True:
            for program in self.programs:
                while program.term.pump(0):
                    pass
            if condition():
                return True
            left = end - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(STEP_POLL, left))

    def expect(self, program: Program, pattern: re.Pattern[str], since: int,
               seconds: float | None = None) -> re.Match[str] | None:
        """The first match of ``pattern`` in what ``program`` printed after
        ``since``, or None once it exits or ``seconds`` pass."""
        found: list[re.Match[str]] = []

        def seen() -> bool:
            match = pattern.search(program.term.since(since))
            if match is not None:
                found.append(match)
                return True
            return not program.term.alive() and not program.term.pump(0.05)

        self.wait(seen, self.settings.timeout if seconds is None else seconds)
        return found[0] if found else None

    def settle(self, program: Program, quiet: float = 0.4, most: float = 3.0) -> None:
        """Wait until ``program`` has printed nothing for ``quiet`` seconds."""
        last = [len(program.term.text), time.monotonic()]

        def still() -> bool:
            if len(program.term.text) != last[0]:
                last[0], last[1] = len(program.term.text), time.monotonic()
            return time.monotonic() - last[1] >= quiet

        self.wait(still, most)

    def sign_in(self, client: Program, user: str, password: str) -> str:
        """Type the username and password as a person would (each after its
        prompt); 'welcome', 'blocked', 'refused', 'unknown', 'exited' or
        'no answer'."""
        self.expect(client, meaning.USER_PROMPT, client.term.typed_at,
                    self.settings.start_timeout)
        self.settle(client, 0.2, 1.0)
        client.term.type(user)
        typed = client.term.typed_at
        answer = re.compile(f"{meaning.PASSWORD_PROMPT.pattern}|{meaning.BLOCKED.pattern}|"
                            f"{meaning.REFUSED.pattern}|{meaning.NO_SUCH_USER.pattern}",
                            re.IGNORECASE)
        match = self.expect(client, answer, typed)
        if match is not None and meaning.BLOCKED.search(match.group(0)):
            return "blocked"
        if match is not None and not meaning.PASSWORD_PROMPT.search(match.group(0)):
            self.settle(client, 0.3, 1.5)
            return "unknown"
        if match is None and not client.term.alive():
            return "exited"
        self.settle(client, 0.2, 1.0)
        return self.password(client, password)

    def password(self, client: Program, password: str) -> str:
        """Type a password; what the client said about it."""
        typed = client.term.mark()
        client.term.type(password)
        verdict = re.compile(f"{meaning.BLOCKED.pattern}|{meaning.WELCOME.pattern}|"
                             f"{meaning.REFUSED.pattern}", re.IGNORECASE)
        match = self.expect(client, verdict, typed)
        if match is None:
            return "no answer" if client.term.alive() else "exited"
        self.settle(client, 0.3, 1.5)
        for program in self.programs:  # a client binds its UDP port by now
            if program.term.alive():
                self.verify(program)
        said = client.term.since(typed)
        if meaning.BLOCKED.search(said):
            return "blocked"
        if meaning.WELCOME.search(said):
            return "welcome"
        return "refused"

    def command(self, client: Program, line: str) -> int:
        """Type a command; the mark to read its answer from."""
        mark = client.term.mark()
        client.term.type(line)
        return mark

    def download(self, client: Program) -> str:
        """A fresh TempID through Download_tempID, or N/A."""
        mark = self.command(client, "Download_tempID")
        match = self.expect(client, meaning.TEMPID, mark)
        if match is None:
            raise CaseNotApplicable(f"{client.user} got no TempID; see "
                                    "assignment/download-tempid")
        self.settle(client, 0.2, 1.0)
        return match.group(0)

    def files_holding(self, program: Program, needle: str) -> list[Path]:
        """Files in the program's copy that hold ``needle``: how a contact
        log is found whatever its name."""
        found = []
        for path in _walk(program.copy_root):
            try:
                if path.stat().st_size <= 1 << 20 and needle.encode() in path.read_bytes():
                    found.append(path)
            except OSError:
                continue
        return found

    def traceback_in(self, program: Program, since: int = 0) -> str | None:
        match = meaning.TRACEBACK.search(program.term.since(since))
        return None if match is None else program.term.since(since)[match.start():][:600]

    def alive_or_fail(self, program: Program, what: str, since: int = 0) -> None:
        if not program.term.alive():
            raise Failed(f"the {program.label} exited {what}", program.show(since))
        crash = self.traceback_in(program, since)
        if crash is not None:
            raise Failed(f"the {program.label} printed a traceback {what}",
                         f"{program.label} terminal:\n{meaning.excerpt(crash)}")

    def free_udp(self) -> int:
        """A UDP port nobody listens on: where a beacon may go unheard."""
        return free_port(socket.SOCK_DGRAM)

    def source_of(self, client: Program) -> list[str]:
        return tcp_sources(client.term.pid, self.port)

    def close(self) -> None:
        for program in reversed(self.programs):
            program.term.end()


def _walk(root: Path) -> Iterator[Path]:
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "__pycache__"]
        for name in files:
            yield Path(folder, name)


def _num(value: float) -> str:
    return f"{value:g}" if value != int(value) else str(int(value))
