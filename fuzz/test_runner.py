"""``python -m fuzz`` says what it does and sums up, under either engine.

atheris may not be installed, so its path is driven by a stand-in worker that
prints what libFuzzer prints; the hypothesis path runs for real, briefly.
"""

import argparse
import sys
from pathlib import Path

import pytest

from fuzz.__main__ import build_parser, main, run_atheris
from fuzz.replay import main as replay
from fuzz.targets import BEACONS, FRAMES

FAKE_LIBFUZZER = r"""
import sys, pathlib
err = sys.stderr
err.write('WARNING: Failed to find function "__sanitizer_acquire_crash_state".\n')
err.write("#2\tINITED cov: 298 ft: 798 corp: 57/2312b exec/s: 0 rss: 67Mb\n")
err.write("#16384\tpulse  cov: 301 ft: 866 corp: 60/2400b lim: 4 exec/s: 5461 rss: 70Mb\n")
err.write(" === Uncaught Python exception: ===\n")
err.write("AssertionError: round trip differs\n")
err.write("Traceback (most recent call last):\n")
prefix = [a for a in sys.argv if a.startswith("-artifact_prefix=")][0].split("=", 1)[1]
pathlib.Path(prefix, "crash-0123").write_bytes(b"\x01bad")
err.write("Done 16400 runs in 3 second(s)\n")
sys.exit(1)
"""


def test_atheris_output_is_condensed_and_summed_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    worker = tmp_path / "worker.py"
    worker.write_text(FAKE_LIBFUZZER)
    args = build_parser().parse_args(
        [
            "--runs", "16400",
            "--corpus", str(tmp_path / "corpus"),
            "--crashes", str(tmp_path / "crashes"),
            "--log", str(tmp_path / "fuzz.log"),
        ]
    )  # fmt: skip
    args.crashes.mkdir()
    status, runs = run_atheris(args, [sys.executable, str(worker)])
    out = capsys.readouterr().out
    assert (status, runs) == (1, 16400)
    assert "__sanitizer" not in out  # kept in the log only
    assert "__sanitizer" in (tmp_path / "fuzz.log").read_text()
    assert "57 interesting inputs loaded" in out
    assert "a target raised AssertionError: round trip differs" in out
    assert (tmp_path / "crashes" / "crash-0123").exists()


def test_hypothesis_engine_announces_and_sums_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "--engine", "hypothesis",
            "--runs", "200",
            "--corpus", str(tmp_path / "corpus"),
            "--crashes", str(tmp_path / "crashes"),
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "fuzz: targets: frame decoder" in out
    assert "failing inputs go to" in out
    assert "replayed 10 stored inputs: 0 failed" in out  # the seed corpus
    assert out.splitlines()[-1].startswith("fuzz: 210 runs in ")
    assert "0 new failing inputs, corpus 0 files" in out


def test_a_failing_stored_input_is_reported_and_fails_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(data: bytes) -> None:
        raise ValueError("boom")

    monkeypatch.setattr("fuzz.__main__.check_input", broken)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "one").write_bytes(bytes([FRAMES]))
    code = main(
        [
            "--engine", "hypothesis",
            "--runs", "10",
            "--corpus", str(corpus),
            "--seeds", str(tmp_path / "none"),
            "--crashes", str(tmp_path / "crashes"),
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 1
    assert "FAILED on" in out
    assert "ValueError: boom" in out


def test_replay_says_pass_or_where_it_failed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "good"
    good.write_bytes(bytes([BEACONS]) + b"\x00" * 10)  # too short: a clean ProtocolError
    assert replay([str(good)]) == 0
    assert "beacon parser passes" in capsys.readouterr().out
    assert replay([str(tmp_path / "missing")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_engine_atheris_without_atheris_is_one_clear_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    assert main(["--engine", "atheris"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "atheris is not installed" in err


def test_every_option_has_help() -> None:
    parser: argparse.ArgumentParser = build_parser()
    for action in parser._actions:
        assert action.help, action.option_strings


def test_hypothesis_failure_saves_the_shrunk_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def fussy(data: bytes) -> None:
        assert len(data) < 3, "three bytes or more"

    monkeypatch.setattr("fuzz.__main__.check_beacon", fussy)
    crashes = tmp_path / "crashes"
    code = main(
        [
            "--engine", "hypothesis",
            "--runs", "400",
            "--corpus", str(tmp_path / "corpus"),
            "--seeds", str(tmp_path / "none"),
            "--crashes", str(crashes),
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 1
    assert "beacon parser FAILED: AssertionError: three bytes or more" in out
    (saved,) = crashes.iterdir()
    assert saved.read_bytes() == bytes([BEACONS]) + b"\x00\x00\x00"  # shrunk
    assert "1 new failing input," in out
