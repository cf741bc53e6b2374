"""A terminal line editor with no I/O of its own: bytes typed go in, events and
bytes to write come out.

The phone runs one selectors loop, so it cannot hand stdin to GNU readline
(no callback interface in Python) or prompt_toolkit (asyncio). Keeping the
editor free of file descriptors and termios makes every key testable byte for
byte; ``bluetrace.term.console`` holds the terminal glue.

Keys follow readline's emacs mode:

=====================  ===========================================================
printable input        inserted at the cursor (UTF-8, also split across feeds)
Backspace, Ctrl-H      delete before the cursor
Delete (ESC [3~)       delete under the cursor
Left, Ctrl-B           one character left (Right, Ctrl-F: right)
Ctrl-Left, Alt-B       one word left (Ctrl-Right, Alt-F: right)
Home, Ctrl-A           start of line (End, Ctrl-E: end of line)
Ctrl-U / Ctrl-K        delete to the start / to the end of the line
Ctrl-W, Alt-Backspace  delete the word before the cursor (Alt-D: after it)
Ctrl-Y                 insert the text last deleted by Ctrl-U/K/W or Alt-D
Up, Ctrl-P             older history line (Down, Ctrl-N: newer; past the newest,
                       the line that was being typed)
Tab                    complete the command; a second Tab lists the candidates
Ctrl-L                 clear the screen and redraw
Enter (CR, LF, CRLF)   ``Submitted(text)``
Ctrl-C                 ``Interrupted()``; the typed text is dropped, ``^C`` shown
Ctrl-D                 ``EndOfInput()`` on an empty line, else delete under cursor
Ctrl-Z                 ``Suspend()``; the host stops the process (see console.py)
=====================  ===========================================================

Any other escape sequence is swallowed whole. A lone Escape followed by a
printable key is read as Alt plus that key (as readline does; there is no
timer here to tell the two apart). Turning bytes into these keys is
``bluetrace.term.keys``; this module decides what each key does.

The life of a line: ``set_prompt`` shows a prompt and makes the editor
*active*. Enter, Ctrl-C or Ctrl-D on an empty line end the line and make the
editor *inactive* until the next ``set_prompt``. While inactive, typed input is
kept (typeahead, not echoed: the next prompt may be a password prompt) and
replayed by the next ``feed`` after ``set_prompt``; Ctrl-C and Ctrl-Z act at once
even then, so a user can always interrupt a wait. Hence one ``feed`` returns at
most one ``Submitted`` or ``EndOfInput``; when ``pending_input`` is true after
``set_prompt``, the host calls ``feed(b"")`` to process what was typed ahead.
"""

import codecs
import unicodedata
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bluetrace.term.keys import UNBOUND, KeyDecoder, Typed

MAX_LINE = 4096
"""Characters in one line; further input is refused with a bell."""
MAX_TYPEAHEAD = 4096
"""Characters kept while no prompt is shown; further input is refused."""
DEFAULT_WIDTH = 80

BELL = "\x07"
CLEAR_TO_END = "\x1b[J"
CLEAR_ROW_END = "\x1b[K"
CLEAR_SCREEN = "\x1b[H\x1b[2J"


@dataclass(frozen=True, slots=True)
class Submitted:
    """Enter was pressed; ``text`` is the line, without the line ending."""

    text: str


@dataclass(frozen=True, slots=True)
class Interrupted:
    """Ctrl-C: what was typed is dropped."""


@dataclass(frozen=True, slots=True)
class EndOfInput:
    """Ctrl-D on an empty line: the user has nothing more to type."""


@dataclass(frozen=True, slots=True)
class Suspend:
    """Ctrl-Z: the host should suspend (``Console.suspend``), then redraw."""


EditorEvent = Submitted | Interrupted | EndOfInput | Suspend


def char_width(ch: str) -> int:
    """Terminal cells taken by one printable character: 0, 1 or 2."""
    if unicodedata.combining(ch):
        return 0
    if unicodedata.east_asian_width(ch) in ("W", "F"):
        return 2
    return 1


def _caret(ch: str) -> str:
    """A control character made visible: ``^[`` for ESC, ``^?`` for DEL."""
    code = ord(ch)
    if code < 0x20:
        return "^" + chr(code + 0x40)
    if code == 0x7F:
        return "^?"
    return "?"  # C1 controls


