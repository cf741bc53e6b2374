"""The phone protocol object against the real server connection, through bytes."""

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bluetrace.phone.contacts import LEFT_OUT_RUNS, MemoryContactStore
from bluetrace.phone.core import (
    BeaconAccepted,
    BeaconIgnored,
    BeaconMalformed,
    BeaconRejected,
    ConnectionClosed,
    ContactsExpired,
    LoggedIn,
    LoggedOut,
    LoginResult,
    PhoneState,
    ServerError,
    TempIDIssued,
    UploadAcknowledged,
    UploadRefused,
)
from bluetrace.protocol.errors import DataAfterEndError
from bluetrace.protocol.messages import LogoutReply, TempIDWindow, encode, encode_beacon
from bluetrace.protocol.wire import MAX_UPLOAD_CHUNK, ErrorCode, LoginStatus
from bluetrace.server.core import Limits
from bluetrace.testing import START, USERS, ConnectionPair, ServerSide

ALICE = "+61410888888"
SENDER = ("127.0.0.1", 8001)


def logged_in_pair(**kwargs: object) -> ConnectionPair:
    pair = ConnectionPair(**kwargs)  # type: ignore[arg-type]
    pair.phone.login(ALICE, USERS[ALICE], pair.clock.monotonic())
    events = pair.run()
    assert LoginResult(LoginStatus.OK) in events
    assert any(isinstance(event, LoggedIn) for event in events)
    return pair


def window_now(pair: ConnectionPair, tempid: str = "12345678901234567893") -> TempIDWindow:
    now = pair.clock.wall()
    return TempIDWindow(tempid, now - timedelta(minutes=6), now + timedelta(minutes=8, seconds=59))


def test_login_tempid_upload_logout_through_bytes() -> None:
    pair = logged_in_pair()
    pair.phone.request_tempid(pair.clock.monotonic())
    (issued,) = pair.run()
    assert isinstance(issued, TempIDIssued)
    assert pair.phone.tempid == issued.window
    assert pair.side.registry[issued.window.tempid] == ALICE
    pair.phone.receive_beacon(encode_beacon(window_now(pair)), SENDER, pair.clock.monotonic())
    assert isinstance(pair.phone.next_events()[0], BeaconAccepted)
    assert pair.phone.upload(pair.clock.monotonic()) == 1
    assert pair.run() == [UploadAcknowledged(1, 1)]
    pair.phone.logout(pair.clock.monotonic())
    assert pair.run() == [LoggedOut()]
    assert pair.phone.state is PhoneState.CLOSED


@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=80), min_size=1, max_size=20))
def test_any_cutting_of_the_bytes_gives_the_same_session(cuts: list[int]) -> None:
    def cut(data: bytes) -> list[bytes]:
        pieces, at, index = [], 0, 0
        while at < len(data):
            size = cuts[index % len(cuts)]
            pieces.append(data[at : at + size])
            at, index = at + size, index + 1
        return pieces

    pair = ConnectionPair(cut=cut)
    pair.phone.login(ALICE, "wrong", pair.clock.monotonic())
    assert pair.run() == [LoginResult(LoginStatus.WRONG_PASSWORD)]
    pair.phone.login(ALICE, USERS[ALICE], pair.clock.monotonic())
    assert isinstance(pair.run()[-1], LoggedIn)
    pair.store.entries = []
    pair.phone.request_tempid(pair.clock.monotonic())
    assert isinstance(pair.run()[0], TempIDIssued)
    pair.phone.logout(pair.clock.monotonic())
    assert pair.run() == [LoggedOut()]


def test_blocked_login_ends_the_connection() -> None:
    side = ServerSide()
    for _ in range(3):
        pair = ConnectionPair(side)
        pair.phone.login(ALICE, "bad", pair.clock.monotonic())
        events = pair.run()
    assert events[0] == LoginResult(LoginStatus.BLOCKED_NOW)
    assert isinstance(events[1], ConnectionClosed)
    assert not pair.phone.is_open


