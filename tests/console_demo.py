"""A tiny host for Console + LineEditor, driven through a pseudo-terminal by
tests/test_console_pty.py.

One selectors loop: the terminal, a FIFO (each byte written to it prints a
line "above" the input, like a beacon arriving) and signals through a
wake-up socket (SIGWINCH, SIGCONT, SIGTERM). It asks ``Username:`` then a
secret ``Password:``, then reads commands at ``> `` and answers each line with
``got: <text>``. ``quit`` exits 0, ``boom`` raises inside the loop.
"""

import argparse
import contextlib
import os
import selectors
import signal
import socket
import sys
import time

from bluetrace.term.console import Console
from bluetrace.term.lineedit import EndOfInput, Interrupted, LineEditor, Submitted, Suspend

COMPLETIONS = ("Download_tempID", "Upload_contact_log", "Beacon", "logout", "help")


class Demo:
    def __init__(self, console: Console, editor: LineEditor) -> None:
        self.console = console
        self.editor = editor
        self.prompts = [("Username: ", False), ("Password: ", True)]
        self.status: int | None = None
        self.arrivals = 0
        self.stop = signal.SIGSTOP if os.environ.get("DEMO_STOP") == "STOP" else signal.SIGTSTP

    def prompt(self) -> None:
        text, secret = self.prompts[0] if self.prompts else ("> ", False)
        self.console.write(self.editor.set_prompt(text, secret=secret))

    def show(self, text: str) -> None:
        self.console.write(self.editor.print_above(text))

    def typed(self, data: bytes) -> None:
        events, out = self.editor.feed(data)
        self.console.write(out)
        for event in events:
            self.event(event)
            if self.status is not None:
                return

    def event(self, event: object) -> None:
        if isinstance(event, Submitted):
            if self.prompts:
                _, secret = self.prompts.pop(0)
                shown = f"password of {len(event.text)} characters" if secret else event.text
                self.show(f"got: {shown}")
            elif event.text == "quit":
                self.status = 0
                return
            elif event.text == "boom":
                raise RuntimeError("boom")
            else:
                self.show(f"got: {event.text}")
            self.prompt()
        elif isinstance(event, Interrupted):
            self.show("interrupted")
            self.status = 130
        elif isinstance(event, EndOfInput):
            self.show("end of input")
            self.status = 0
        elif isinstance(event, Suspend):
            self.console.suspend(self.editor, self.stop)

    def arrival(self) -> None:
        self.arrivals += 1
        self.show(f"async line {self.arrivals}\nsecond line {self.arrivals}")
        self.prompt()  # a host re-prompting after output must not lose the typed text


def run(args: argparse.Namespace) -> int:
    if not Console.is_usable(0, 1):
        print("console_demo: stdin is not a terminal", file=sys.stderr)
        return 2
    selector = selectors.DefaultSelector()
    wake_r, wake_w = socket.socketpair()
    wake_r.setblocking(False)
    wake_w.setblocking(False)
    signal.set_wakeup_fd(wake_w.fileno())
    for signum in (signal.SIGWINCH, signal.SIGTERM, signal.SIGCONT):
        signal.signal(signum, lambda *_: None)
    fifo = os.open(args.fifo, os.O_RDWR | os.O_NONBLOCK) if args.fifo else None
    try:
        with Console(0, 1) as console:
            editor = LineEditor(completions=COMPLETIONS, width=console.width())
            demo = Demo(console, editor)
            selector.register(0, selectors.EVENT_READ, "tty")
            selector.register(wake_r, selectors.EVENT_READ, "signal")
            if fifo is not None:
                selector.register(fifo, selectors.EVENT_READ, "fifo")
            demo.prompt()
            deadline = time.monotonic() + args.lifetime
            while demo.status is None and time.monotonic() < deadline:
                for key, _ in selector.select(deadline - time.monotonic()):
                    if key.data == "tty":
                        try:
                            data = os.read(0, 4096)
                        except OSError:
                            data = b""
                        if not data:
                            demo.status = 0
                            break
                        demo.typed(data)
                    elif key.data == "fifo":
                        assert fifo is not None
                        for _ in os.read(fifo, 64):
                            demo.arrival()
                    else:
                        for number in wake_r.recv(64):
                            if number == signal.SIGTERM:
                                demo.status = 143
                            elif number == signal.SIGWINCH:
                                console.resized(editor)
                            elif number == signal.SIGCONT:
                                console.resume(editor)
                    if demo.status is not None:
                        break
                while demo.status is None and editor.pending_input:
                    demo.typed(b"")
            console.write(editor.clear_line())
            return 124 if demo.status is None else demo.status
    finally:
        signal.set_wakeup_fd(-1)
        selector.close()
        wake_r.close()
        wake_w.close()
        if fifo is not None:
            os.close(fifo)


def main() -> int:
    parser = argparse.ArgumentParser(prog="console_demo")
    parser.add_argument("--fifo", help="FIFO: each byte written prints a line above the input")
    parser.add_argument("--lifetime", type=float, default=20.0, help="exit after S seconds")
    args = parser.parse_args()
    try:
        return run(args)
    except RuntimeError as exc:
        print(f"console_demo: {exc}", file=sys.stderr)
        return 1
    finally:
        with contextlib.suppress(OSError):
            sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
