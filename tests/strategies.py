"""Hypothesis strategies built from the message types, shared by tests and fuzz."""

from datetime import datetime

from hypothesis import strategies as st

from bluetrace.protocol import wire
from bluetrace.protocol.messages import (
    ErrorReply,
    LoginReply,
    LoginRequest,
    LogoutReply,
    LogoutRequest,
    Message,
    TempIDReply,
    TempIDRequest,
    TempIDWindow,
    UploadReply,
    UploadRequest,
)
from bluetrace.protocol.timefmt import format_timestamp

tempids = st.text(alphabet="0123456789", min_size=20, max_size=20)
timestamps = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)
).map(lambda moment: moment.replace(microsecond=0))
windows = st.builds(TempIDWindow, tempids, timestamps, timestamps)

_visible = st.characters(
    codec="utf-8", exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp")
)
credentials = st.text(_visible, min_size=1, max_size=40).filter(
    lambda text: len(text.encode("utf-8")) <= wire.MAX_TEXT_LEN
)
error_texts = st.text(st.one_of(_visible, st.just(" ")), max_size=60)

messages: st.SearchStrategy[Message] = st.one_of(
    st.builds(LoginRequest, credentials, credentials),
    st.builds(LoginReply, st.sampled_from(wire.LoginStatus)),
    st.just(TempIDRequest()),
    st.builds(TempIDReply, windows),
    st.builds(
        UploadRequest,
        st.lists(windows, max_size=8).map(tuple),
        st.booleans(),
    ),
    st.builds(UploadReply, st.integers(0, 2**32 - 1)),
    st.just(LogoutRequest()),
    st.just(LogoutReply()),
    st.builds(ErrorReply, st.sampled_from(wire.ErrorCode), error_texts),
)

_interesting_bytes = st.one_of(
    st.sampled_from(b"0123456789/: \x00\x01\x02\x031\xff\x80"), st.integers(0, 255)
)


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[bytes], most: int = 3) -> bytes:
    """``base`` bytes with up to ``most`` bytes replaced, and sometimes cut or
    extended by one: inputs that are almost valid, where a second reader of
    the format is most likely to disagree with the first."""
    data = bytearray(draw(base))
    for _ in range(draw(st.integers(0, most))):
        if data:
            data[draw(st.integers(0, len(data) - 1))] = draw(_interesting_bytes)
    cut = draw(st.sampled_from(["keep", "keep", "keep", "shorten", "extend"]))
    if cut == "shorten" and data:
        del data[-1]
    elif cut == "extend":
        data.append(draw(_interesting_bytes))
    return bytes(data)


stamp_texts = st.one_of(
    timestamps.map(format_timestamp),
    st.text(alphabet="0123456789/: ", min_size=19, max_size=19),
    st.builds(
        "{:02d}/{:02d}/{:04d} {:02d}:{:02d}:{:02d}".format,
        st.integers(0, 40),
        st.integers(0, 14),
        st.integers(0, 9999),
        st.integers(0, 25),
        st.integers(0, 61),
        st.integers(0, 61),
    ),
)
"""Texts shaped like timestamps, valid or nearly."""