def test_validity_is_inclusive_at_both_ends() -> None:
    pair = logged_in_pair()
    now = pair.clock.wall()
    for start, expiry, accepted in (
        (now, now + timedelta(minutes=15), True),
        (now - timedelta(minutes=15), now, True),
        (now + timedelta(seconds=1), now + timedelta(minutes=15), False),
        (now - timedelta(minutes=15), now - timedelta(seconds=1), False),
    ):
        pair.phone.receive_beacon(
            encode_beacon(TempIDWindow("1" * 20, start, expiry)), SENDER, pair.clock.monotonic()
        )
        (event,) = pair.phone.next_events()
        assert isinstance(event, BeaconAccepted if accepted else BeaconRejected)
    assert len(pair.store.entries) == 2


def test_the_digit_one_as_version_is_heard() -> None:
    pair = logged_in_pair()
    datagram = encode_beacon(window_now(pair))[:-1] + b"1"
    pair.phone.receive_beacon(datagram, SENDER, pair.clock.monotonic())
    assert isinstance(pair.phone.next_events()[0], BeaconAccepted)


def test_malformed_and_own_and_early_beacons_change_nothing() -> None:
    pair = ConnectionPair()
    pair.phone.receive_beacon(b"x" * 59, SENDER, 0.0)
    assert isinstance(pair.phone.next_events()[0], BeaconIgnored)  # before login
    pair = logged_in_pair()
    pair.phone.receive_beacon(b"x" * 59, SENDER, pair.clock.monotonic())
    (event,) = pair.phone.next_events()
    assert isinstance(event, BeaconMalformed)
    assert "TempID" in event.reason
    pair.phone.request_tempid(pair.clock.monotonic())
    pair.run()
    own = pair.phone.make_beacon(pair.clock.monotonic())
    pair.phone.receive_beacon(own, SENDER, pair.clock.monotonic())
    (event,) = pair.phone.next_events()
    assert isinstance(event, BeaconIgnored)
    assert "own TempID" in event.reason
    assert pair.store.entries == []


def test_each_entry_leaves_exactly_retention_after_it_arrived() -> None:
    pair = logged_in_pair(retention=180)
    first = window_now(pair, "1" * 20)
    pair.phone.receive_beacon(encode_beacon(first), SENDER, pair.clock.monotonic())
    pair.clock.advance(60)
    second = window_now(pair, "2" * 20)
    pair.phone.receive_beacon(encode_beacon(second), SENDER, pair.clock.monotonic())
    pair.phone.next_events()
    assert pair.phone.get_timer() == pair.clock.monotonic() + 120
    pair.clock.advance(119.999)
    pair.phone.handle_timer(pair.clock.monotonic())
    assert pair.store.entries == [first, second]
    pair.clock.advance(0.001)
    pair.phone.handle_timer(pair.clock.monotonic())
    assert pair.phone.next_events() == [ContactsExpired(1)]
    assert pair.store.entries == [second]
    pair.clock.advance(60)
    pair.phone.handle_timer(pair.clock.monotonic())
    assert pair.store.entries == []
    assert pair.phone.get_timer() is None


def test_a_flood_of_expiries_costs_one_rewrite_per_interval() -> None:
    pair = logged_in_pair(retention=30)
    for i in range(2000):
        pair.clock.advance(0.0005)
        window = window_now(pair, f"{i:020d}")
        pair.phone.receive_beacon(encode_beacon(window), SENDER, pair.clock.monotonic())
    rewrites_before = pair.store.rewrites
    pair.clock.advance(29)  # the 2,000 entries expire over the next second
    for _ in range(400):  # 4 s of timer firings, 10 ms apart
        pair.clock.advance(0.01)
        deadline = pair.phone.get_timer()
        if deadline is not None and deadline <= pair.clock.monotonic():
            pair.phone.handle_timer(pair.clock.monotonic())
    assert pair.store.rewrites - rewrites_before <= 5
    assert pair.phone.contacts == []
    pair.clock.advance(1)
    pair.phone.handle_timer(pair.clock.monotonic())
    assert pair.store.entries == []


