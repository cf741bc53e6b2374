"""What the phone shows and reads: two terminals behind one interface.

On a real terminal, :class:`EditorTerminal` runs the line editor inside the
loop: output that arrives on its own is printed above the line being typed,
which is then redrawn; the password is never echoed; Ctrl-Z, Ctrl-C and
Ctrl-D mean what shells have taught users; the terminal's mode is restored
whatever the exit. With piped input, :class:`PlainTerminal` reads lines as
they come and writes plain text, so scripts and tests see exactly the
specification's texts.
"""

import contextlib
import errno
import os
import signal
import termios
from collections.abc import Callable
from typing import Any, Protocol, TextIO

from bluetrace.phone.commands import COMPLETIONS
from bluetrace.runtime.reactor import Reactor
from bluetrace.runtime.transports import LineReader
from bluetrace.term.console import Console
from bluetrace.term.lineedit import EndOfInput, Interrupted, LineEditor, Submitted, Suspend

READ_SIZE = 4096


class Terminal(Protocol):
    def start(
        self,
        reactor: Reactor,
        on_line: Callable[[str], None],
        on_eof: Callable[[], None],
        on_interrupt: Callable[[], None],
    ) -> None:
        """Begin reading what is typed; report lines, the end and Ctrl-C."""

    def show(self, text: str) -> None: ...

    def prompt(self, text: str, secret: bool) -> None: ...

    def flush(self) -> None: ...

    def hold_input(self, held: bool) -> None:
        """Stop (or go on) taking typed lines while the program has as many
        waiting as it keeps; what is typed meanwhile waits outside it."""

    def end_prompt(self) -> None:
        """The program is ending: no prompt is shown again, so the last
        lines are not followed by one that is drawn and then erased."""

    def restore(self) -> None:
        """At exit, whatever the exit: the terminal as it was found."""


class PlainTerminal:
    """Piped input and plain output. Output that arrives on its own while a
    prompt shows starts a fresh line; on a tty (a terminal the editor cannot
    drive) echo is off at the password prompt."""

    def __init__(self, out: TextIO, fd: int) -> None:
        self.out = out
        self.fd = fd
        self.is_tty = os.isatty(fd)
        self.prompt_showing = False
        self._saved: list[Any] | None = None
        self._reader: LineReader | None = None

    def start(
        self,
        reactor: Reactor,
        on_line: Callable[[str], None],
        on_eof: Callable[[], None],
        on_interrupt: Callable[[], None],
    ) -> None:
        def line(text: str) -> None:
            self._line_typed()
            on_line(text)

        def eof() -> None:
            self._line_typed()
            on_eof()

        self._reader = LineReader(reactor, self.fd, line, eof)

    def show(self, text: str) -> None:
        if self.prompt_showing:
            self.out.write("\n")  # output arriving on its own starts a fresh line
            self.prompt_showing = False
        self.out.write(text + "\n")

    def flush(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.out.flush()

    def hold_input(self, held: bool) -> None:
        """A pipe is not read meanwhile: its lines wait in the pipe."""
        if self._reader is not None:
            if held:
                self._reader.pause()
            else:
                self._reader.resume()

    def end_prompt(self) -> None:
        """Nothing to take back: output after a prompt starts a new line."""

    def prompt(self, text: str, secret: bool) -> None:
        self._echo(not secret)
        self.out.write(text)
        self.prompt_showing = True

    def _line_typed(self) -> None:
        if self._saved is not None or (not self.is_tty and self.prompt_showing):
            # The Enter was not echoed (a password, or a line from a pipe): end
            # the prompt's line, so what the line brings starts on its own,
            # whether it comes now or after a reply.
            self.out.write("\n")
        self.prompt_showing = False
        self._echo(True)

    def _echo(self, on: bool) -> None:
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
        """Echo back on, and end a prompt line so that the shell's prompt
        starts on a line of its own."""
        if self._reader is not None:
            self._reader.close()
        self._echo(True)
        if self.prompt_showing:
            with contextlib.suppress(OSError, ValueError):
                self.out.write("\n")
            self.prompt_showing = False
        self.flush()


class EditorTerminal:
    """A real terminal, driven by the line editor inside the loop."""

    def __init__(self, fd_in: int, fd_out: int) -> None:
        self.console = Console(fd_in, fd_out)
        self.editor = LineEditor(completions=COMPLETIONS, width=self.console.width())
        self.fd_in = fd_in
        self._reactor: Reactor | None = None
        self._pending: list[str] = []
        self._on_line: Callable[[str], None] = lambda text: None
        self._on_eof: Callable[[], None] = lambda: None
        self._on_interrupt: Callable[[], None] = lambda: None
        self._reading = False

    @staticmethod
    def usable(fd_in: int, fd_out: int) -> bool:
        return Console.is_usable(fd_in, fd_out)

    def start(
        self,
        reactor: Reactor,
        on_line: Callable[[str], None],
        on_eof: Callable[[], None],
        on_interrupt: Callable[[], None],
    ) -> None:
        self._reactor = reactor
        self._on_line, self._on_eof, self._on_interrupt = on_line, on_eof, on_interrupt
        self.console.enter()
        reactor.add_reader(self.fd_in, self._readable)
        self._reading = True
        reactor.add_signal_handler(signal.SIGWINCH, lambda: self.console.resized(self.editor))
        reactor.add_signal_handler(signal.SIGCONT, lambda: self.console.resume(self.editor))

    def _readable(self) -> None:
        try:
            data = os.read(self.fd_in, READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise
            data = b""  # the terminal hung up
        if not data:
            self._stop_reading()
            self._on_eof()
            return
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        events, out = self.editor.feed(data)
        self.console.write(out)
        for event in events:
            if isinstance(event, Submitted):
                self._on_line(event.text)
            elif isinstance(event, Interrupted):
                self._on_interrupt()
            elif isinstance(event, EndOfInput):
                self._on_eof()
            elif isinstance(event, Suspend):
                self.console.suspend(self.editor)

    def _stop_reading(self) -> None:
        if self._reading and self._reactor is not None:
            self._reactor.remove_reader(self.fd_in)
            self._reading = False

    def show(self, text: str) -> None:
        self._pending.append(text)

    def hold_input(self, held: bool) -> None:
        """Nothing to do: keys typed while no prompt shows are kept by the
        editor (up to its MAX_TYPEAHEAD), and Ctrl-C must always be read."""

    def flush(self) -> None:
        """Lines shown in one go are printed above the prompt in one redraw."""
        if self._pending:
            text, self._pending = "\n".join(self._pending), []
            self.console.write(self.editor.print_above(text))

    def end_prompt(self) -> None:
        self.console.write(self.editor.withdraw())

    def prompt(self, text: str, secret: bool) -> None:
        self.flush()
        self.console.write(self.editor.set_prompt(text, secret=secret))
        if self.editor.pending_input and self._reactor is not None:
            self._reactor.call_soon(lambda: self._feed(b""))

    def restore(self) -> None:
        self.flush()
        self._stop_reading()
        with contextlib.suppress(OSError):
            self.console.write(self.editor.clear_line())
        self.console.restore()
