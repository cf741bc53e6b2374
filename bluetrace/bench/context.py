"""What every part of the bench is handed: sizes, a scratch folder, the
helper processes to end, and where its figures, ceilings and progress go."""

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bluetrace.bench.frames import account
from bluetrace.bench.processes import Children, ServerProcess, child_env
from bluetrace.bench.report import Figure, Report, number
from bluetrace.bench.sizes import Sizes

USER, PASSWORD = "+61410888888", "comp3331"
"""The account of the phone and of the large upload."""

OTHER_USER = "+61410999999 bada4568"
"""A second sample account, as in the sample credentials.txt."""

LOAD_USERS = 10_000
"""Generated accounts the load generator cycles through (see frames.account)."""


@dataclass
class Context:
    part: str
    step: str
    sizes: Sizes
    full: bool
    workdir: Path
    children: Children
    report: Report
    source: Path | None

    def progress(self, text: str) -> None:
        """One line on stderr: which part, how far, what it is doing now."""
        print(f"bench {self.step} {self.part}: {text}", file=sys.stderr, flush=True)

    def ceiling(self, text: str) -> None:
        """Say, in the report's legend, what this part's ceiling is."""
        self.report.ceilings[self.part] = text

    def add(self, figure: Figure) -> None:
        self.report.figures.append(figure)
        ceiling = "" if figure.ceiling is None else f" (ceiling {number(figure.ceiling)})"
        self.progress(f"{figure.name} = {number(figure.value)} {figure.unit}{ceiling}")

    def judge(self, target: str, met: bool) -> tuple[str, bool | None]:
        """A target and whether it was met; at quick sizes never judged."""
        return target, (met if self.full else None)

    def data_dir(self, name: str) -> Path:
        """A fresh server data folder with the bench's accounts."""
        folder = self.workdir / name
        folder.mkdir(parents=True, exist_ok=True)
        write_credentials(folder / "credentials.txt", LOAD_USERS)
        return folder

    def server(
        self, folder: Path, block: str = "60", *options: str, timeout: float = 120.0
    ) -> ServerProcess:
        """bluetrace's server on an OS-chosen port (with ``options``), ended with the run."""
        server = ServerProcess(folder, block, *options, timeout=timeout, source=self.source)
        self.children.servers.append(server)
        return server

    def program_env(self) -> dict[str, str]:
        """The environment for the phone (from --programs-from, if given)."""
        return child_env(self.source)

    def helper(
        self,
        module: str,
        *args: str,
        stdin: int | None = subprocess.DEVNULL,
        stdout: int | None = subprocess.PIPE,
    ) -> "subprocess.Popen[bytes]":
        """One of the bench's own helper programs (load, ceilings), ended with the run."""
        return self.children.start(["-m", module, *args], stdin=stdin, stdout=stdout)


def write_credentials(path: Path, generated: int) -> None:
    """USER, OTHER_USER and ``generated`` accounts from frames.account."""
    with path.open("w") as handle:
        handle.write(f"{USER} {PASSWORD}\n{OTHER_USER}\n")
        handle.writelines("{} {}\n".format(*account(i)) for i in range(generated))