def test_entries_found_at_login_expire_retention_after_login() -> None:
    old = TempIDWindow("3" * 20, START, START + timedelta(minutes=14, seconds=59))
    pair = logged_in_pair(store=MemoryContactStore([old]), retention=180)
    assert pair.phone.contacts == [old]
    pair.clock.advance(180)
    pair.phone.handle_timer(pair.clock.monotonic())
    assert pair.store.entries == []


def test_upload_goes_in_chunks_and_an_empty_log_is_one_empty_chunk() -> None:
    pair = logged_in_pair()
    assert pair.phone.upload(pair.clock.monotonic()) == 0
    assert pair.run() == [UploadAcknowledged(0, 0)]
    entries = [window_now(pair, f"{i:020d}") for i in range(MAX_UPLOAD_CHUNK + 3)]
    pair = logged_in_pair(store=MemoryContactStore(entries))
    pair.phone.upload(pair.clock.monotonic())
    assert pair.run() == [UploadAcknowledged(len(entries), len(entries))]
    assert len(pair.side.check_store.uploads[0]) == len(entries)


def test_an_upload_past_the_limit_is_refused_and_the_phone_stays_logged_in() -> None:
    limit = 2 * MAX_UPLOAD_CHUNK
    side = ServerSide(limits=Limits(max_upload_entries=limit))
    now = side.clock.wall()
    entries = [
        TempIDWindow(f"{i:020d}", now, now + timedelta(minutes=14, seconds=59))
        for i in range(limit + 1)
    ]
    pair = logged_in_pair(side=side, store=MemoryContactStore(entries))
    pair.phone.upload(pair.clock.monotonic())
    (event,) = pair.run()
    assert isinstance(event, UploadRefused)
    assert event.code is ErrorCode.TOO_LARGE
    assert pair.phone.state is PhoneState.LOGGED_IN
    assert side.check_store.uploads == []
    pair.phone.request_tempid(pair.clock.monotonic())
    assert isinstance(pair.run()[0], TempIDIssued)


def test_a_server_that_stops_answering_is_given_up_on() -> None:
    pair = logged_in_pair()
    pair.phone.request_tempid(pair.clock.monotonic())
    pair.phone.data_to_send()  # lost on the way: the server never hears it
    pair.clock.advance(pair.phone.reply_timeout)
    pair.phone.handle_timer(pair.clock.monotonic())
    (event,) = pair.phone.next_events()
    assert isinstance(event, ConnectionClosed)
    assert "did not answer" in event.reason


def test_server_errors_keep_the_session() -> None:
    pair = logged_in_pair()
    pair.side.tempid_store.fail_append = True
    pair.phone.request_tempid(pair.clock.monotonic())
    (event,) = pair.run()
    assert isinstance(event, ServerError)
    assert event.code is ErrorCode.STORAGE
    assert pair.phone.state is PhoneState.LOGGED_IN
    assert not pair.phone.busy


def test_an_unwritable_contact_log_is_reported_and_the_phone_goes_on() -> None:
    store = MemoryContactStore()
    pair = logged_in_pair(store=store)
    store.fail = True
    pair.phone.receive_beacon(encode_beacon(window_now(pair)), SENDER, pair.clock.monotonic())
    kinds = [type(event).__name__ for event in pair.phone.next_events()]
    assert kinds == ["BeaconAccepted", "StoreFailed"]
    assert pair.phone.contacts == []


def _beacons(pair: ConnectionPair, count: int, first: int = 0) -> list[TempIDWindow]:
    windows = []
    for i in range(first, first + count):
        window = window_now(pair, f"{i:020d}")
        pair.phone.receive_beacon(encode_beacon(window), SENDER, pair.clock.monotonic())
        windows.append(window)
    return windows


def test_a_full_log_keeps_the_newest_contacts_and_says_so_once() -> None:
    pair = logged_in_pair(retention=180)
    pair.phone.max_contacts = 2
    windows = _beacons(pair, 5)
    kinds = [type(event).__name__ for event in pair.phone.next_events()]
    assert kinds == ["BeaconAccepted"] * 2 + ["ContactLogFull"] + ["BeaconAccepted"] * 3
    assert pair.phone.contacts == windows[-2:]
    pair.advance(1.0)  # the batched rewrite drops the pushed-out lines from the file
    assert pair.store.entries == windows[-2:]
    pair.phone.upload(pair.clock.monotonic())
    assert pair.run() == [UploadAcknowledged(2, 2, 3)]


