"""What the phone shows: prompts and lines, with the password never echoed.

Output that arrives on its own (a beacon) while a prompt is showing starts a
fresh line. On a real terminal echo is turned off at the password prompt and
always turned back on, whatever the exit.
"""

import contextlib
import os
import termios
from typing import Any, TextIO


class Terminal:
    def __init__(self, out: TextIO, fd: int) -> None:
        self.out = out
        self.fd = fd
        self.is_tty = os.isatty(fd)
        self.prompt_showing = False
        self._saved: list[Any] | None = None

    def show(self, text: str) -> None:
        if self.prompt_showing:
            self.out.write("\n")  # output arriving on its own starts a fresh line
            self.prompt_showing = False
        self.out.write(text + "\n")

    def flush(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.out.flush()

    def prompt(self, text: str, secret: bool) -> None:
        self.echo(not secret)
        self.out.write(text)
        self.prompt_showing = True

    def line_typed(self) -> None:
        if self._saved is not None:
            self.out.write("\n")  # the Enter was not echoed either
        self.prompt_showing = False
        self.echo(True)

    def echo(self, on: bool) -> None:
        if not self.is_tty:
            return
        if on and self._saved is not None:
            with contextlib.suppress(termios.error):
                termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            self._saved = None
        elif not on and self._saved is None:
            try:
                self._saved = termios.tcgetattr(self.fd)
                quiet = termios.tcgetattr(self.fd)
                quiet[3] &= ~termios.ECHO
                termios.tcsetattr(self.fd, termios.TCSADRAIN, quiet)
            except termios.error:
                self._saved = None

    def restore(self) -> None:
        """At exit: echo back on, and end a prompt line so the shell's prompt
        starts on a line of its own."""
        self.echo(True)
        if self.prompt_showing:
            with contextlib.suppress(OSError, ValueError):
                self.out.write("\n")
            self.prompt_showing = False
        self.flush()
