"""The line editor byte by byte: every key, the screen it leaves, and
properties over arbitrary input (hypothesis).

``Screen`` (in tests/helpers.py) is a small terminal model (an xterm subset,
with or without the deferred wrap) that refuses any escape sequence it does
not know: what it shows is what a user would see.
"""

import re

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from bluetrace.phone.commands import COMPLETIONS, HELP_TEXT
from bluetrace.term.keys import MAX_SEQUENCE, KeyDecoder, Typed
from bluetrace.term.lineedit import (
    MAX_LINE,
    MAX_TYPEAHEAD,
    EditorEvent,
    EndOfInput,
    Interrupted,
    LineEditor,
    Submitted,
    Suspend,
)
from tests.helpers import Screen, cells

PROMPT = "> "
BELL = b"\x07"

LEFT = (b"\x1b[D", b"\x1bOD", b"\x02", b"\x1b[1;2D")
RIGHT = (b"\x1b[C", b"\x1bOC", b"\x06", b"\x1b[1;2C")
HOME = (b"\x1b[H", b"\x1bOH", b"\x1b[1~", b"\x1b[7~", b"\x01", b"\x1b[1;2H")
END = (b"\x1b[F", b"\x1bOF", b"\x1b[4~", b"\x1b[8~", b"\x05")
DELETE = b"\x1b[3~"
UP, DOWN = b"\x1b[A", b"\x1b[B"
UNKNOWN_SEQUENCES = (
    b"\x1b[200~",  # bracketed paste start
    b"\x1b[201~",
    b"\x1b[15~",  # F5
    b"\x1bOP",  # F1
    b"\x1b[[A",  # F1 on the Linux console
    b"\x1b[1;5P",  # Ctrl-F1
    b"\x1b[?1;2c",  # a terminal's reply to DA
    b"\x1b[2~",  # Insert
    b"\x1b[6~",  # Page Down
    b"\x1b[Z",  # Shift-Tab
    b"\x1bx",  # Alt-x
    b"\x1b[24~",  # F12
)


# -- a terminal model (tests/helpers.py) -----------------------------------------
def wrapped(text: str, width: int) -> tuple[list[str], list[tuple[int, int]]]:
    """Rows a terminal shows for ``text`` from column 0, and where each
    character (then the end) sits."""
    rows: list[str] = [""]
    places = []
    col = 0
    for ch in text:
        w = cells(ch)
        if w and col + w > width:
            rows.append("")
            col = 0
        places.append((len(rows) - 1, col))
        rows[-1] += ch
        col += w
        if col >= width:
            rows.append("")
            col = 0
    places.append((len(rows) - 1, col))
    return rows, places


# -- driving the editor as a host would ---------------------------------------
class Host:
    """Feeds chunks, re-prompts after each line, takes typeahead; records all."""

    def __init__(self, width: int = 80, *, deferred_wrap: bool = True, **kw: object) -> None:
        self.editor = LineEditor(width=width, **kw)  # type: ignore[arg-type]
        self.screen = Screen(width, deferred_wrap=deferred_wrap)
        self.events: list[EditorEvent] = []
        self.out = b""
        self._write(self.editor.set_prompt(PROMPT))

    def _write(self, data: bytes) -> None:
        self.out += data
        self.screen.feed(data)

    def type(self, *chunks: bytes) -> list[EditorEvent]:
        new: list[EditorEvent] = []
        for chunk in chunks:
            events, out = self.editor.feed(chunk)
            self._write(out)
            new += events
            while True:
                if not self.editor.active:
                    self._write(self.editor.set_prompt(PROMPT))
                if not self.editor.pending_input:
                    break
                events, out = self.editor.feed(b"")
                self._write(out)
                new += events
        self.events += new
        return new

    def above(self, text: str) -> None:
        self._write(self.editor.print_above(text))


def feed(editor: LineEditor, *chunks: bytes) -> tuple[list[EditorEvent], bytes]:
    events: list[EditorEvent] = []
    out = b""
    for chunk in chunks:
        more, written = editor.feed(chunk)
        events += more
        out += written
    return events, out


def editing(text: str = "", **kw: object) -> LineEditor:
    editor = LineEditor(**kw)  # type: ignore[arg-type]
    editor.set_prompt(PROMPT)
    editor.feed(text.encode())
    return editor


