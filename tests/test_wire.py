"""The wire format: round trips, exact sizes, and every rejection rule."""

from datetime import datetime
from typing import Any

import pytest
from construct import ConstructError
from hypothesis import example, given
from hypothesis import strategies as st

from bluetrace.protocol import wire
from bluetrace.protocol.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from bluetrace.protocol.messages import (
    ErrorReply,
    LoginReply,
    LoginRequest,
    LogoutRequest,
    Message,
    TempIDReply,
    TempIDRequest,
    TempIDWindow,
    UploadReply,
    UploadRequest,
    decode,
    decode_beacon,
    decode_body,
    encode,
    encode_beacon,
)
from bluetrace.protocol.wire import MessageType
from tests.strategies import messages, windows

SAMPLE = TempIDWindow(
    "12345678901234567893", datetime(2020, 5, 14, 17, 54, 6), datetime(2020, 5, 14, 18, 9, 5)
)
SAMPLE_BEACON = b"1234567890123456789314/05/2020 17:54:0614/05/2020 18:09:05\x01"


def test_sample_beacon_is_the_specified_59_bytes() -> None:
    assert encode_beacon(SAMPLE) == SAMPLE_BEACON
    assert len(SAMPLE_BEACON) == wire.BEACON_LEN == 59
    assert decode_beacon(SAMPLE_BEACON) == SAMPLE


@given(windows)
@example(
    TempIDWindow("00000000000000000000", datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59))
)
@example(SAMPLE)
def test_beacon_round_trip(window: TempIDWindow) -> None:
    data = encode_beacon(window)
    assert len(data) == 59
    assert decode_beacon(data) == window
    assert encode_beacon(decode_beacon(data)) == data


@given(messages)
@example(LoginRequest("+61410888888", "comp3331"))
@example(UploadRequest((SAMPLE,) * wire.MAX_UPLOAD_CHUNK, final=True))
@example(UploadRequest((), final=True))
def test_message_round_trip(message: Message) -> None:
    frame = encode(message)
    assert decode(frame) == message
    assert encode(decode(frame)) == frame
    assert int.from_bytes(frame[2:6], "big") == len(frame) - wire.FRAME_HEADER_LEN


@given(st.binary(max_size=200))
@example(SAMPLE_BEACON[:-1] + b"\x02")
@example(SAMPLE_BEACON + b"\x00")
@example(SAMPLE_BEACON[:-1] + b"1")
def test_beacon_parser_raises_only_protocol_error(data: bytes) -> None:
    try:
        window = decode_beacon(data)
    except ProtocolError:
        return
    # A phone reads the digit 1 as version 1 but always sends the binary 1.
    assert data[-1] in (0x01, 0x31)
    assert encode_beacon(window) == data[:-1] + b"\x01"


def test_beacon_version_digit_one_is_heard_and_binary_one_is_sent() -> None:
    window = decode_beacon(SAMPLE_BEACON[:-1] + b"1")
    assert window == decode_beacon(SAMPLE_BEACON)
    assert encode_beacon(window)[-1] == 0x01


@given(st.binary(max_size=300))
def test_frame_parser_raises_only_protocol_error(data: bytes) -> None:
    try:
        message = decode(data)
    except ProtocolError:
        return
    assert encode(message) == data


@pytest.mark.parametrize(
    ("datagram", "why"),
    [
        (SAMPLE_BEACON[:-1] + b"\x02", "version other than 1"),
        (SAMPLE_BEACON[:-1] + b"2", "the ASCII digit 2 as the version"),
        (SAMPLE_BEACON[:-1] + b"\x00", "version 0"),
        (SAMPLE_BEACON[:-1], "58 bytes"),
        (SAMPLE_BEACON + b"\x00", "trailing byte"),
        (b"1234567890123456789a" + SAMPLE_BEACON[20:], "letter in the TempID"),
        (b"+234567890123456789" + b"3" + SAMPLE_BEACON[20:], "sign in the TempID"),
        (SAMPLE_BEACON.replace(b"14/05/2020 17", b"31/02/2020 17"), "31 February"),
        (SAMPLE_BEACON.replace(b"17:54:06", b"24:54:06"), "hour 24"),
        (SAMPLE_BEACON.replace(b"14/05/2020 18", b"14/05/0000 18"), "year 0"),
        (SAMPLE_BEACON.replace(b"14/05/2020 17", b"14-05-2020 17"), "dashes"),
        (SAMPLE_BEACON.replace(b"17:54:06", b"17:54:\xff6"), "non-ASCII byte"),
        (b"", "empty"),
    ],
)
def test_beacon_rejections(datagram: bytes, why: str) -> None:
    with pytest.raises(RemoteProtocolError):
        decode_beacon(datagram)


def _frame(kind: int, body: bytes, *, version: int = 1, length: int | None = None) -> bytes:
    size = len(body) if length is None else length
    return bytes([version, kind]) + size.to_bytes(4, "big") + body


