"""What is fuzzed: the two parsers a peer can reach, frames and beacons.

Invariant: the parsers return messages or raise ProtocolError, nothing else;
whatever parses builds again (a beacon to the very same bytes); the frame
decoder never holds more than one header plus the body limit.

Shared by the hypothesis properties (``fuzz_parser.py``, run by the test
suite) and the coverage-guided runner (``python -m fuzz``).
"""

import itertools

from bluetrace.protocol import wire
from bluetrace.protocol.errors import ProtocolError
from bluetrace.protocol.framing import FrameDecoder
from bluetrace.protocol.messages import decode_beacon, encode, encode_beacon

SMALL_LIMIT = 4096
"""A lower cap than the default so the fuzzer reaches the limit check often."""

FRAMES, BEACONS = 0, 1
"""The first byte of a fuzzer input (and of a corpus file) picks the target."""

NAMES = {FRAMES: "frame decoder", BEACONS: "beacon parser"}


def check_stream(data: bytes, cuts: list[int]) -> None:
    """Feed ``data`` to one decoder in pieces cut at ``cuts``."""
    decoder = FrameDecoder(max_body=SMALL_LIMIT)
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    bounds = [0, *points, len(data)]
    try:
        for start, end in itertools.pairwise(bounds):
            for message in decoder.messages(data[start:end]):
                encode(message)  # whatever parses must build again
            assert decoder.buffered <= wire.FRAME_HEADER_LEN + SMALL_LIMIT
    except ProtocolError:
        pass


def check_beacon(data: bytes) -> None:
    try:
        window = decode_beacon(data)
    except ProtocolError:
        return
    assert encode_beacon(window) == data


def check_input(data: bytes) -> None:
    """One raw fuzzer input: the first byte picks the parser, the rest is the
    input (for frames, its first 8 bytes also say where to cut it)."""
    if not data:
        return
    if data[0] & 1 == BEACONS:
        check_beacon(data[1:])
    else:
        check_stream(data[1:], list(data[1:9]))
