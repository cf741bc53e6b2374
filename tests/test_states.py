"""protocol_spec.md section 4 and bluetrace/protocol/states.py hold the same table."""

import re
from pathlib import Path

import pytest

from bluetrace.protocol.states import ROWS, TABLE, Event, NoTransitionError, State, transition

SPEC = Path(__file__).resolve().parent.parent / "protocol_spec.md"


def spec_rows() -> list[tuple[str, str, str, str]]:
    text = SPEC.read_text(encoding="utf-8")
    section = text.split("## 4.", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[0] in ("state", "") or set(cells[0]) <= {"-"}:
            continue
        rows.append((cells[0], cells[1], cells[2], cells[3]))
    return rows


def code_rows() -> list[tuple[str, str, str, str]]:
    return [
        (state.value if state else "any", event.value, reply.value, next_state.value)
        for state, event, reply, next_state in ROWS
    ]


def test_the_spec_table_is_the_code_table_row_for_row() -> None:
    assert spec_rows() == code_rows()


def test_the_spec_table_is_found_and_not_empty() -> None:
    # A test that compared two empty lists would pass for ever.
    assert len(spec_rows()) >= 20


def test_every_open_state_and_event_pair_is_decided_once() -> None:
    states_named = {state for state, *_ in ROWS}
    assert states_named - {None} == {
        State.AWAITING_LOGIN,
        State.LOGGED_IN,
        State.UPLOADING,
        State.DISCARDING,
    }
    assert len(ROWS) == len({(state, event) for state, event, *_ in ROWS})
    assert all(state is not State.CLOSED for state, _ in TABLE)


def test_an_event_with_no_row_is_a_local_bug() -> None:
    with pytest.raises(NoTransitionError):
        transition(State.LOGGED_IN, Event.LOGIN_OK)


def test_the_spec_states_are_the_codes() -> None:
    text = SPEC.read_text(encoding="utf-8")
    named = set(re.findall(r"\| ([A-Z_]{6,}) \|", text.split("## 4.", 1)[1]))
    assert {state.value for state in State} <= named | {"CLOSED"}