def test_fullness_is_told_again_only_after_the_log_had_room() -> None:
    pair = logged_in_pair(retention=10)
    pair.phone.max_contacts = 2
    _beacons(pair, 4)
    pair.clock.advance(5)
    _beacons(pair, 3, first=10)  # still full: not told again
    kinds = [type(event).__name__ for event in pair.phone.next_events()]
    assert kinds.count("ContactLogFull") == 1
    events = pair.advance(10)  # everything expires: the episode is over
    assert pair.phone.contacts == []
    assert pair.phone.left_out(pair.clock.monotonic()) == 0  # they would have expired too
    _beacons(pair, 3, first=20)
    kinds = [type(event).__name__ for event in events + pair.phone.next_events()]
    assert kinds.count("ContactLogFull") == 1
    assert pair.phone.left_out(pair.clock.monotonic()) == 1


def test_a_log_over_the_cap_at_login_keeps_its_newest_entries() -> None:
    entries = [
        TempIDWindow(f"{i:020d}", START, START + timedelta(minutes=14, seconds=59))
        for i in range(5)
    ]
    store = MemoryContactStore(entries)
    pair = ConnectionPair(store=store)
    pair.phone.max_contacts = 3
    pair.phone.login(ALICE, USERS[ALICE], pair.clock.monotonic())
    logged_in = [event for event in pair.run() if isinstance(event, LoggedIn)]
    assert logged_in[0].contacts_loaded == 3
    assert "2 oldest are left out" in logged_in[0].problems[0]
    assert pair.phone.contacts == entries[2:]
    pair.advance(1.0)
    assert store.entries == entries[2:]
    pair.phone.upload(pair.clock.monotonic())
    assert pair.run() == [UploadAcknowledged(3, 3, 2)]


def test_auto_refresh_asks_for_a_new_tempid_before_expiry() -> None:
    pair = ConnectionPair()
    pair.phone.refresh_before = 60
    pair.phone.login(ALICE, USERS[ALICE], pair.clock.monotonic())
    pair.run()
    pair.phone.request_tempid(pair.clock.monotonic())
    (first,) = pair.run()
    assert isinstance(first, TempIDIssued)
    assert pair.phone.get_timer() == pair.clock.monotonic() + 900 - 60
    events = pair.advance(900 - 60)
    assert len(events) == 1
    assert isinstance(events[0], TempIDIssued)
    assert events[0].window.tempid != first.window.tempid
    assert events[0].window.start == first.window.expiry - timedelta(seconds=59)


def test_a_long_flood_keeps_the_left_out_count_in_bounded_memory() -> None:
    pair = logged_in_pair(retention=10)
    pair.phone.max_contacts = 1
    for i in range(5_000):  # 50 s of 100 beacons a second: five retentions
        pair.clock.advance(0.01)
        window = window_now(pair, f"{i:020d}")
        pair.phone.receive_beacon(encode_beacon(window), SENDER, pair.clock.monotonic())
    assert len(pair.phone._pushed_out) <= LEFT_OUT_RUNS + 1
    # those of the last 10 s, less the one the log holds, to within a run's width
    assert 998 <= pair.phone.left_out(pair.clock.monotonic()) <= 1_000


@pytest.mark.parametrize("logged_in", [False, True])
def test_bytes_after_the_end_of_the_stream_are_a_host_error(logged_in: bool) -> None:
    pair = logged_in_pair() if logged_in else ConnectionPair()
    now = pair.clock.monotonic()
    pair.phone.receive_data(b"", now)
    pair.phone.receive_data(b"", now)  # saying it again is harmless
    with pytest.raises(DataAfterEndError, match="after the end of the stream"):
        pair.phone.receive_data(encode(LogoutReply()), now)