def sanitize_output(text: str) -> str:
    """Text from elsewhere (a server, a datagram) made harmless to print.

    Control characters other than tab and newline would move the cursor or
    start escape sequences the editor does not know about, so its idea of
    the screen would go wrong (or a peer could retitle the window).
    """
    if text.isprintable():
        return text
    return "".join(
        _caret(ch) if (ord(ch) < 0x20 and ch not in "\t\n") or 0x7F <= ord(ch) <= 0x9F else ch
        for ch in text
    )


def _sanitize_prompt(prompt: str) -> str:
    return "".join(ch if ch.isprintable() else _caret(ch) for ch in prompt)


def _up(rows: int) -> str:
    return f"\x1b[{rows}A" if rows > 0 else ""


def _move(src: tuple[int, int], dst: tuple[int, int]) -> str:
    """Relative moves only: the editor never knows its absolute screen row."""
    if src == dst:
        return ""
    rows = dst[0] - src[0]
    out = f"\x1b[{-rows}A" if rows < 0 else f"\x1b[{rows}B" if rows > 0 else ""
    out += "\r"
    if dst[1] > 0:
        out += f"\x1b[{dst[1]}C"
    return out


def _common_prefix(words: Sequence[str]) -> str:
    first, last = min(words), max(words)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    return first[:n]


def _is_word(ch: str) -> bool:
    return ch.isalnum()


def _ignore() -> None:
    """A key with no binding: swallowed whole, it only ends a Tab pair."""


