"""The fast codec and the construct definitions are one format.

Over arbitrary messages and arbitrary (mostly almost-valid) bytes, both give
the same messages, the same bytes, and refuse the same inputs.
"""

import pickle
import re
import sys
from datetime import datetime

import pytest
from construct import ConstructError
from hypothesis import example, given
from hypothesis import strategies as st

from bluetrace.bench import codec as codec_bench
from bluetrace.protocol import fastcodec, messages, wire
from bluetrace.protocol.errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from bluetrace.protocol.messages import (
    Message,
    TempIDReply,
    TempIDWindow,
    UploadRequest,
    decode,
    decode_beacon,
    encode,
    encode_beacon,
)
from bluetrace.protocol.timefmt import format_timestamp, is_timestamp_text, parse_timestamp
from tests.strategies import messages as any_message
from tests.strategies import mutated, stamp_texts, windows

SAMPLE = TempIDWindow(
    "12345678901234567893", datetime(2020, 5, 14, 17, 54, 6), datetime(2020, 5, 14, 18, 9, 5)
)
SAMPLE_BEACON = b"1234567890123456789314/05/2020 17:54:0614/05/2020 18:09:05\x01"


def _texts(window: object) -> tuple[str, str, str]:
    """A construct Container or a TempIDWindow as its three texts."""
    return (
        window.tempid,  # type: ignore[attr-defined]
        format_timestamp(window.start),  # type: ignore[attr-defined]
        format_timestamp(window.expiry),  # type: ignore[attr-defined]
    )


def _reference_frame(data: bytes) -> Message | None:
    """What the construct definition alone reads from ``data``."""
    try:
        parsed = wire.Frame.parse(data)
    except ConstructError:
        return None
    return messages._message_from(parsed.type, parsed.body)


# --- timestamps and credentials: the precompiled checks equal the reference


def _real(text: str) -> bool:
    try:
        parse_timestamp(text)
    except ValueError:
        return False
    return True


@given(stamp_texts)
@example("29/02/2000 00:00:00")
@example("29/02/1900 00:00:00")
@example("29/02/0004 00:00:00")
@example("29/02/0000 00:00:00")
@example("31/12/9999 23:59:59")
@example("01/01/0000 00:00:00")
def test_timestamp_regex_accepts_exactly_the_real_moments(text: str) -> None:
    assert is_timestamp_text(text) == _real(text)


@pytest.mark.parametrize("year", [0, 1, 4, 100, 200, 400, 1600, 1900, 2000, 2020, 2023, 2100, 9996])
def test_timestamp_regex_on_every_day_and_month_of_a_year(year: int) -> None:
    for month in range(15):
        for day in range(34):
            text = f"{day:02d}/{month:02d}/{year:04d} 12:00:00"
            assert is_timestamp_text(text) == _real(text), text


def test_the_only_printable_white_space_is_the_space() -> None:
    """What lets wire.is_credential skip the per-character loop."""
    odd = [
        hex(code)
        for code in range(sys.maxunicode + 1)
        if chr(code).isprintable() and chr(code).isspace() and code != 0x20
    ]
    assert odd == []


def _credential_by_construct(text: str) -> bool:
    try:
        wire.Credential.build(text)
    except ConstructError:
        return False
    return True


@given(st.one_of(st.text(), st.text(min_size=60, max_size=300), st.text("aé€😀 \t", max_size=140)))
@example("x" * 255)
@example("x" * 256)
@example("é" * 128)
@example("")
@example("\ufeffalice")
@example("a\u00a0b")
def test_credential_check_equals_the_construct_field(text: str) -> None:
    assert wire.is_credential(text) == _credential_by_construct(text)
    assert (wire.credential_problem(text) is None) == wire.is_credential(text)


# --- beacons


@given(windows)
def test_beacon_bytes_are_the_construct_bytes(window: TempIDWindow) -> None:
    data = encode_beacon(window)
    assert data == wire.Beacon.build({**window._fields(), "version": wire.BEACON_VERSION})
    assert fastcodec.beacon_fields(data) == window.fields_text()


@given(
    st.one_of(
        st.binary(min_size=59, max_size=59),
        mutated(windows.map(encode_beacon)),
        mutated(windows.map(encode_beacon), most=1),
    )
)
@example(SAMPLE_BEACON[:-1] + b"1")
@example(SAMPLE_BEACON[:-1] + b"\x02")
@example(SAMPLE_BEACON.replace(b"14/05/2020 17", b"29/02/2100 17"))
def test_beacon_readers_agree_on_arbitrary_bytes(data: bytes) -> None:
    fast = fastcodec.beacon_fields(data)
    try:
        reference = _texts(wire.Beacon.parse(data))
    except ConstructError:
        assert fast is None
        with pytest.raises(RemoteProtocolError):
            decode_beacon(data)
        return
    assert fast == reference
    assert decode_beacon(data).fields_text() == reference


# --- frames


