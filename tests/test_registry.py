"""The compact TempID registry behaves as the dict it replaces."""

import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bluetrace.server import records
from bluetrace.server.records import load_tempids
from bluetrace.server.registry import TempIDRegistry
from tests.harness import SAMPLES
from tests.strategies import tempids

_phones = st.sampled_from(["+61410888888", "+61410777777", "alice", "bé"])
_not_tempids = st.one_of(
    st.text(max_size=25).filter(lambda text: not (len(text) == 20 and text.isdecimal())),
    st.sampled_from(["1234567890123456789٣", " 1234567890123456789", "1_234567890123456789"]),
)


@given(st.lists(st.tuples(tempids, _phones), max_size=40), st.lists(tempids, max_size=10))
def test_same_answers_as_a_dict(pairs: list[tuple[str, str]], probes: list[str]) -> None:
    registry = TempIDRegistry()
    reference: dict[str, str] = {}
    for tempid, phone in pairs:
        registry[tempid] = phone
        reference[tempid] = phone
    assert len(registry) == len(reference)
    assert dict(registry.items()) == reference
    assert sorted(registry) == sorted(reference)
    for tempid in [*probes, *(tempid for tempid, _ in pairs)]:
        assert registry.get(tempid) == reference.get(tempid)
        assert (tempid in registry) == (tempid in reference)
        if tempid in reference:
            assert registry[tempid] == reference[tempid]
        else:
            with pytest.raises(KeyError):
                registry[tempid]


def test_leading_zeros_and_the_largest_tempid() -> None:
    registry = TempIDRegistry()
    registry["00000000000000000000"] = "a"
    registry["00000000000000000001"] = "b"
    registry["99999999999999999999"] = "c"
    assert registry.get("00000000000000000000") == "a"
    assert "0" * 19 not in registry
    assert sorted(registry) == ["00000000000000000000", "00000000000000000001", "9" * 20]
    del registry["00000000000000000001"]
    assert len(registry) == 2
    assert registry.get("00000000000000000001", "none") == "none"


@given(_not_tempids)
def test_other_keys_are_never_found_and_cannot_be_stored(key: str) -> None:
    registry = TempIDRegistry()
    registry["12345678901234567890"] = "a"
    assert key not in registry
    assert registry.get(key) is None
    with pytest.raises(ValueError, match="20 decimal digits"):
        registry[key] = "a"


_lines = st.one_of(
    st.builds(
        "{} {} {} {}".format,
        _phones,
        tempids,
        st.sampled_from(["13/05/2020 17:45:06", "29/02/2020 00:00:00", "31/02/2020 00:00:00"]),
        st.sampled_from(["13/05/2020 18:00:05", "29/02/2021 00:00:00", "13/05/2020 24:00:05"]),
    ),
    st.sampled_from(["", "torn li", "# comment", "\xe9 12345678901234567890 x"]),
)


@given(st.lists(_lines, max_size=30), st.sampled_from([b"\n", b"\r\n"]), st.booleans())
def test_loading_into_the_registry_equals_loading_into_a_dict(
    lines: list[str], eol: bytes, final_eol: bool
) -> None:
    data = eol.join(line.encode("utf-8") for line in lines) + (eol if final_eol else b"")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tempIDs.txt"
        path.write_bytes(data)
        registry = TempIDRegistry()
        reference: dict[str, str] = {}
        assert load_tempids(path, registry) == load_tempids(path, reference)
        assert dict(registry.items()) == reference


def test_a_non_utf8_phone_is_reported_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "tempIDs.txt"
    path.write_bytes(
        b"ok 12345678901234567890 13/05/2020 17:45:06 13/05/2020 18:00:05\n"
        b"\xff 12345678901234567891 13/05/2020 17:45:06 13/05/2020 18:00:05\n"
    )
    registry = TempIDRegistry()
    report = load_tempids(path, registry)
    assert report.loaded == 1
    assert report.problems == [f"{path}:2: not UTF-8 text"]


def test_sample_tempids_load_into_the_registry() -> None:
    registry = TempIDRegistry()
    report = load_tempids(SAMPLES / "tempIDs.txt", registry)
    assert report.loaded == 3 == len(registry)
    assert registry.get("12345678901234567891") == "+61410888888"


@given(st.lists(_lines, max_size=30), st.sampled_from([b"\n", b"\r\n"]))
def test_the_block_reading_equals_the_line_by_line_reading(lines: list[str], eol: bytes) -> None:
    data = eol.join(line.encode("utf-8") for line in lines) + eol
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tempIDs.txt"
        path.write_bytes(data)
        fast: dict[str, str] = {}
        fast_report = load_tempids(path, fast)
        slow: dict[str, str] = {}
        original = records._TEMPID_LINES
        records._TEMPID_LINES = re.compile(b"(?!)")  # matches nothing: every block line by line
        try:
            slow_report = load_tempids(path, slow)
        finally:
            records._TEMPID_LINES = original
        assert fast == slow
        assert fast_report == slow_report
