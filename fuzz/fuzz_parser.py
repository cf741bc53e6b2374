"""The fuzz targets as hypothesis properties, run by the test suite.

``python -m fuzz`` runs the same targets for much longer (coverage guided
under atheris when it is installed); this file is kept runnable as a script
with libFuzzer-style options for older command lines, and hands over to it.
"""

import sys
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

if __package__ in (None, ""):  # run as a script: make the checkout importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fuzz.targets import check_beacon, check_stream


@given(st.binary(max_size=8192), st.lists(st.integers(0, 2**16), max_size=16))
def test_frame_decoder(data: bytes, cuts: list[int]) -> None:
    check_stream(data, cuts)


@given(st.binary(min_size=0, max_size=80))
def test_beacon_parser(data: bytes) -> None:
    check_beacon(data)


def _translate(argv: list[str]) -> list[str]:
    """``-runs=N -artifact_prefix=D/ CORPUS SEEDS`` to ``python -m fuzz`` options."""
    out: list[str] = []
    folders = [arg for arg in argv if not arg.startswith("-")]
    for arg in argv:
        if arg.startswith("-runs="):
            out += ["--runs", arg.split("=", 1)[1]]
        elif arg.startswith("-artifact_prefix="):
            out += ["--crashes", arg.split("=", 1)[1]]
        elif arg.startswith("-max_total_time="):
            out += ["--seconds", arg.split("=", 1)[1]]
    if folders:
        out += ["--corpus", folders[0]]
    if len(folders) > 1:
        out += ["--seeds", folders[1]]
    return out


if __name__ == "__main__":
    from fuzz.__main__ import main

    sys.exit(main(_translate(sys.argv[1:])))
