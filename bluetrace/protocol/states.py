"""The server's session state machine as one table (protocol_spec.md, section 4).

Like h11's ``_state.py``: every transition is a row here, the connection
object looks its next state and its reply up in :data:`TABLE`, and
``tests/test_states.py`` reads the table out of protocol_spec.md and compares
it with this one, so the prose and the code cannot drift apart. The text of
each event and reply is the spec's own wording, cell for cell.
"""

import enum
from dataclasses import dataclass


class State(enum.Enum):
    """Where one connection's session stands."""

    AWAITING_LOGIN = "AWAITING_LOGIN"
    LOGGED_IN = "LOGGED_IN"
    UPLOADING = "UPLOADING"
    DISCARDING = "DISCARDING"
    """An upload passed the upload limit: its chunks are counted and dropped
    until the final one, which is answered with one TOO_LARGE."""
    CLOSED = "CLOSED"


class Event(enum.Enum):
    """What happened to a session: a frame, classified by the rules, or a timer."""

    LOGIN_OK = "LOGIN, credentials right, user not blocked"
    LOGIN_UNKNOWN_USER = "LOGIN, unknown username"
    LOGIN_WRONG_PASSWORD = "LOGIN, wrong password, 1st or 2nd consecutive failure"  # noqa: S105
    LOGIN_BLOCKS = "LOGIN, wrong password, 3rd consecutive failure"
    LOGIN_BLOCKED = "LOGIN for a blocked user, any password"
    LOGIN_RATE_LIMITED = "LOGIN from an address over its failed-login limit"
    LOGIN_HASH_BUDGET = "LOGIN for a hashed password while the hashing budget is spent"
    REQUEST_BEFORE_LOGIN = "TEMPID_REQUEST, UPLOAD or LOGOUT"
    REGISTER_OK = "REGISTER, registration open, a new international phone number"
    REGISTER_TAKEN = "REGISTER, the number is already a user"
    REGISTER_INVALID = "REGISTER, not an international phone number"
    REGISTER_CLOSED = "REGISTER, registration off"
    REGISTER_LIMITED = "REGISTER over the address's registration limit or the hashing budget"
    LOGIN_TIMEOUT = "(login timeout passes)"
    IDLE_TIMEOUT = "(idle timeout passes)"
    TEMPID_REQUEST = "TEMPID_REQUEST"
    TEMPID_RATE_LIMITED = "TEMPID_REQUEST over the user's TempID rate"
    UPLOAD_MORE = "UPLOAD, final = 0"
    UPLOAD_FINAL = "UPLOAD, final = 1"
    LOGIN_AGAIN = "LOGIN or REGISTER"
    LOGOUT = "LOGOUT"
    UPLOAD_MORE_WITHIN = "UPLOAD, final = 0, total within the upload limit"
    UPLOAD_MORE_PAST = "UPLOAD, final = 0, total past the upload limit"
    UPLOAD_FINAL_WITHIN = "UPLOAD, final = 1, total within the upload limit"
    UPLOAD_FINAL_PAST = "UPLOAD, final = 1, total past the upload limit"
    UPLOAD_MORE_REFUSED = "UPLOAD, final = 0, over the user's entry rate or the upload budget"
    UPLOAD_FINAL_REFUSED = "UPLOAD, final = 1, over the user's entry rate or the upload budget"
    OTHER_REQUEST = "LOGIN, TEMPID_REQUEST, LOGOUT or REGISTER"
    REPLY_TYPE = "a reply type (`0x81`-`0x85`, `0xFF`)"
    MALFORMED = "a bad header, an unknown type or a malformed body"
    OVERSIZED = "a header announcing a body above the state's limit"
    SHUTDOWN = "(the server stops)"


class Reply(enum.Enum):
    """What the server answers, as the table's reply column names it."""

    LOGIN_OK = "LOGIN_REPLY OK"
    LOGIN_UNKNOWN_USER = "LOGIN_REPLY UNKNOWN_USER"
    LOGIN_WRONG_PASSWORD = "LOGIN_REPLY WRONG_PASSWORD"  # noqa: S105
    LOGIN_BLOCKED_NOW = "LOGIN_REPLY BLOCKED_NOW"
    LOGIN_BLOCKED = "LOGIN_REPLY BLOCKED"
    REGISTERED = "REGISTER_REPLY REGISTERED (or ERROR STORAGE)"
    REGISTER_TAKEN = "REGISTER_REPLY TAKEN"
    REGISTER_INVALID = "REGISTER_REPLY NOT_A_PHONE_NUMBER"
    REGISTER_CLOSED = "REGISTER_REPLY CLOSED"
    NOT_LOGGED_IN = "ERROR NOT_LOGGED_IN"
    TIMEOUT = "ERROR TIMEOUT"
    TEMPID = "TEMPID_REPLY (or ERROR STORAGE)"
    NONE = "none"
    DISCARD = "none (upload discarded)"
    UPLOAD = "UPLOAD_REPLY (or ERROR STORAGE)"
    ALREADY_LOGGED_IN = "ERROR ALREADY_LOGGED_IN"
    LOGOUT = "LOGOUT_REPLY"
    TOO_LARGE_DISCARDED = "ERROR TOO_LARGE (upload discarded)"
    UNEXPECTED_DISCARDED = "ERROR UNEXPECTED (upload discarded)"
    TOO_LARGE_UPLOAD = "ERROR TOO_LARGE"
    RATE_LIMITED = "ERROR RATE_LIMITED"
    REFUSED_DISCARDED = "ERROR RATE_LIMITED or BUSY (upload discarded)"
    DISCARD_END = "ERROR TOO_LARGE, RATE_LIMITED or BUSY (why it was discarded)"
    UNEXPECTED_REQUEST = "ERROR UNEXPECTED"
    MALFORMED = "ERROR MALFORMED"
    SHUTTING_DOWN = "ERROR SHUTTING_DOWN"