# -- printable input -----------------------------------------------------------
def test_typing_echoes_and_submits() -> None:
    host = Host()
    assert host.type(b"Upload") == []
    assert host.screen.lines() == ["> Upload"]
    assert host.type(b"\r") == [Submitted("Upload")]
    assert host.screen.lines() == ["> Upload", ">"]
    assert host.screen.cursor == (1, 2)


@pytest.mark.parametrize(
    "text",
    ["é", "€", "日本", "🙂", "naïve café"],
    ids=["2-byte", "3-byte", "wide", "4-byte", "mix"],
)
def test_utf8_split_anywhere_across_feeds(text: str) -> None:
    data = text.encode()
    for cut in range(len(data) + 1):
        editor = editing()
        feed(editor, data[:cut], data[cut:])
        assert editor.text == text


def test_invalid_utf8_is_dropped() -> None:
    editor = editing()
    feed(editor, b"a\xff\xc3b\xe2\x82c")
    assert editor.text == "abc"


def test_control_characters_are_not_inserted() -> None:
    editor = editing()
    events, _ = feed(editor, b"a\x00\x07\x0f\x11\x13\x16\x1c\x1d\x1e\x1fb")
    assert events == []
    assert editor.text == "ab"


# -- Enter ------------------------------------------------------------------
@pytest.mark.parametrize("ending", [b"\r", b"\n", b"\r\n"])
def test_enter_forms(ending: bytes) -> None:
    host = Host()
    assert host.type(b"one" + ending + b"two" + ending) == [Submitted("one"), Submitted("two")]
    assert host.editor.text == ""


def test_crlf_split_across_feeds_is_one_enter() -> None:
    host = Host()
    assert host.type(b"a\r", b"\nb\r", b"\n") == [Submitted("a"), Submitted("b")]


def test_two_crs_are_two_lines_and_lf_alone_after_text_counts() -> None:
    host = Host()
    assert host.type(b"\r\r") == [Submitted(""), Submitted("")]
    assert host.type(b"x\n\n") == [Submitted("x"), Submitted("")]


def test_one_feed_gives_at_most_one_line() -> None:
    editor = editing()
    events, out = editor.feed(b"first\rsecond\r")
    assert events == [Submitted("first")]
    assert b"second" not in out  # not echoed: the next prompt could be secret
    assert not editor.active
    assert not editor.pending_input  # nothing to do until a prompt is shown
    editor.set_prompt(PROMPT)
    assert editor.pending_input
    events, out = editor.feed(b"")
    assert events == [Submitted("second")]
    assert b"second" in out


# -- deleting ---------------------------------------------------------------
@pytest.mark.parametrize("key", [b"\x7f", b"\x08"])
def test_backspace(key: bytes) -> None:
    editor = editing("abcd")
    feed(editor, LEFT[0], key)
    assert (editor.text, editor.cursor) == ("abd", 2)
    feed(editor, key * 5)
    assert (editor.text, editor.cursor) == ("d", 0)


def test_delete_under_cursor() -> None:
    editor = editing("abcd")
    feed(editor, HOME[0], DELETE)
    assert (editor.text, editor.cursor) == ("bcd", 0)
    feed(editor, END[0], DELETE)
    assert (editor.text, editor.cursor) == ("bcd", 3)


# -- moving ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "cursor"),
    [
        *[(k, 1) for k in LEFT],
        *[(k, 3) for k in RIGHT],
        *[(k, 0) for k in HOME],
        *[(k, 4) for k in END],
    ],
)
def test_cursor_keys_in_every_form(key: bytes, cursor: int) -> None:
    host = Host()
    host.type(b"abcd" + LEFT[0] * 2, key)
    assert (host.editor.text, host.editor.cursor) == ("abcd", cursor)
    assert host.screen.cursor == (0, 2 + cursor)
    assert host.screen.lines() == ["> abcd"]


def test_moves_stop_at_the_ends() -> None:
    editor = editing("ab")
    feed(editor, RIGHT[0] * 3)
    assert editor.cursor == 2
    feed(editor, LEFT[0] * 5)
    assert editor.cursor == 0


