"""The terminal under a ``LineEditor``: raw-ish mode, always restored, job
control and the width. It has no loop of its own; the host's selectors loop
reads the terminal and calls in.

Used only when stdin is a terminal (``Console.is_usable``); piped stdin keeps
plain line reading.

The mode is readline's: no canonical input and no echo (the editor echoes),
ISIG off so Ctrl-C and Ctrl-Z arrive as bytes (the editor turns them into
events), IEXTEN off so Ctrl-V and Ctrl-O arrive too, IXON off so Ctrl-S cannot
freeze the one loop that also serves the network, CR and LF passed as typed.
Output processing (OPOST, ONLCR) stays on, so a plain ``\\n`` printed by
anyone still starts a new line.

A host wires it to its loop like this (all output goes through the editor
while the console is in use; each ``print_above`` redraws the prompt, so a
burst of lines is best joined into one call)::

    console = Console(0, 1)
    editor = LineEditor(completions=COMPLETIONS, width=console.width())

    def typed(data: bytes) -> None:           # stdin readable: os.read(0, 4096)
        events, out = editor.feed(data)       # (b"" from os.read, or EIO: end of input)
        console.write(out)
        for event in events:
            if isinstance(event, Submitted):   shell_line(event.text)
            elif isinstance(event, Interrupted): interrupt()
            elif isinstance(event, EndOfInput):  end_of_input()
            elif isinstance(event, Suspend):     console.suspend(editor)

    show = lambda text: console.write(editor.print_above(text))
    def prompt(text: str, secret: bool) -> None:
        console.write(editor.set_prompt(text, secret=secret))
        if editor.pending_input:               # typed ahead while no prompt showed
            reactor.call_soon(lambda: typed(b""))

    reactor.add_signal_handler(signal.SIGWINCH, lambda: console.resized(editor))
    reactor.add_signal_handler(signal.SIGCONT, lambda: console.resume(editor))
    with console:
        reactor.run()
"""

import atexit
import contextlib
import os
import select
import signal
import termios
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from bluetrace.term.lineedit import DEFAULT_WIDTH, LineEditor

WRITE_TIMEOUT = 5.0
"""Seconds ``write`` waits for a terminal that takes no more output (one
stopped with Ctrl-S elsewhere, or a hung-up pty) before dropping the rest."""

_LFLAG, _IFLAG, _CC = 3, 0, 6


def raw_mode(mode: list[Any]) -> list[Any]:
    """``mode`` (from ``tcgetattr``) changed as described in the module text."""
    raw = [*mode[:_CC], list(mode[_CC])]
    raw[_IFLAG] &= ~(termios.ICRNL | termios.INLCR | termios.IGNCR | termios.IXON | termios.ISTRIP)
    raw[_LFLAG] &= ~(termios.ICANON | termios.ECHO | termios.ECHONL | termios.ISIG | termios.IEXTEN)
    raw[_CC][termios.VMIN] = 1
    raw[_CC][termios.VTIME] = 0
    return raw