@dataclass(frozen=True, slots=True)
class Transition:
    reply: Reply
    next: State


ANY = None
"""A row that holds in every state but CLOSED."""

_A, _L, _U, _D, _C = (
    State.AWAITING_LOGIN,
    State.LOGGED_IN,
    State.UPLOADING,
    State.DISCARDING,
    State.CLOSED,
)

ROWS: tuple[tuple[State | None, Event, Reply, State], ...] = (
    (_A, Event.LOGIN_OK, Reply.LOGIN_OK, _L),
    (_A, Event.LOGIN_UNKNOWN_USER, Reply.LOGIN_UNKNOWN_USER, _A),
    (_A, Event.LOGIN_WRONG_PASSWORD, Reply.LOGIN_WRONG_PASSWORD, _A),
    (_A, Event.LOGIN_BLOCKS, Reply.LOGIN_BLOCKED_NOW, _C),
    (_A, Event.LOGIN_BLOCKED, Reply.LOGIN_BLOCKED, _C),
    (_A, Event.LOGIN_RATE_LIMITED, Reply.RATE_LIMITED, _A),
    (_A, Event.LOGIN_HASH_BUDGET, Reply.RATE_LIMITED, _A),
    (_A, Event.REQUEST_BEFORE_LOGIN, Reply.NOT_LOGGED_IN, _A),
    (_A, Event.REGISTER_OK, Reply.REGISTERED, _A),
    (_A, Event.REGISTER_TAKEN, Reply.REGISTER_TAKEN, _A),
    (_A, Event.REGISTER_INVALID, Reply.REGISTER_INVALID, _A),
    (_A, Event.REGISTER_CLOSED, Reply.REGISTER_CLOSED, _A),
    (_A, Event.REGISTER_LIMITED, Reply.RATE_LIMITED, _A),
    (_A, Event.LOGIN_TIMEOUT, Reply.TIMEOUT, _C),
    (_L, Event.TEMPID_REQUEST, Reply.TEMPID, _L),
    (_L, Event.TEMPID_RATE_LIMITED, Reply.RATE_LIMITED, _L),
    (_L, Event.UPLOAD_MORE, Reply.NONE, _U),
    (_L, Event.UPLOAD_FINAL, Reply.UPLOAD, _L),
    (_L, Event.UPLOAD_MORE_REFUSED, Reply.DISCARD, _D),
    (_L, Event.UPLOAD_FINAL_REFUSED, Reply.REFUSED_DISCARDED, _L),
    (_L, Event.LOGIN_AGAIN, Reply.ALREADY_LOGGED_IN, _L),
    (_L, Event.LOGOUT, Reply.LOGOUT, _C),
    (_L, Event.IDLE_TIMEOUT, Reply.TIMEOUT, _C),
    (_U, Event.UPLOAD_MORE_WITHIN, Reply.NONE, _U),
    (_U, Event.UPLOAD_MORE_PAST, Reply.DISCARD, _D),
    (_U, Event.UPLOAD_FINAL_WITHIN, Reply.UPLOAD, _L),
    (_U, Event.UPLOAD_FINAL_PAST, Reply.TOO_LARGE_DISCARDED, _L),
    (_U, Event.UPLOAD_MORE_REFUSED, Reply.DISCARD, _D),
    (_U, Event.UPLOAD_FINAL_REFUSED, Reply.REFUSED_DISCARDED, _L),
    (_U, Event.OTHER_REQUEST, Reply.UNEXPECTED_DISCARDED, _L),
    (_U, Event.IDLE_TIMEOUT, Reply.TIMEOUT, _C),
    (_D, Event.UPLOAD_MORE, Reply.NONE, _D),
    (_D, Event.UPLOAD_FINAL, Reply.DISCARD_END, _L),
    (_D, Event.OTHER_REQUEST, Reply.UNEXPECTED_REQUEST, _L),
    (_D, Event.IDLE_TIMEOUT, Reply.TIMEOUT, _C),
    (ANY, Event.REPLY_TYPE, Reply.UNEXPECTED_REQUEST, _C),
    (ANY, Event.MALFORMED, Reply.MALFORMED, _C),
    (ANY, Event.OVERSIZED, Reply.TOO_LARGE_UPLOAD, _C),
    (ANY, Event.SHUTDOWN, Reply.SHUTTING_DOWN, _C),
)
"""The rows in the spec's order: (state or ANY, event, reply, next state)."""

OPEN_STATES = (_A, _L, _U, _D)

TABLE: dict[tuple[State, Event], Transition] = {
    (state, event): Transition(reply, next_state)
    for row_state, event, reply, next_state in ROWS
    for state in ((row_state,) if row_state is not None else OPEN_STATES)
}


class NoTransitionError(LookupError):
    """An event the table has no row for: a bug in the caller, not the peer."""


def transition(state: State, event: Event) -> Transition:
    """The reply and next state for ``event`` in ``state``."""
    try:
        return TABLE[state, event]
    except KeyError:
        raise NoTransitionError(f"no transition for {event.name} in {state.name}") from None
