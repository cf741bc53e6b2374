"""The incremental decoder: same messages however the bytes are cut."""

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bluetrace.protocol import wire
from bluetrace.protocol.errors import FrameTooLargeError, ProtocolError, RemoteProtocolError
from bluetrace.protocol.framing import NEED_DATA, FrameDecoder, NeedData
from bluetrace.protocol.messages import LogoutRequest, Message, TempIDRequest, encode
from tests.strategies import messages


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(cut, len(data)) for cut in cuts})
    bounds = [0, *points, len(data)]
    return [data[start:end] for start, end in itertools.pairwise(bounds)]


@given(st.lists(messages, max_size=6), st.lists(st.integers(0, 4000), max_size=12))
def test_same_messages_whole_split_or_byte_by_byte(sent: list[Message], cuts: list[int]) -> None:
    stream = b"".join(encode(message) for message in sent)

    whole = FrameDecoder().messages(stream)

    decoder = FrameDecoder()
    split = [message for chunk in _split(stream, cuts) for message in decoder.messages(chunk)]

    decoder = FrameDecoder()
    single = [
        message for i in range(len(stream)) for message in decoder.messages(stream[i : i + 1])
    ]

    assert whole == split == single == sent
    assert decoder.buffered == 0


@given(messages, st.integers(1, 5))
def test_trailing_partial_frame_waits(message: Message, keep: int) -> None:
    decoder = FrameDecoder()
    tail = encode(TempIDRequest())[:keep]
    assert decoder.messages(encode(message) + tail) == [message]
    assert decoder.next_message() is NEED_DATA
    assert decoder.buffered == keep


@given(st.binary(max_size=2000), st.lists(st.integers(0, 2000), max_size=10))
def test_arbitrary_bytes_give_messages_or_protocol_error(data: bytes, cuts: list[int]) -> None:
    decoder = FrameDecoder(max_body=512)
    try:
        for chunk in _split(data, cuts):
            decoder.messages(chunk)
            assert decoder.buffered <= wire.FRAME_HEADER_LEN + 512
    except ProtocolError:
        with pytest.raises(ProtocolError):
            decoder.feed(b"more")


def test_oversized_header_is_refused_before_the_body_arrives() -> None:
    decoder = FrameDecoder(max_body=100)
    header = bytes([1, 0x03]) + (101).to_bytes(4, "big")
    with pytest.raises(FrameTooLargeError, match="exceeds the limit"):
        decoder.messages(header)
    assert decoder.buffered == 0


def test_default_cap_admits_the_largest_legal_frame_and_no_more() -> None:
    decoder = FrameDecoder()
    header = bytes([1, 0x03]) + (wire.MAX_FRAME_BODY + 1).to_bytes(4, "big")
    with pytest.raises(RemoteProtocolError):
        decoder.messages(header)


def test_error_is_sticky() -> None:
    decoder = FrameDecoder()
    with pytest.raises(RemoteProtocolError):
        decoder.messages(b"\x09" * 6)
    with pytest.raises(RemoteProtocolError):
        decoder.messages(encode(LogoutRequest()))


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (b"\x02\x04\x00\x00\x00\x00", "frame version byte is 0x02, expected 0x01"),
        (b"\x01\x86\x00\x00\x00\x00", "unknown message type 0x86"),
        (b"\x01\x03\x00\x01\x00\x00", "frame body of 65536 bytes exceeds the limit of 59395"),
    ],
)
def test_header_errors_are_sentences_raised_on_the_sixth_byte(header: bytes, reason: str) -> None:
    decoder = FrameDecoder()
    assert decoder.messages(header[:5]) == []
    with pytest.raises(RemoteProtocolError) as caught:
        decoder.messages(header[5:])
    assert str(caught.value) == reason


def test_need_data_has_a_public_type_and_keeps_its_old_name() -> None:
    from bluetrace.protocol import framing  # noqa: PLC0415 (the old private name is the point)

    assert isinstance(NEED_DATA, NeedData)
    assert framing._NeedData is NeedData