@given(st.binary(min_size=6, max_size=6))
@example(b"\x01\x03\x00\x00\x00\x00")
@example(b"\x01\x86\x00\x00\x00\x00")
def test_header_readers_agree(data: bytes) -> None:
    try:
        parsed = wire.FrameHeader.parse(data)
    except ConstructError:
        with pytest.raises(RemoteProtocolError):
            fastcodec.read_header(data)
        return
    assert fastcodec.read_header(data) == (parsed.type, parsed.length)


@given(any_message)
@example(UploadRequest((SAMPLE,) * wire.MAX_UPLOAD_CHUNK, final=False))
@example(UploadRequest((), final=True))
def test_encode_gives_the_construct_bytes_and_decode_the_construct_message(
    message: Message,
) -> None:
    frame = encode(message)
    assert frame == messages._build(message)
    assert decode(frame) == message == _reference_frame(frame)


_upload_frames = st.builds(
    UploadRequest, st.lists(windows, max_size=4).map(tuple), st.booleans()
).map(encode)


@given(
    st.one_of(
        mutated(_upload_frames),
        mutated(_upload_frames, most=1),
        mutated(st.builds(TempIDReply, windows).map(encode)),
        mutated(any_message.map(encode)),
        st.binary(max_size=200),
    )
)
def test_frame_readers_agree_on_arbitrary_bytes(data: bytes) -> None:
    reference = _reference_frame(data)
    try:
        got = decode(data)
    except ProtocolError:
        assert reference is None
        return
    assert got == reference


@given(mutated(_upload_frames))
def test_upload_body_readers_agree(data: bytes) -> None:
    body = data[wire.FRAME_HEADER_LEN :]
    fast = fastcodec.upload_fields(body)
    try:
        parsed = wire.UploadBody.parse(body)
    except ConstructError:
        assert fast is None
        return
    assert fast == (parsed.final, [_texts(entry) for entry in parsed.entries])


# --- the window type


def test_window_from_the_wire_equals_one_built_from_datetimes() -> None:
    heard = decode_beacon(SAMPLE_BEACON)
    assert heard == SAMPLE
    assert hash(heard) == hash(SAMPLE)
    assert heard.start == datetime(2020, 5, 14, 17, 54, 6)
    assert heard.expiry == datetime(2020, 5, 14, 18, 9, 5)
    assert heard.contains(datetime(2020, 5, 14, 18, 9, 5))
    assert not heard.contains(datetime(2020, 5, 14, 18, 9, 6))
    assert heard.fields_text() == (
        "12345678901234567893",
        "14/05/2020 17:54:06",
        "14/05/2020 18:09:05",
    )
    assert repr(heard) == repr(SAMPLE)
    assert pickle.loads(pickle.dumps(heard)) == heard  # noqa: S301 (our own bytes)
    assert heard != SAMPLE.fields_text()


def test_window_is_read_only() -> None:
    with pytest.raises(AttributeError):
        SAMPLE.tempid = "00000000000000000000"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        SAMPLE.start = datetime(2020, 1, 1)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("texts", "reason"),
    [
        (("1234", "14/05/2020 17:54:06", "14/05/2020 18:09:05"), "TempID is not 20 decimal digits"),
        (
            ("12345678901234567893", "31/02/2020 17:54:06", "14/05/2020 18:09:05"),
            "start is not a real DD/MM/YYYY HH:MM:SS time: 31/02/2020 17:54:06",
        ),
        (
            ("12345678901234567893", "14/05/2020 17:54:06", "14/05/2020\t18:09:05"),
            r"expiry is not a real DD/MM/YYYY HH:MM:SS time: 14/05/2020\t18:09:05",
        ),
    ],
)
def test_window_from_text_checks(texts: tuple[str, str, str], reason: str) -> None:
    with pytest.raises(LocalProtocolError) as caught:
        TempIDWindow.from_text(*texts)
    assert str(caught.value) == reason


def test_window_from_text_round_trips() -> None:
    assert TempIDWindow.from_text(*SAMPLE.fields_text()) == SAMPLE


# --- error texts: sentences for people, never parser internals


def _frame(kind: int, body: bytes, *, version: int = 1, length: int | None = None) -> bytes:
    size = len(body) if length is None else length
    return bytes([version, kind]) + size.to_bytes(4, "big") + body


@pytest.mark.parametrize(
    ("datagram", "reason"),
    [
        (
            SAMPLE_BEACON[:-1] + b"\x02",
            "beacon version byte is 0x02, expected 0x01 (or the digit 1)",
        ),
        (SAMPLE_BEACON[:-1], "a beacon is 59 bytes, not 58"),
        (b"1234567890123456789a" + SAMPLE_BEACON[20:], "TempID is not 20 decimal digits"),
        (
            SAMPLE_BEACON.replace(b"14/05/2020 17", b"31/02/2020 17"),
            "start is not a real DD/MM/YYYY HH:MM:SS time: 31/02/2020 17:54:06",
        ),
        (
            SAMPLE_BEACON.replace(b"18:09:05", b"18:09:\xff5"),
            r"expiry is not a real DD/MM/YYYY HH:MM:SS time: 14/05/2020 18:09:\xff5",
        ),
    ],
)
def test_beacon_error_texts(datagram: bytes, reason: str) -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        decode_beacon(datagram)
    assert str(caught.value) == reason