class LineEditor:
    """One line of input at a time, drawn after a prompt; see the module text.

    Every method that changes the screen returns the bytes to write; the
    host writes them, in order, before any other output (other output goes
    through ``print_above``).
    """

    def __init__(
        self, *, completions: Sequence[str] = (), history_size: int = 500, width: int = 80
    ) -> None:
        self._completions = tuple(completions)
        self._history: deque[str] = deque(maxlen=max(0, history_size))
        self._width = width if width > 1 else DEFAULT_WIDTH
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="ignore")
        self._prompt: str | None = None
        self._secret = False
        self._buffer: list[str] = []
        self._cursor = 0
        self._cursor_row = 0  # screen row of the cursor, counted from the prompt's row
        self._typeahead: list[str] = []
        self._keys_in = KeyDecoder()
        self._killed = ""
        self._tab_again = False
        self._history_index = 0
        self._history_edits: dict[int, str] = {}
        self._events: list[EditorEvent] = []
        self._out: list[str] = []
        self._keys: dict[str, Callable[[], None]] = {
            "home": self._home,
            "end": self._end,
            "left": self._left,
            "right": self._right,
            "word_left": self._word_left,
            "word_right": self._word_right,
            "backspace": self._backspace,
            "delete": self._delete,
            "ctrl_d": self._ctrl_d,
            "kill_start": self._kill_start,
            "kill_end": self._kill_end,
            "kill_word_left": self._kill_word_left,
            "kill_word_right": self._kill_word_right,
            "yank": self._yank,
            "up": self._history_older,
            "down": self._history_newer,
            "tab": self._tab,
            "clear_screen": self._clear_screen,
            "enter": self._enter,
            "interrupt": self._interrupt,
            "suspend": self._suspend,
            UNBOUND: _ignore,
        }

    # -- state, read-only -----------------------------------------------------
    @property
    def text(self) -> str:
        """The line as typed so far."""
        return "".join(self._buffer)

    @property
    def cursor(self) -> int:
        """Cursor position, in characters from the start of the line."""
        return self._cursor

    @property
    def active(self) -> bool:
        """A prompt is shown and a line is being read."""
        return self._prompt is not None

    @property
    def pending_input(self) -> bool:
        """Typeahead is waiting: the host should call ``feed(b"")`` soon."""
        return self._prompt is not None and bool(self._typeahead)

    @property
    def history(self) -> tuple[str, ...]:
        return tuple(self._history)

    @property
    def width(self) -> int:
        return self._width

    # -- the host's calls -----------------------------------------------------
    def set_prompt(self, prompt: str, *, secret: bool = False) -> bytes:
        """Show ``prompt`` and start reading a new line.

        ``secret`` hides the line (no echo at all, no history). When the same
        prompt is already being read, the call changes nothing and returns
        no bytes: a host re-showing its prompt after asynchronous output
        must not wipe what the user has half typed.
        """
        prompt = _sanitize_prompt(prompt)
        if self._prompt == prompt and self._secret == secret:
            return b""
        out = self._clear() if self._prompt is not None else ""
        self._prompt = prompt
        self._secret = secret
        self._new_line()
        return (out + self._render()).encode()

    def feed(self, data: bytes) -> tuple[list[EditorEvent], bytes]:
        """Take bytes typed; return the events they made and bytes to write."""
        self._events = []
        self._out = []
        chars = self._decoder.decode(data)
        if self._typeahead and self._prompt is not None:
            chars = "".join(self._typeahead) + chars
            self._typeahead = []
        i, n = 0, len(chars)
        while i < n:
            ch = chars[i]
            if self._prompt is None:
                self._waiting_char(ch)
            elif self._keys_in.at_text and ch.isprintable():
                # A run of text (a paste) is inserted and drawn once, not per character.
                j = i + 1
                while j < n and chars[j].isprintable():
                    j += 1
                self._tab_again = False
                self._insert(chars[i:j])
                i = j
                continue
            else:
                self._active_char(ch)
            i += 1
        events, self._events = self._events, []
        out, self._out = "".join(self._out), []
        return events, out.encode()

    def print_above(self, text: str) -> bytes:
        """Output arriving on its own: the input line is cleared, ``text`` is
        printed as one or more lines (a final newline is optional), and the
        prompt, typed text and cursor are drawn again below it.

        Control characters in ``text`` other than tab and newline are shown
        as ``^X``.
        """
        lines = sanitize_output(text).split("\n")
        if len(lines) > 1 and lines[-1] == "":
            lines.pop()
        body = "\r\n".join(lines) + "\r\n"
        if self._prompt is None:
            return body.encode()
        out = self._clear() + body
        return (out + self._render()).encode()

    def redraw(self) -> bytes:
        """The prompt and line drawn again, e.g. after SIGCONT or a resize."""
        if self._prompt is None:
            return b""
        return self._render().encode()

    def withdraw(self) -> bytes:
        """Take the prompt away for good (the program is ending): erase it
        and the line from the screen and become inactive, so that what is
        printed next is not followed by a prompt that is never answered."""
        if self._prompt is None:
            return b""
        out = self._clear()
        self._prompt = None
        self._new_line()
        return out.encode()

    def clear_line(self) -> bytes:
        """Erase the prompt and line from the screen (before suspending or
        exiting); the editor keeps them and ``redraw`` shows them again."""
        if self._prompt is None:
            return b""
        return self._clear().encode()

    def resize(self, width: int) -> None:
        """A new terminal width (SIGWINCH). Call ``redraw`` afterwards.

        Terminals that reflow on resize (VTE, tmux, kitty, iTerm2, Windows
        Terminal) move the cursor to where the new width puts it, so the
        cursor's row is recomputed for the new width; on one that does not
        reflow (xterm) a line that wrapped may leave a stale row behind.
        """
        self._width = width if width > 1 else DEFAULT_WIDTH
        if self._prompt is not None:
            self._cursor_row = self._layout()[self._cursor_slot()][0]

    # -- input decoding -------------------------------------------------------
    def _waiting_char(self, ch: str) -> None:
        """No prompt shown: keep the key for the next one, unless it must act now."""
        if ch == "\x03":
            self._typeahead = []
            self._keys_in.forget_return()
            self._out.append("^C\r\n")
            self._events.append(Interrupted())
        elif ch == "\x1a":
            self._events.append(Suspend())
        elif len(self._typeahead) < MAX_TYPEAHEAD:
            self._typeahead.append(ch)
        else:
            self._out.append(BELL)

    def _active_char(self, ch: str) -> None:
        decoded = self._keys_in.decode(ch)
        if isinstance(decoded, Typed):
            self._tab_again = False
            self._insert(decoded.char)
        elif decoded is not None:
            self._key(decoded)

    def _key(self, name: str) -> None:
        if name != "tab":
            self._tab_again = False
        self._keys[name]()

    # -- editing --------------------------------------------------------------
    def _insert(self, text: str) -> None:
        room = MAX_LINE - len(self._buffer)
        if room <= 0:
            self._out.append(BELL)
            return
        refused = len(text) > room
        text = text[:room]
        at_end = self._cursor == len(self._buffer)
        self._buffer[self._cursor : self._cursor] = text
        self._cursor += len(text)
        self._echo_insert(text, at_end)
        if refused:
            self._out.append(BELL)

    def _echo_insert(self, text: str, at_end: bool) -> None:
        if self._secret:
            return
        if at_end and all(char_width(ch) > 0 for ch in text):
            # Typing at the end of the line, the common case: print just the text.
            end = self._layout()[-1]
            self._out.append(text)
            if end[1] == 0 and end[0] > 0:
                self._out.append(" \r" + CLEAR_ROW_END)
            self._cursor_row = end[0]
        else:
            self._out.append(self._render())

    def _changed(self) -> None:
        if not self._secret:
            self._out.append(self._render())

    def _moved(self, cursor: int) -> None:
        cursor = max(0, min(cursor, len(self._buffer)))
        if cursor == self._cursor:
            return
        if self._secret:
            self._cursor = cursor
            return
        layout = self._layout()
        src = layout[self._cursor_slot()]
        self._cursor = cursor
        dst = layout[self._cursor_slot()]
        self._out.append(_move(src, dst))
        self._cursor_row = dst[0]

    def _home(self) -> None:
        self._moved(0)

    def _end(self) -> None:
        self._moved(len(self._buffer))

    def _left(self) -> None:
        self._moved(self._cursor - 1)

    def _right(self) -> None:
        self._moved(self._cursor + 1)

    def _word_start(self) -> int:
        i = self._cursor
        while i > 0 and not _is_word(self._buffer[i - 1]):
            i -= 1
        while i > 0 and _is_word(self._buffer[i - 1]):
            i -= 1
        return i

    def _word_end(self) -> int:
        i, n = self._cursor, len(self._buffer)
        while i < n and not _is_word(self._buffer[i]):
            i += 1
        while i < n and _is_word(self._buffer[i]):
            i += 1
        return i

    def _word_left(self) -> None:
        self._moved(self._word_start())

    def _word_right(self) -> None:
        self._moved(self._word_end())

    def _backspace(self) -> None:
        if self._cursor > 0:
            del self._buffer[self._cursor - 1]
            self._cursor -= 1
            self._changed()

    def _delete(self) -> None:
        if self._cursor < len(self._buffer):
            del self._buffer[self._cursor]
            self._changed()

    def _kill(self, start: int, end: int) -> None:
        if start >= end:
            return
        if not self._secret:  # a password must not be yankable into a visible line
            self._killed = "".join(self._buffer[start:end])
        del self._buffer[start:end]
        self._cursor = start
        self._changed()

    def _kill_start(self) -> None:
        self._kill(0, self._cursor)

    def _kill_end(self) -> None:
        self._kill(self._cursor, len(self._buffer))

    def _kill_word_left(self) -> None:
        """Ctrl-W cuts back to white space, as the tty's WERASE and readline do."""
        i = self._cursor
        while i > 0 and self._buffer[i - 1].isspace():
            i -= 1
        while i > 0 and not self._buffer[i - 1].isspace():
            i -= 1
        self._kill(i, self._cursor)

    def _kill_word_right(self) -> None:
        self._kill(self._cursor, self._word_end())

    def _yank(self) -> None:
        if self._killed:
            self._insert(self._killed)

    def _ctrl_d(self) -> None:
        if self._buffer:
            self._delete()
        else:
            self._finish(EndOfInput(), "")

    def _enter(self) -> None:
        text = self.text
        if not self._secret and text.strip() and (not self._history or self._history[-1] != text):
            self._history.append(text)
        self._finish(Submitted(text), "")

    def _interrupt(self) -> None:
        self._finish(Interrupted(), "^C")

    def _suspend(self) -> None:
        self._events.append(Suspend())

    def _clear_screen(self) -> None:
        self._cursor_row = 0
        self._out.append(CLEAR_SCREEN + self._render())

    # -- history --------------------------------------------------------------
    def _history_older(self) -> None:
        self._history_go(-1)

    def _history_newer(self) -> None:
        self._history_go(+1)

    def _history_go(self, step: int) -> None:
        if self._secret:
            return
        target = self._history_index + step
        if not 0 <= target <= len(self._history):
            self._out.append(BELL)
            return
        self._history_edits[self._history_index] = self.text
        self._history_index = target
        line = self._history_edits.get(target)
        if line is None:
            line = self._history[target] if target < len(self._history) else ""
        self._buffer = list(line)
        self._cursor = len(self._buffer)
        self._out.append(self._render())

    # -- completion -----------------------------------------------------------
    def _tab(self) -> None:
        before = self.text[: self._cursor]
        stripped = before.lstrip()
        if self._secret or any(ch.isspace() for ch in stripped):
            self._out.append(BELL)  # only the command word completes
            return
        matches = [c for c in self._completions if c.startswith(stripped)]
        if not matches:  # a newcomer's "download" still finds Download_tempID
            matches = [c for c in self._completions if c.lower().startswith(stripped.lower())]
        if not matches:
            self._out.append(BELL)
            return
        lead = len(before) - len(stripped)
        if len(matches) == 1:
            after = self._buffer[self._cursor :]
            self._replace_word(lead, matches[0] + ("" if after[:1] == [" "] else " "))
            return
        common = _common_prefix(matches)
        if len(common) > len(stripped):
            self._replace_word(lead, common)
        elif self._tab_again:
            self._out.append(self._clear() + self._listing(matches) + self._render())
            return
        self._out.append(BELL)
        self._tab_again = True

    def _replace_word(self, start: int, word: str) -> None:
        new = self._buffer[:start] + list(word) + self._buffer[self._cursor :]
        if len(new) > MAX_LINE:
            self._out.append(BELL)
            return
        self._buffer = new
        self._cursor = start + len(word)
        self._out.append(self._render())

    def _listing(self, words: list[str]) -> str:
        column = max(len(w) for w in words) + 2
        per_row = max(1, self._width // column)
        rows = [words[i : i + per_row] for i in range(0, len(words), per_row)]
        return "".join(
            "".join(w.ljust(column) for w in row).rstrip() + "\r\n" for row in rows
        )

    # -- drawing --------------------------------------------------------------
    def _new_line(self) -> None:
        self._buffer = []
        self._cursor = 0
        self._tab_again = False
        self._history_index = len(self._history)
        self._history_edits = {}

    def _shown(self) -> str:
        return "" if self._secret else self.text

    def _layout(self) -> list[tuple[int, int]]:
        """(row, column) before each character of prompt + shown text, then the end.

        A character that does not fit on the row (a wide one in the last
        column) starts the next row, as terminals do; a row filled exactly
        puts the end at the next row's start (``_render`` makes the terminal
        agree, whether or not it defers the wrap).
        """
        width = self._width
        row = col = 0
        places: list[tuple[int, int]] = []
        for ch in (self._prompt or "") + self._shown():
            cells = char_width(ch)
            if cells and col + cells > width:
                row, col = row + 1, 0
            places.append((row, col))
            col += cells
            if col >= width:
                row, col = row + 1, 0
        places.append((row, col))
        return places

    def _cursor_slot(self) -> int:
        return len(self._prompt or "") + (0 if self._secret else self._cursor)

    def _render(self) -> str:
        """Draw prompt and line from the prompt's first row, then place the cursor."""
        prompt = self._prompt or ""
        layout = self._layout()
        end = layout[-1]
        out = _up(self._cursor_row) + "\r" + CLEAR_TO_END + prompt + self._shown()
        if end[1] == 0 and end[0] > 0:
            # The last row is full: a space and CR leave the cursor at the next
            # row's start, on terminals that defer the wrap and on those that don't.
            out += " \r" + CLEAR_ROW_END
        cursor = layout[self._cursor_slot()]
        out += _move(end, cursor)
        self._cursor_row = cursor[0]
        return out

    def _clear(self) -> str:
        out = _up(self._cursor_row) + "\r" + CLEAR_TO_END
        self._cursor_row = 0
        return out

    def _finish(self, event: EditorEvent, mark: str) -> None:
        """End the line: cursor after its end, a new line, editor inactive."""
        layout = self._layout()
        end = layout[-1]
        cursor = layout[self._cursor_slot()]
        out = _move(cursor, end) + mark
        if mark or end[1] > 0 or end[0] == 0:
            out += "\r\n"
        self._out.append(out)
        self._cursor_row = 0
        self._prompt = None
        self._secret = False
        self._new_line()
        self._events.append(event)
