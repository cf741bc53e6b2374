"""contact_checks.txt is all or nothing: whole committed uploads, whatever
instant a crash comes at."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bluetrace.runtime.storage import CheckLog, recover_checks
from tests.helpers import committed_blocks

LEGACY = (
    b"13/05/2020 17:45:06 +61410888888 12345678901234567890 "
    b"13/05/2020 17:45:06 13/05/2020 18:00:05 unknown\n"
)


def _check_lines(block: int, count: int) -> list[str]:
    return [
        f"14/05/2020 18:00:{block % 60:02d} +6141{block:07d} {line:020d} "
        "13/05/2020 17:45:06 13/05/2020 18:00:05 +61410777777"
        for line in range(count)
    ]


def test_uploads_are_written_as_committedcommitted_blocks(tmp_path: Path) -> None:
    path = tmp_path / "contact_checks.txt"
    path.write_bytes(LEGACY + LEGACY[:-1])  # an old file with no final newline
    log = CheckLog(path)
    log.append_upload(_check_lines(1, 3))
    log.append_upload([])
    log.append_upload(_check_lines(2, 1))
    log.sync()
    log.close()
    data = path.read_bytes()
    assert data.startswith(LEGACY + LEGACY[:-1] + b"\nbegin 3\n")
    assert committed_blocks(data) == [_check_lines(1, 3), _check_lines(2, 1)]
    assert recover_checks(path) is None
    assert path.read_bytes() == data


def test_crlf_file_keeps_crlf(tmp_path: Path) -> None:
    path = tmp_path / "contact_checks.txt"
    path.write_bytes(LEGACY.replace(b"\n", b"\r\n"))
    log = CheckLog(path)
    log.append_upload(_check_lines(1, 2))
    log.close()
    data = path.read_bytes()
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert committed_blocks(data) == [_check_lines(1, 2)]
    assert recover_checks(path) is None


def test_a_line_end_inside_a_record_is_refused(tmp_path: Path) -> None:
    log = CheckLog(tmp_path / "contact_checks.txt")
    with pytest.raises(ValueError, match="line end"):
        log.append_upload(["one\ntwo"])
    log.close()


def test_failed_write_leaves_the_file_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "contact_checks.txt"
    log = CheckLog(path)
    log.append_upload(_check_lines(1, 2))
    before = path.read_bytes()
    real_write = os.write

    def half_then_fail(fd: int, data: bytes) -> int:
        real_write(fd, bytes(data[:40]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_fail)
    with pytest.raises(OSError, match="No space"):
        log.append_upload(_check_lines(2, 5))
    monkeypatch.undo()
    log.close()
    assert path.read_bytes() == before


@given(
    st.lists(st.integers(1, 4), min_size=1, max_size=4),
    st.booleans(),
    st.booleans(),
    st.data(),
)
def test_recovery_keeps_exactly_the_whole_blocks_before_any_cut(
    sizes: list[int], legacy: bool, crlf: bool, data: st.DataObject
) -> None:
    import tempfile  # noqa: PLC0415 (hypothesis cannot use the tmp_path fixture)

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "contact_checks.txt"
        prefix = LEGACY if legacy else b""
        path.write_bytes(prefix.replace(b"\n", b"\r\n") if crlf else prefix)
        if crlf and not legacy:
            path.write_bytes(b"\r\n")  # makes the writer choose CRLF
        log = CheckLog(path)
        boundaries = [path.stat().st_size]
        for number, size in enumerate(sizes):
            log.append_upload(_check_lines(number, size))
            boundaries.append(path.stat().st_size)
        log.close()
        whole = path.read_bytes()
        cut = data.draw(st.integers(boundaries[0], len(whole)), label="cut")
        path.write_bytes(whole[:cut])
        message = recover_checks(path)
        kept = max(boundary for boundary in boundaries if boundary <= cut)
        assert path.read_bytes() == whole[:kept]
        assert (message is None) == (kept == cut)
        if message is not None:
            assert "\n" not in message
            assert str(path) in message
        assert recover_checks(path) is None


def test_missing_or_empty_file_needs_no_recovery(tmp_path: Path) -> None:
    assert recover_checks(tmp_path / "contact_checks.txt") is None
    (tmp_path / "contact_checks.txt").write_bytes(b"")
    assert recover_checks(tmp_path / "contact_checks.txt") is None


_WRITER = """
import sys
from pathlib import Path
from bluetrace.runtime.storage import CheckLog
path, lines = Path(sys.argv[1]), int(sys.argv[2])
body = [f"14/05/2020 18:00:00 +61410888888 {n:020d} 13/05/2020 17:45:06 13/05/2020 18:00:05 unknown"
        for n in range(lines)]
log = CheckLog(path)
block = int(sys.argv[3])
while True:
    log.append_upload([f"upload {block}"] + body)
    print(block, flush=True)
    block += 1
"""


def test_sigkill_at_random_instants_leaves_only_whole_committed_uploads(tmp_path: Path) -> None:
    path = tmp_path / "contact_checks.txt"
    rng = random.Random()
    acknowledged: list[int] = []
    cuts = 0
    next_block = 0
    for kill in range(8):  # five kills, more (up to eight) until one tore a block
        if kill >= 5 and cuts:
            break
        size_before = path.stat().st_size if path.exists() else 0
        target = size_before + rng.randrange(1, 24) * 1_000_000 + rng.randrange(100_000)
        child = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path), "40000", str(next_block)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and child.poll() is None:
                if path.exists() and path.stat().st_size >= target:
                    break
                time.sleep(0.0005)
            child.send_signal(signal.SIGKILL)
        finally:
            child.kill()
            out, _ = child.communicate(timeout=10)
        assert child.returncode == -signal.SIGKILL
        done = [int(line) for line in out.split()]
        message = recover_checks(path)
        cuts += message is not None
        uploads = committed_blocks(path.read_bytes())  # raises if anything is torn
        numbers = [int(upload[0].split()[1]) for upload in uploads]
        assert numbers == list(range(len(numbers)))
        assert set(acknowledged + done) <= set(numbers)
        acknowledged += done
        next_block = len(numbers)
    assert acknowledged, "the writer never completed an upload"
    assert cuts >= 1, "no kill landed inside a write: the test did not test recovery"