def test_insert_in_the_middle_redraws_the_tail() -> None:
    host = Host()
    host.type(b"Uplad", LEFT[0], LEFT[0], b"o")
    assert host.screen.lines() == ["> Upload"]
    assert host.screen.cursor == (0, 6)
    assert host.type(b"\r") == [Submitted("Upload")]


@pytest.mark.parametrize(
    ("keys", "cursor"),
    [
        (b"\x1bb", 8),  # Alt-B: start of "three"
        (b"\x1b[1;5D", 8),  # Ctrl-Left
        (b"\x1bb\x1bb", 4),
        (b"\x01\x1bf", 3),  # Alt-F: end of "one"
        (b"\x01\x1b[1;5C\x1b[1;5C", 7),  # Ctrl-Right twice
    ],
)
def test_word_moves(keys: bytes, cursor: int) -> None:
    editor = editing("one two three")
    feed(editor, keys)
    assert editor.cursor == cursor


# -- killing and yanking ---------------------------------------------------
def test_ctrl_u_kills_to_start_ctrl_y_yanks() -> None:
    editor = editing("hello world")
    feed(editor, LEFT[0] * 5, b"\x15")
    assert (editor.text, editor.cursor) == ("world", 0)
    feed(editor, b"\x05\x19")
    assert editor.text == "worldhello "


def test_ctrl_k_kills_to_end() -> None:
    editor = editing("Beacon 127.0.0.1 8000")
    feed(editor, b"\x01", RIGHT[0] * 6, b"\x0b")
    assert (editor.text, editor.cursor) == ("Beacon", 6)


def test_ctrl_w_kills_the_previous_white_space_word() -> None:
    editor = editing("Beacon 127.0.0.1  ")
    feed(editor, b"\x17")
    assert editor.text == "Beacon "
    feed(editor, b"\x17\x17")
    assert editor.text == ""


def test_alt_d_and_alt_backspace() -> None:
    editor = editing("one two three")
    feed(editor, b"\x01\x1bd")
    assert editor.text == " two three"
    feed(editor, b"\x05\x1b\x7f")
    assert editor.text == " two "


# -- history ---------------------------------------------------------------
def test_history_up_down_and_back_to_the_draft() -> None:
    host = Host()
    host.type(b"first\r", b"second\r", b"dra")
    host.type(UP)
    assert host.editor.text == "second"
    host.type(b"\x10")  # Ctrl-P
    assert host.editor.text == "first"
    assert host.screen.lines()[-1] == "> first"
    host.type(UP)  # nothing older: bell, no change
    assert host.editor.text == "first"
    assert host.out.endswith(BELL)
    host.type(DOWN, b"\x0e")  # Down, Ctrl-N
    assert (host.editor.text, host.editor.cursor) == ("dra", 3)
    assert host.screen.lines()[-1] == "> dra"


def test_history_skips_blank_and_repeated_lines_and_is_bounded() -> None:
    host = Host(history_size=3)
    host.type(b"a\r", b"   \r", b"\r", b"b\r", b"b\r", b"c\r", b"d\r")
    assert host.editor.history == ("b", "c", "d")


def test_history_edits_are_kept_while_browsing() -> None:
    host = Host()
    host.type(b"one\r", b"two\r", UP, b"X", UP, DOWN)
    assert host.editor.text == "twoX"
    host.type(b"\r")
    assert host.events[-1] == Submitted("twoX")
    host.type(UP, UP)
    assert host.editor.text == "two"  # the edit was of this line only


# -- completion ------------------------------------------------------------
def test_tab_completes_a_unique_prefix_with_a_space() -> None:
    host = Host(completions=COMPLETIONS)
    host.type(b"Upl\t")
    assert host.editor.text == "Upload_contact_log "
    assert host.screen.lines() == ["> Upload_contact_log"]
    host.type(b"\x15Be\t127.0.0.1 8000\r")
    assert host.events[-1] == Submitted("Beacon 127.0.0.1 8000")


def test_tab_ignores_case_when_nothing_matches_exactly() -> None:
    editor = editing("down", completions=COMPLETIONS)
    feed(editor, b"\t")
    assert editor.text == "Download_tempID "