class Console:
    """A terminal put in raw-ish mode for a ``LineEditor``.

    ``with Console(0, 1) as console:`` enters raw mode and always restores
    the saved mode when the block ends, by return or by exception. An
    ``atexit`` hook restores it too if the program leaves another way
    (``sys.exit`` from deep inside, an uncaught exception elsewhere).
    ``restore()`` may be called any number of times.
    """

    def __init__(self, fd_in: int, fd_out: int | None = None) -> None:
        self.fd_in = fd_in
        self.fd_out = fd_in if fd_out is None else fd_out
        self._saved: list[Any] | None = None
        self._raw = False

    @staticmethod
    def is_usable(
        fd: int, fd_out: int | None = None, environ: Mapping[str, str] | None = None
    ) -> bool:
        """True when ``fd`` (and ``fd_out``, if given) is a terminal whose mode
        can be read, and TERM is not ``dumb`` (Emacs shell buffers and the
        like, which cannot take cursor movement). The phone asks
        ``is_usable(0, 1)``: with stdout redirected to a file, cursor moves
        would only litter the file."""
        env = os.environ if environ is None else environ
        if env.get("TERM", "") == "dumb":
            return False
        try:
            if not os.isatty(fd) or (fd_out is not None and not os.isatty(fd_out)):
                return False
            termios.tcgetattr(fd)
        except (OSError, termios.error):
            return False
        return True

    @property
    def is_raw(self) -> bool:
        return self._raw

    def enter(self, *, again: bool = False) -> None:
        """Save the current mode (the first time) and switch to raw-ish mode;
        ``again`` sets the mode even when it should be set already (after a
        stop someone else caused, the shell may have changed it)."""
        if self._raw and not again:
            return
        if self._saved is None:
            self._saved = termios.tcgetattr(self.fd_in)
        termios.tcsetattr(self.fd_in, termios.TCSADRAIN, raw_mode(self._saved))
        if not self._raw:
            self._raw = True
            atexit.register(self.restore)

    def restore(self) -> None:
        """Put back the mode saved by ``enter``; harmless when not raw."""
        if not self._raw or self._saved is None:
            return
        self._raw = False
        atexit.unregister(self.restore)
        # With SIGTTOU blocked the mode is restored even from the background
        # (a job sent there with bg), instead of the exit stopping the process.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTTOU})
        try:
            with contextlib.suppress(OSError, termios.error):  # the terminal may be gone
                termios.tcsetattr(self.fd_in, termios.TCSADRAIN, self._saved)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)

    def __enter__(self) -> "Console":
        self.enter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.restore()

    def width(self) -> int:
        """Columns of the terminal, or 80 when it does not say."""
        try:
            columns = os.get_terminal_size(self.fd_out).columns
        except OSError:
            return DEFAULT_WIDTH
        return columns if columns > 1 else DEFAULT_WIDTH

    def write(self, data: bytes) -> None:
        """Write all of ``data`` to the terminal.

        A terminal normally takes everything at once. If its descriptor is
        non-blocking (it is shared with whoever opened the terminal) the
        rest is written as it becomes writable, for at most ``WRITE_TIMEOUT``
        seconds; after that, or if the terminal is gone, the rest is dropped:
        the screen is the user's, and losing a redraw beats stopping the loop.
        """
        view = memoryview(data)
        deadline = time.monotonic() + WRITE_TIMEOUT
        while view:
            try:
                view = view[os.write(self.fd_out, view) :]
            except BlockingIOError:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                select.select([], [self.fd_out], [], remaining)
            except OSError:
                return

    def suspend(self, editor: LineEditor | None = None, stop: int = signal.SIGTSTP) -> None:
        """Ctrl-Z: clear the line, restore the mode, stop, and on continuing
        enter raw mode again and redraw.

        The stop signal goes to the whole process group, as the terminal's
        own Ctrl-Z would, so a wrapper such as ``make`` stops too and the
        shell gets its prompt back. SIGTSTP is sent with its default action;
        in an orphaned process group (no shell to continue it) the kernel
        discards it, and this returns at once and redraws. ``stop=SIGSTOP``
        stops this process alone, whatever its group.
        """
        if editor is not None:
            self.write(editor.clear_line())
        self.restore()
        if stop == signal.SIGSTOP:
            os.kill(os.getpid(), signal.SIGSTOP)
        else:
            previous = signal.signal(stop, signal.SIG_DFL)
            try:
                os.killpg(os.getpgrp(), stop)
            finally:
                signal.signal(stop, previous)
        # Running again: the stop took effect before kill returned.
        self.resume(editor)

    def resume(self, editor: LineEditor | None = None) -> None:
        """After SIGCONT: raw mode again (the shell may have changed it) and a
        redraw at the width the terminal has now. After this console's own
        ``suspend`` the host's SIGCONT handler redraws a second time, in the
        same place: harmless."""
        self.enter(again=True)
        if editor is not None:
            editor.resize(self.width())
            self.write(editor.redraw())

    def resized(self, editor: LineEditor) -> None:
        """After SIGWINCH: tell the editor the new width and redraw."""
        editor.resize(self.width())
        self.write(editor.redraw())