@pytest.mark.parametrize(
    ("frame", "why"),
    [
        (_frame(0x04, b"", version=2), "frame version 2"),
        (_frame(0x06, b""), "unknown type tag"),
        (_frame(0x04, b"x"), "body on an empty message"),
        (encode(LogoutRequest()) + b"x", "trailing byte after the frame"),
        (_frame(0x04, b"", length=1), "length beyond the data"),
        (_frame(0x01, b"\x02ab\x01"), "login truncated"),
        (_frame(0x01, b"\x02a b\x01x"), "space in a username"),
        (_frame(0x01, b"\x00\x01x"), "empty username"),
        (_frame(0x01, b"\x02\xc3\x28\x01x"), "invalid UTF-8"),
        (_frame(0x01, b"\x02a\x07\x01x"), "control character"),
        (_frame(0x81, b"\x09"), "unknown login status"),
        (_frame(0xFF, b"\x63\x00\x00"), "unknown error code"),
        (_frame(0x03, b"\x02\x00\x00"), "undefined upload flag"),
        (_frame(0x03, b"\x01\x04\x01"), "upload count above the chunk cap"),
        (_frame(0x03, b"\x01\x00\x02" + SAMPLE_BEACON[:58]), "fewer entries than counted"),
        (_frame(0x82, SAMPLE_BEACON[:57]), "short TempID grant"),
    ],
)
def test_frame_rejections(frame: bytes, why: str) -> None:
    with pytest.raises(RemoteProtocolError):
        decode(frame)


def test_error_names_the_problem_in_one_line() -> None:
    with pytest.raises(RemoteProtocolError, match=r"^unknown message type 0x06$") as caught:
        decode(_frame(0x06, b""))
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "build",
    [
        lambda: TempIDWindow("123", SAMPLE.start, SAMPLE.expiry),
        lambda: TempIDWindow("1234567890123456789٣", SAMPLE.start, SAMPLE.expiry),
        lambda: TempIDWindow(SAMPLE.tempid, SAMPLE.start.replace(microsecond=5), SAMPLE.expiry),
        lambda: LoginRequest("has space", "pw"),
        lambda: LoginRequest("x" * 256, "pw"),
        lambda: UploadReply(-1),
        lambda: UploadRequest((SAMPLE,) * (wire.MAX_UPLOAD_CHUNK + 1), final=True),
        lambda: ErrorReply(wire.ErrorCode.MALFORMED, "x" * (wire.MAX_ERROR_TEXT_LEN + 1)),
    ],
)
def test_invalid_messages_cannot_be_built(build: object) -> None:
    with pytest.raises(LocalProtocolError):
        build()  # type: ignore[operator]


def test_password_is_kept_out_of_repr() -> None:
    assert "comp3331" not in repr(LoginRequest("+61410888888", "comp3331"))


def test_small_messages_have_fixed_sizes() -> None:
    assert len(encode(TempIDRequest())) == 6
    assert len(encode(LoginReply(wire.LoginStatus.OK))) == 7
    assert len(encode(TempIDReply(SAMPLE))) == 6 + 58
    assert len(encode(UploadRequest((SAMPLE,) * wire.MAX_UPLOAD_CHUNK, final=False))) == (
        6 + wire.MAX_FRAME_BODY
    )


def _plain_or_error(data: bytes) -> Any:
    try:
        return wire.Beacon.parse(data)
    except ConstructError:
        return "rejected"


@given(
    st.one_of(st.binary(min_size=59, max_size=59), windows.map(encode_beacon)),
    st.integers(0, 58),
    st.integers(0, 255),
)
@example(SAMPLE_BEACON, 0, 0x31)
def test_fast_beacon_parser_agrees_with_the_plain_one(data: bytes, index: int, value: int) -> None:
    mutated = data[:index] + bytes([value]) + data[index + 1 :]
    for candidate in (data, mutated):
        expected = _plain_or_error(candidate)
        try:
            got: object = decode_beacon(candidate)
        except ProtocolError:
            got = "rejected"
        if expected == "rejected":
            assert got == "rejected"
        else:
            assert isinstance(got, TempIDWindow)
            assert (got.tempid, got.start, got.expiry) == (
                expected.tempid,
                expected.start,
                expected.expiry,
            )


def _plain_frame(data: bytes) -> object:
    try:
        parsed = wire.Frame.parse(data)
    except ConstructError:
        return "rejected"
    return [(e.tempid, e.start, e.expiry) for e in parsed.body.entries], parsed.body.final


@given(
    st.lists(windows, max_size=5).map(tuple),
    st.booleans(),
    st.integers(0, 400),
    st.integers(0, 255),
)
def test_fast_upload_parser_agrees_with_the_plain_one(
    entries: tuple[TempIDWindow, ...], final: bool, index: int, value: int
) -> None:
    frame = encode(UploadRequest(entries, final))
    mutated = bytearray(frame)
    if mutated:
        mutated[index % len(mutated)] = value
    for candidate in (frame, bytes(mutated)):
        expected = _plain_frame(candidate)
        try:
            message = decode(candidate)
        except ProtocolError:
            assert expected == "rejected"
            continue
        if isinstance(message, UploadRequest):
            got = [(e.tempid, e.start, e.expiry) for e in message.entries], message.final
            assert got == expected
        else:
            assert expected != "rejected"


@given(st.binary(max_size=600))
@example(b"\x0c+61410888888\x08comp3331")
@example(b"\x01a\x01b")
@example(b"\x01\xff\x01b")
@example(b"\x01a\x01 ")
def test_the_login_fast_path_agrees_with_construct(body: bytes) -> None:
    """decode_body's LOGIN path gives what wire.LoginBody gives, or refuses."""
    try:
        parsed = wire.LoginBody.parse(body)
        expected: tuple[str, str] | None = (parsed.username, parsed.password)
    except ConstructError:
        expected = None
    try:
        message = decode_body(MessageType.LOGIN, body)
    except ProtocolError:
        assert expected is None
        return
    assert isinstance(message, LoginRequest)
    assert (message.username, message.password) == expected