def test_tab_ambiguous_extends_rings_then_lists_above() -> None:
    host = Host(completions=("Download", "Downgrade", "Upload"))
    host.type(b"D\t")
    assert host.editor.text == "Down"
    assert host.out.endswith(BELL)
    host.type(b"\t")
    listing, prompt = host.screen.lines()
    assert (listing.split(), prompt) == (["Download", "Downgrade"], "> Down")
    assert host.screen.cursor == (1, 6)


def test_tab_on_an_empty_line_lists_every_command_on_the_second_press() -> None:
    host = Host(completions=COMPLETIONS)
    host.type(b"\t")
    assert host.screen.lines() == [">"]
    host.type(b"\t")
    listed = " ".join(host.screen.lines()[:-1]).split()
    assert listed == list(COMPLETIONS)
    assert host.screen.lines()[-1] == ">"


def test_tab_without_match_or_after_the_command_word_rings() -> None:
    editor = editing("xyz", completions=COMPLETIONS)
    _, out = feed(editor, b"\t")
    assert (editor.text, out) == ("xyz", BELL)
    editor = editing("Beacon lo", completions=COMPLETIONS)
    _, out = feed(editor, b"\t")
    assert (editor.text, out) == ("Beacon lo", BELL)


def test_help_text_names_every_command() -> None:
    for name in ("Download_tempID", "Upload_contact_log", "Beacon", "logout", "help"):
        assert name in COMPLETIONS
        assert any(line.startswith(f"  {name}") for line in HELP_TEXT.splitlines())
    assert "Beacon <dest IP> <dest port>" in HELP_TEXT
    assert max(len(line) for line in HELP_TEXT.splitlines()) < 80


# -- Ctrl-C, Ctrl-D, Ctrl-Z --------------------------------------------------
def test_ctrl_c_drops_the_line() -> None:
    host = Host()
    assert host.type(b"Upl\x03") == [Interrupted()]
    assert host.screen.lines() == ["> Upl^C", ">"]
    assert host.editor.history == ()
    assert host.type(b"x\r") == [Submitted("x")]


def test_ctrl_c_acts_while_no_prompt_is_shown() -> None:
    editor = editing("one")
    events, out = editor.feed(b"\rtyped ahead\x03more")
    assert events == [Submitted("one"), Interrupted()]
    assert out.endswith(b"^C\r\n")
    editor.set_prompt(PROMPT)
    editor.feed(b"")
    assert editor.text == "more"  # what came before Ctrl-C was dropped


def test_ctrl_d_ends_input_only_on_an_empty_line() -> None:
    host = Host()
    host.type(b"abc", LEFT[0], b"\x04")
    assert (host.editor.text, host.events) == ("ab", [])
    host.type(b"\x04")  # at the end of a non-empty line: nothing
    assert (host.editor.text, host.events) == ("ab", [])
    host.type(b"\x15")
    assert host.type(b"\x04") == [EndOfInput()]
    assert host.screen.lines() == [">", ">"]


def test_ctrl_z_suspends_and_keeps_the_line() -> None:
    editor = editing("Upl")
    events, out = editor.feed(b"\x1a")
    assert (events, out) == ([Suspend()], b"")
    assert editor.active
    assert editor.text == "Upl"


# -- secret mode -----------------------------------------------------------
def test_secret_prompt_echoes_nothing_and_stays_editable() -> None:
    host = Host()
    host.type(b"user\r")
    host._write(host.editor.set_prompt("Password: ", secret=True))
    before = len(host.out)
    events = host.type(b"hunterX\x7f2", LEFT[0], b"\x04", b"2\x01\x06\r")
    typed = host.out[before:]
    assert events == [Submitted("hunter2")]
    assert b"hunter" not in typed
    assert b"*" not in typed
    assert b"X" not in typed
    assert host.editor.history == ("user",)
    assert host.screen.lines()[-2] == "Password:"


def test_secret_prompt_has_no_history_and_no_yank() -> None:
    editor = LineEditor()
    editor.set_prompt(PROMPT)
    feed(editor, b"visible\r")
    editor.set_prompt("Password: ", secret=True)
    feed(editor, b"pw", UP)
    assert editor.text == "pw"
    feed(editor, b"\x15\r")  # Ctrl-U on the password
    editor.set_prompt(PROMPT)
    feed(editor, b"\x19")
    assert editor.text == ""