_ENTRY = SAMPLE_BEACON[:58]


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (_frame(0x04, b"", version=2), "frame version byte is 0x02, expected 0x01"),
        (_frame(0x86, b""), "unknown message type 0x86"),
        (_frame(0x04, b"x"), "the LOGOUT body has extra bytes after its end"),
        (_frame(0x04, b"", length=0) + b"x", "the LOGOUT frame has 1 byte after its 0-byte body"),
        (_frame(0x04, b"", length=0) + b"xy", "the LOGOUT frame has 2 bytes after its 0-byte body"),
        (_frame(0x04, b"", length=3), "the LOGOUT frame ends after 0 of its 3 body bytes"),
        (b"\x01\x04", "a frame starts with a 6-byte header, not 2 bytes"),
        (_frame(0x01, b"\x02ab\x01"), "the LOGIN body ends in the middle of password"),
        (_frame(0x01, b"\x02ab\x01xy"), "the LOGIN body has extra bytes after its end"),
        (_frame(0x01, b"\x03a b\x01x"), "username holds a space"),
        (_frame(0x01, b"\x00\x01x"), "username is empty"),
        (_frame(0x01, b"\x02\xc3\x28\x01x"), "username is not valid UTF-8"),
        (_frame(0x01, b"\x02ab\x02a\x07"), "password holds a control character U+0007"),
        (_frame(0x81, b"\x09"), "unknown login status 0x09"),
        (_frame(0xFF, b"\x63\x00\x00"), "unknown error code 0x63"),
        (_frame(0x03, b"\x02\x00\x00"), "upload flags byte is 0x02, expected 0x00 or 0x01"),
        (_frame(0x03, b"\x01\x04\x01"), "1025 entries in one chunk, at most 1024"),
        (_frame(0x03, b"\x01\x00\x02" + _ENTRY), "the UPLOAD body ends after 1 of its 2 entries"),
        (
            _frame(0x03, b"\x01\x00\x02" + _ENTRY + _ENTRY.replace(b"17:54", b"17:64")),
            "entry 2: start is not a real DD/MM/YYYY HH:MM:SS time: 14/05/2020 17:64:06",
        ),
        (_frame(0x82, _ENTRY[:57]), "the TEMPID_REPLY body ends in the middle of expiry"),
    ],
)
def test_frame_error_texts(frame: bytes, reason: str) -> None:
    with pytest.raises(RemoteProtocolError) as caught:
        decode(frame)
    assert str(caught.value) == reason


_INTERNALS = ("b'", 'b"', "\n", "Error", "parsing", "(field", "Container", "expected end")


@given(st.one_of(st.binary(max_size=120), mutated(any_message.map(encode))))
def test_no_parser_internals_reach_an_error_text(data: bytes) -> None:
    for action in (decode, decode_beacon):
        try:
            action(data)
        except ProtocolError as exc:
            text = str(exc)
            assert text
            assert not any(word in text for word in _INTERNALS), text


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (lambda: messages.LoginRequest("has space", "pw"), "username holds a space"),
        (lambda: messages.LoginRequest("x" * 256, "pw"), "username is 256 bytes long, at most 255"),
        (lambda: messages.LoginRequest("alice", ""), "password is empty"),
        (lambda: messages.UploadReply(-1), "received does not fit in its field"),
        (
            lambda: TempIDWindow("123", SAMPLE.start, SAMPLE.expiry),
            "TempID is not 20 decimal digits",
        ),
        (lambda: encode_beacon("junk"), "a beacon carries a TempIDWindow"),  # type: ignore[arg-type]
    ],
)
def test_local_error_texts(build: object, reason: str) -> None:
    with pytest.raises(LocalProtocolError) as caught:
        build()  # type: ignore[operator]
    assert str(caught.value) == reason


@pytest.mark.parametrize(
    ("name", "wrong"),
    [
        ("_BEACON", r"[0-9]{20}.{38}[\x01\x31]"),  # takes any timestamp text
        ("_WINDOW", r"([0-9]{19}.)(.{19})(.{19})"),  # takes a letter in the TempID
        ("_FINAL_OK", None),
        ("FRAME_VERSION", None),
    ],
)
def test_import_probes_catch_a_fast_path_that_drifted(
    monkeypatch: pytest.MonkeyPatch, name: str, wrong: str | None
) -> None:
    fastcodec._probe()  # the real one passes
    if name == "_FINAL_OK":
        monkeypatch.setattr(fastcodec, name, frozenset({0, 1, 2}))
    elif name == "FRAME_VERSION":
        monkeypatch.setattr(fastcodec, name, 2)
    else:
        monkeypatch.setattr(fastcodec, name, re.compile(str(wrong)))
    with pytest.raises(ImportError, match="fastcodec disagrees"):
        fastcodec._probe()


def test_the_measuring_function_reports_each_figure(capsys: pytest.CaptureFixture[str]) -> None:
    figures = codec_bench.measure(rounds=2000)
    assert len(figures) == 7
    assert all(value > 0 for value in figures.values())
    assert capsys.readouterr().out.count("\n") == 7
