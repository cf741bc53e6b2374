"""Raw terminal input to editing keys: the line editor's key decoder.

A terminal sends most keys as more than one character: arrows and Home/End as
escape sequences (``ESC [ A``, ``ESC O H``, ``ESC [ 1 ; 5 C`` with a modifier),
Alt plus a key as ESC before it, Enter as CR, LF or CRLF. Decoding those is
a state machine of its own, kept apart from the editor (as prompt_toolkit keeps
its ``vt100_parser`` apart from its key bindings) so that each can be read and
tested alone: the decoder knows sequences, not what a key does to a line.
"""

from dataclasses import dataclass
from typing import Final

MAX_SEQUENCE: Final = 32
"""Parameter characters kept of one escape sequence; the rest is skipped
(still swallowed up to its final byte)."""

UNBOUND: Final = "unbound"
"""The key name for a sequence or Alt key that means nothing here: it is
swallowed whole, so its characters are never inserted as text."""

_TEXT, _ESC, _CSI, _SS3 = range(4)

_FINAL_KEYS = {"A": "up", "B": "down", "C": "right", "D": "left", "H": "home", "F": "end"}
_TILDE_KEYS = {"1": "home", "7": "home", "4": "end", "8": "end", "3": "delete"}
_WORD_MODIFIERS = {"3", "5", "7", "9"}  # Alt, Ctrl, Ctrl-Alt, Meta (xterm's 1 + bits)
_META_KEYS = {
    "b": "word_left",
    "f": "word_right",
    "d": "kill_word_right",
    "\x7f": "kill_word_left",
    "\x08": "kill_word_left",
}
_CONTROL_KEYS = {
    "\x01": "home",
    "\x02": "left",
    "\x03": "interrupt",
    "\x04": "ctrl_d",
    "\x05": "end",
    "\x06": "right",
    "\x08": "backspace",
    "\x09": "tab",
    "\x0b": "kill_end",
    "\x0c": "clear_screen",
    "\x0d": "enter",
    "\x0a": "enter",
    "\x0e": "down",
    "\x10": "up",
    "\x15": "kill_start",
    "\x17": "kill_word_left",
    "\x19": "yank",
    "\x1a": "suspend",
    "\x7f": "backspace",
}

KEY_NAMES: Final = frozenset(
    [
        *_FINAL_KEYS.values(),
        *_TILDE_KEYS.values(),
        *_META_KEYS.values(),
        *_CONTROL_KEYS.values(),
        "word_left",
        "word_right",
        UNBOUND,
    ]
)
"""Every name ``KeyDecoder.decode`` can return: the editor binds each."""


@dataclass(frozen=True, slots=True)
class Typed:
    """A printable character, to be inserted as text."""

    char: str


class KeyDecoder:
    """Characters in, one at a time; key names or typed characters out."""

    def __init__(self) -> None:
        self._state = _TEXT
        self._sequence = ""
        self._overflow = False
        self._after_cr = False

    @property
    def at_text(self) -> bool:
        """No sequence and no CR is half read, so a printable character is
        text: the editor may take a whole run of them at once (a paste)."""
        return self._state == _TEXT and not self._after_cr

    def forget_return(self) -> None:
        """Input was dropped (Ctrl-C while waiting): an LF that follows is a
        new Enter, not the second half of a CRLF."""
        self._after_cr = False

    def decode(self, ch: str) -> str | Typed | None:
        """One character: a key name, a ``Typed`` character, or None while a
        sequence is still being read (or for a control key with no meaning)."""
        if self._after_cr:
            self._after_cr = False
            if ch == "\n":
                return None  # CRLF is one Enter
        state = self._state
        if state == _ESC:
            self._state = _TEXT
            if ch in "[O":
                self._state = _CSI if ch == "[" else _SS3
                self._sequence, self._overflow = "", False
                return None
            if ch == "\x1b":
                self._state = _ESC  # ESC ESC: the first one meant nothing
                return None
            if ch.isprintable() or ch in "\x7f\x08":
                return _META_KEYS.get(ch, UNBOUND)
            # A control character after ESC is that control key.
        elif state in (_CSI, _SS3):
            code = ord(ch)
            if 0x40 <= code <= 0x7E and not (state == _CSI and ch == "[" and not self._sequence):
                self._state = _TEXT
                if self._overflow:
                    return UNBOUND
                return _sequence_key(self._sequence, ch) or UNBOUND
            if 0x20 <= code <= 0x3F or ch == "[":  # ESC [ [ A: the Linux console's F1
                if len(self._sequence) < MAX_SEQUENCE:
                    self._sequence += ch
                else:
                    self._overflow = True
                return None
            self._state = _TEXT  # not part of a sequence: the sequence is dropped
        if ch == "\x1b":
            self._state = _ESC
            return None
        if ch == "\r":
            self._after_cr = True
        key = _CONTROL_KEYS.get(ch)
        if key is not None:
            return key
        if ch.isprintable():
            return Typed(ch)
        return None


def _sequence_key(params: str, final: str) -> str | None:
    if params[:1] in ("[", "?", ">", "<", "="):
        return None  # function keys on the Linux console, terminal replies
    fields = params.split(";")
    if final == "~":
        return _TILDE_KEYS.get(fields[0]) if len(fields) <= 2 else None
    key = _FINAL_KEYS.get(final)
    if key in ("left", "right") and len(fields) == 2 and fields[1] in _WORD_MODIFIERS:
        return "word_" + key
    return key