def test_password_typed_ahead_is_never_echoed() -> None:
    editor = editing("alice")
    events, out = editor.feed(b"\rsecret1\r")
    assert events == [Submitted("alice")]
    editor.set_prompt("Password: ", secret=True)
    events, out2 = editor.feed(b"")
    assert events == [Submitted("secret1")]
    assert b"secret1" not in out + out2


# -- escape sequences, bounds ------------------------------------------------
@pytest.mark.parametrize("sequence", UNKNOWN_SEQUENCES)
def test_unknown_sequences_are_swallowed_whole(sequence: bytes) -> None:
    host = Host()
    host.type(b"ab", sequence, b"c")
    assert host.editor.text == "abc"
    assert host.screen.lines() == ["> abc"]


def test_an_endless_sequence_is_bounded_and_swallowed() -> None:
    editor = editing()
    feed(editor, b"\x1b[" + b"1;" * 5000)
    assert len(editor._keys_in._sequence) <= MAX_SEQUENCE
    feed(editor, b"~x")
    assert editor.text == "x"
    feed(editor, b"\x01\x1b[" + b"0" * MAX_SEQUENCE + b"3~")  # not Delete: cut short
    assert editor.text == "x"
    feed(editor, DELETE)
    assert editor.text == ""


def test_a_control_key_after_escape_still_works() -> None:
    host = Host()
    assert host.type(b"ab\x1b\x03") == [Interrupted()]
    assert host.type(b"cd\x1b[\r") == [Submitted("cd")]


def test_the_line_is_bounded() -> None:
    editor = editing()
    _, out = feed(editor, b"x" * (MAX_LINE + 100))
    assert len(editor.text) == MAX_LINE
    assert out.endswith(BELL)
    _, out = feed(editor, b"y")
    assert (len(editor.text), out) == (MAX_LINE, BELL)


def test_typeahead_is_bounded() -> None:
    editor = editing("x")
    _, out = editor.feed(b"\r" + b"y" * (MAX_TYPEAHEAD + 10))
    assert out.endswith(BELL)
    editor.set_prompt(PROMPT)
    editor.feed(b"")
    assert editor.text == "y" * MAX_TYPEAHEAD


def test_no_history_when_its_size_is_zero() -> None:
    host = Host(history_size=0)
    host.type(b"one\r", UP)
    assert (host.editor.history, host.editor.text) == ((), "")


# -- prompts and output from elsewhere ----------------------------------------
def test_print_above_redraws_the_typed_text_and_cursor() -> None:
    host = Host()
    host.type(b"Uplo", LEFT[0])
    host.above("received beacon:\n1234,\n")
    assert host.screen.lines() == ["received beacon:", "1234,", "> Uplo"]
    assert host.screen.cursor == (2, 5)
    host.type(b"x\r")
    assert host.events == [Submitted("Uplxo")]


def test_print_above_a_secret_prompt_shows_no_text() -> None:
    host = Host()
    host._write(host.editor.set_prompt("Password: ", secret=True))
    host.type(b"pw")
    host.above("note")
    assert host.screen.lines()[-2:] == ["note", "Password:"]
    assert b"pw" not in host.out


def test_print_above_without_a_prompt_prints_lines() -> None:
    editor = LineEditor()
    assert editor.print_above("a\nb") == b"a\r\nb\r\n"
    assert editor.print_above("") == b"\r\n"


def test_print_above_makes_control_characters_visible() -> None:
    editor = LineEditor()
    assert editor.print_above("x\x1b]0;title\x07\x9by\tz") == b"x^[]0;title^G?y\tz\r\n"


def test_same_prompt_keeps_the_text_a_new_prompt_clears_it() -> None:
    editor = editing("Upl")
    assert editor.set_prompt(PROMPT) == b""
    assert editor.text == "Upl"
    editor.set_prompt("Username: ")
    assert editor.text == ""


def test_ctrl_l_clears_and_redraws() -> None:
    host = Host()
    host.above("old output")
    host.type(b"abc", LEFT[0], b"\x0c")
    assert host.screen.lines() == ["> abc"]
    assert host.screen.cursor == (0, 4)


