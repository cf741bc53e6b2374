"""Fuzz targets for the two parsers a peer can reach: frames and beacons.

Under pytest these are ordinary hypothesis properties. Run as a script, they
go to atheris (coverage guided) through hypothesis's ``fuzz_one_input``,
seeded from ``fuzz/corpus``; without atheris the script runs the same
properties for many more examples than the test suite does.

Invariant: the parsers return messages or raise ProtocolError, nothing else,
and the frame decoder never holds more than one header plus the body limit.
"""

import itertools
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bluetrace import wire
from bluetrace.errors import ProtocolError
from bluetrace.framing import FrameDecoder
from bluetrace.messages import decode_beacon, encode, encode_beacon

SMALL_LIMIT = 4096
"""A lower cap than the default so the fuzzer reaches the limit check often."""


def _check_stream(data: bytes, cuts: list[int]) -> None:
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


def _check_beacon(data: bytes) -> None:
    try:
        window = decode_beacon(data)
    except ProtocolError:
        return
    assert encode_beacon(window) == data


@given(st.binary(max_size=8192), st.lists(st.integers(0, 2**16), max_size=16))
def test_frame_decoder(data: bytes, cuts: list[int]) -> None:
    _check_stream(data, cuts)


@given(st.binary(min_size=0, max_size=80))
def test_beacon_parser(data: bytes) -> None:
    _check_beacon(data)


def _atheris_input(data: bytes) -> None:
    """Raw fuzzer bytes: the first picks the parser, the rest is the input."""
    if not data:
        return
    if data[0] & 1:
        _check_beacon(data[1:])
    else:
        _check_stream(data[1:], list(data[1:9]))


def main(argv: list[str]) -> None:
    try:
        import atheris  # noqa: PLC0415
    except ImportError:
        runs = next(
            (int(arg.split("=", 1)[1]) for arg in argv if arg.startswith("-runs=")), 100_000
        )
        print(f"atheris not installed: {runs} hypothesis examples per target instead", flush=True)
        many = settings(max_examples=runs, deadline=None, suppress_health_check=list(HealthCheck))
        for target in (test_frame_decoder, test_beacon_parser):
            many(target)()
        print("no failure", flush=True)
        return
    corpus = [arg for arg in argv[1:] if not arg.startswith("-")]
    for folder in corpus:
        Path(folder).mkdir(parents=True, exist_ok=True)
    atheris.instrument_all()
    atheris.Setup(argv, _atheris_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
