"""Finding a submission's programs and the command lines that start them.

The assignment fixes the file names (``server.py``/``client.py``,
``Server.java``/``Client.java``, ``server.c``/``client.c``) and the command
lines (``server server_port block_duration``, ``client server_IP server_port
client_udp_port``), so a folder is enough to know how to run it. A marker may
override either command with a template (``--server-cmd``/``--client-cmd``).
"""

import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bluetrace.conform.model import CaseSetupError

IGNORED = shutil.ignore_patterns(".git", "__pycache__", "*.pyc", ".venv", "venv", "node_modules")
LAYOUTS = (
    ("python", "server.py", "client.py"),
    ("java", "Server.java", "Client.java"),
    ("c", "server.c", "client.c"),
)
BUILD_SECONDS = 120.0


@dataclass(frozen=True)
class Submission:
    name: str
    """How reports name it: the folder's name (made unique by the caller)."""
    folder: Path
    """The folder the marker named; copied whole for each group of checks."""
    program_dir: str
    """Where server and client live, relative to ``folder`` ('.' at the top)."""
    language: str
    server: tuple[str, ...]
    """The server's command line: a template with {port} {block} {python}."""
    client: tuple[str, ...]
    """The client's: {host} {port} {udp} {python} {retention}."""


def _find(folder: Path) -> tuple[str, str] | None:
    """(language, program folder) of the first layout found at the top or up
    to two folders down; None when there is none."""
    for depth in range(3):
        pattern = "/".join(["*"] * depth)
        for language, server, client in LAYOUTS:
            hits = sorted(folder.glob(f"{pattern}/{server}" if pattern else server))
            hits = [h for h in hits if (h.parent / client).is_file()
                    and not any(part.startswith(".") for part in h.relative_to(folder).parts)]
            if hits:
                return language, str(hits[0].parent.relative_to(folder))
    return None


def _template(text: str) -> tuple[str, ...]:
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise CaseSetupError(f"cannot read the command {text!r}: {exc}") from None
    if not words:
        raise CaseSetupError("an empty command")
    return tuple(words)


def detect(folder: Path, name: str, server_cmd: str | None = None,
           client_cmd: str | None = None) -> Submission:
    if not folder.is_dir():
        raise CaseSetupError(f"{folder} is not a folder")
    found = _find(folder)
    if found is None and (server_cmd is None or client_cmd is None):
        raise CaseSetupError(
            f"{folder}: no server.py/client.py, Server.java/Client.java or server.c/client.c "
            "(up to two folders down); name the programs with --server-cmd and --client-cmd")
    language, program_dir = found or ("custom", ".")
    defaults = {
        "python": ("{python} server.py {port} {block}", "{python} client.py {host} {port} {udp}"),
        "java": ("java Server {port} {block}", "java Client {host} {port} {udp}"),
        "c": ("./server {port} {block}", "./client {host} {port} {udp}"),
        "custom": ("", ""),
    }[language]
    return Submission(
        name=name, folder=folder.resolve(), program_dir=program_dir,
        language=language if server_cmd is None and client_cmd is None else "custom",
        server=_template(server_cmd or defaults[0]),
        client=_template(client_cmd or defaults[1]),
    )


def fill(template: tuple[str, ...], **values: object) -> list[str]:
    """Each word of the template with its placeholders filled in (a word is
    never split, so paths with spaces stay whole)."""
    try:
        return [word.format(**values) for word in template]
    except (KeyError, IndexError, ValueError) as exc:
        raise CaseSetupError(f"a command template has an unknown placeholder: {exc}") from None


def copy_into(submission: Submission, destination: Path) -> Path:
    """A fresh copy of the submission (links followed); returns where its
    programs are in the copy."""
    shutil.copytree(submission.folder, destination, ignore=IGNORED, symlinks=False)
    return destination / submission.program_dir


def build(submission: Submission, into: Path) -> Submission:
    """Java and C are built once, in a copy; every group then copies the
    built folder. Python and custom commands need nothing."""
    if submission.language not in ("java", "c"):
        return submission
    programs = copy_into(submission, into)
    if submission.language == "java":
        if shutil.which("javac") is None:
            raise CaseSetupError(f"{submission.name}: javac is not installed")
        argv = ["javac", *sorted(p.name for p in programs.glob("*.java"))]
    elif (programs / "Makefile").is_file() or (programs / "makefile").is_file():
        argv = ["make"]
    else:
        compiler = shutil.which("cc") or shutil.which("gcc")
        if compiler is None:
            raise CaseSetupError(f"{submission.name}: no C compiler (cc)")
        argv = ["sh", "-c", f"{compiler} -o server server.c && {compiler} -o client client.c"]
    try:
        done = subprocess.run(argv, cwd=programs, capture_output=True, timeout=BUILD_SECONDS,  # noqa: S603
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CaseSetupError(f"{submission.name}: the build failed: {exc}") from None
    if done.returncode != 0:
        tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        raise CaseSetupError(f"{submission.name}: '{' '.join(argv)}' failed: {' | '.join(tail)}")
    return Submission(submission.name, into, submission.program_dir, submission.language,
                      submission.server, submission.client)