def test_clear_line_then_redraw() -> None:
    host = Host(width=10)
    host.type(b"0123456789abcd", LEFT[0] * 3)
    host._write(host.editor.clear_line())
    assert host.screen.lines() == []
    host._write(host.editor.redraw())
    assert host.screen.lines() == ["> 01234567", "89abcd"]
    assert host.screen.cursor == (1, 3)


def test_resize_then_redraw() -> None:
    host = Host(width=20)
    host.type(b"0123456789abcdef", LEFT[0])
    host.editor.resize(10)
    host.screen = Screen(10)  # a reflowing terminal: the cursor moved with its text
    host.screen.feed(b"> 01234567\r\n89abcdef")
    host.screen.feed(b"\x1b[1D")
    host._write(host.editor.redraw())
    assert host.screen.lines() == ["> 01234567", "89abcdef"]
    assert host.screen.cursor == (1, 7)


# -- long lines --------------------------------------------------------------
@pytest.mark.parametrize("deferred_wrap", [True, False])
def test_exactly_full_rows_leave_the_cursor_on_the_next_row(deferred_wrap: bool) -> None:
    host = Host(width=10, deferred_wrap=deferred_wrap)
    host.type(b"01234567")
    assert host.screen.cursor == (1, 0)
    host.type(b"89abcdefgh")
    assert host.screen.lines() == ["> 01234567", "89abcdefgh"]
    assert host.screen.cursor == (2, 0)
    host.type(LEFT[0], b"\x01", b"X")
    assert host.screen.lines() == ["> X0123456", "789abcdefg", "h"]
    assert host.screen.cursor == (0, 3)
    host.above("news")
    assert host.screen.lines() == ["news", "> X0123456", "789abcdefg", "h"]
    assert host.type(b"\r") == [Submitted("X0123456789abcdefgh")]
    assert host.screen.lines()[-1] == ">"


def test_wide_character_that_does_not_fit_starts_the_next_row() -> None:
    host = Host(width=6)
    host.type("abc日x".encode())
    assert host.screen.lines() == ["> abc", "日x"]
    host.type(LEFT[0])
    assert host.screen.cursor == (1, 2)


# -- properties ----------------------------------------------------------------
ALPHABET = st.sampled_from([*"ab xyz09_é", "日", "€"])
ACTIONS = st.one_of(
    st.tuples(st.just("text"), st.text(ALPHABET, min_size=1, max_size=8)),
    st.tuples(
        st.sampled_from(["left", "right", "home", "end", "backspace", "delete", "kill_end"]),
        st.sampled_from([0, 1, 2]),
    ),
    st.tuples(st.just("above"), st.text("pqr", min_size=1, max_size=3)),
)


def _key_bytes(name: str, form: int) -> bytes:
    forms = {
        "left": LEFT,
        "right": RIGHT,
        "home": HOME,
        "end": END,
        "backspace": (b"\x7f", b"\x08"),
        "delete": (DELETE,),
        "kill_end": (b"\x0b",),
    }[name]
    return forms[form % len(forms)]


@given(
    actions=st.lists(ACTIONS, max_size=30),
    width=st.integers(4, 12),
    deferred_wrap=st.booleans(),
)
def test_editing_matches_a_model_and_the_screen_shows_it(
    actions: list[tuple[str, object]], width: int, deferred_wrap: bool
) -> None:
    host = Host(width=width, deferred_wrap=deferred_wrap)
    model: list[str] = []
    cursor = 0
    above: list[str] = []
    for name, arg in actions:
        if name == "text":
            assert isinstance(arg, str)
            host.type(arg.encode())
            model[cursor:cursor] = arg
            cursor += len(arg)
        elif name == "above":
            assert isinstance(arg, str)
            host.above(arg)
            above.append(arg)
        else:
            assert isinstance(arg, int)
            host.type(_key_bytes(name, arg))
            if name == "left":
                cursor = max(0, cursor - 1)
            elif name == "right":
                cursor = min(len(model), cursor + 1)
            elif name == "home":
                cursor = 0
            elif name == "end":
                cursor = len(model)
            elif name == "backspace" and cursor:
                del model[cursor - 1]
                cursor -= 1
            elif name == "delete":
                del model[cursor : cursor + 1]
            elif name == "kill_end":
                del model[cursor:]
        assert (host.editor.text, host.editor.cursor) == ("".join(model), cursor)
    rows, places = wrapped(PROMPT + "".join(model), width)
    expected = above + rows
    while expected and not expected[-1].rstrip():
        expected.pop()
    assert host.screen.lines() == [row.rstrip() for row in expected]
    row, col = places[len(PROMPT) + cursor]
    assert host.screen.cursor == (len(above) + row, col)
    assert host.type(b"\r") == [Submitted("".join(model))]


MEANINGFUL = st.sampled_from(
    [
        *LEFT, *RIGHT, *HOME, *END, DELETE, UP, DOWN, *UNKNOWN_SEQUENCES,
        *(b"\r", b"\n", b"\r\n", b"\x7f", b"\x03", b"\x04", b"\x0b", b"\x15", b"\x17", b"\x19"),
        *(b"\t", b"\x0c", b"\x1a", b"\x1b", b"\x1b[", b"ab", "é日".encode(), b"\xc3", b"\xff"),
    ]
)
INPUT = st.lists(st.one_of(MEANINGFUL, st.binary(max_size=6)), max_size=25).map(b"".join)
OWN_SEQUENCES = re.compile(rb"\x1b\[(\d*[ABCDJK]|H)")


@given(data=INPUT, width=st.integers(2, 30), output=st.text(max_size=20))
def test_any_input_never_raises_and_never_prints_a_foreign_escape(
    data: bytes, width: int, output: str
) -> None:
    host = Host(width=width, completions=COMPLETIONS)
    host.type(data)  # the strict Screen also refuses unknown sequences and controls
    host.above(output)
    assert b"\x1b" not in OWN_SEQUENCES.sub(b"", host.out)
    assert len(host.editor.text) <= MAX_LINE


TYPED_AHEAD_THEN_CTRL_C_OR_Z = re.compile(rb"[\r\n\x04].*[\x03\x1a]", re.DOTALL)


@given(data=INPUT, cuts=st.lists(st.integers(0, 200), max_size=8))
def test_any_cut_of_the_input_gives_the_same_events(data: bytes, cuts: list[int]) -> None:
    """Except by design: Ctrl-C and Ctrl-Z act at once even with lines typed
    ahead (Ctrl-C also drops them, as the tty's INTR flushes its input), so
    whether the host re-prompted between a line and them changes the events
    (see test_ctrl_c_acts_while_no_prompt_is_shown)."""
    assume(not TYPED_AHEAD_THEN_CTRL_C_OR_Z.search(data))
    whole = Host(completions=COMPLETIONS)
    whole.type(data)
    points = sorted({min(c, len(data)) for c in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    bytewise = [data[i : i + 1] for i in range(len(data))]
    for chunks in (pieces, bytewise):
        cut = Host(completions=COMPLETIONS)
        cut.type(*chunks)
        assert cut.events == whole.events
        assert (cut.editor.text, cut.editor.cursor) == (whole.editor.text, whole.editor.cursor)
        assert cut.editor.history == whole.editor.history


def decode_all(decoder: KeyDecoder, text: str) -> list[str | Typed]:
    return [key for ch in text if (key := decoder.decode(ch)) is not None]


@pytest.mark.parametrize(
    ("typed", "keys"),
    [
        ("\x1b[A\x1bOB\x1b[1;5C\x1b[3~", ["up", "down", "word_right", "delete"]),
        ("\r\n\n", ["enter", "enter"]),  # CRLF is one Enter, the LF after it another
        ("\x1bb\x1bz", ["word_left", "unbound"]),  # Alt-B; Alt-Z means nothing
        ("\x1b[?1;2c", ["unbound"]),  # a terminal's reply is swallowed whole
        ("a\x1b[[A", [Typed("a"), "unbound"]),  # the Linux console's F1
    ],
)
def test_the_key_decoder_alone(typed: str, keys: list[str | Typed]) -> None:
    assert decode_all(KeyDecoder(), typed) == keys


def test_every_key_the_decoder_names_is_bound_in_the_editor() -> None:
    from bluetrace.term.keys import KEY_NAMES  # noqa: PLC0415 (only this test needs it)

    assert set(KEY_NAMES) <= set(LineEditor()._keys)
