"""bluetrace-sim rules: the published exposure rules applied to per-pair data from a file.

Every expected number below is worked out by hand from the rules' table
(Swiss [50, 55] dB weights 1 / 0.5, >= 15 min; German [55, 63] dB 1 / 0.5,
>= 15 min; Italian [50, 70] dB 1 / 1, > 15 min; below68-10min; below70-15min)
and the bucket rule ``lower <= attenuation < upper``.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from bluetrace.sim import replay
from bluetrace.sim.cli import main
from bluetrace.sim.histograms import ALL_EDGES, AttenuationHistogram
from bluetrace.sim.replay import PairData, evaluate, load_pairs

HEADER = "pair,distance_m,attenuation_db,minutes\n"


def _csv(tmp_path: Path, body: str, header: str = HEADER, name: str = "pairs.csv") -> Path:
    path = tmp_path / name
    path.write_text(header + body)
    return path


def _one(tmp_path: Path, body: str) -> dict[str, float]:
    """Weighted minutes per rule of the single pair in ``body``."""
    report = evaluate(load_pairs(_csv(tmp_path, body)))
    return {o.rule.name: o.weighted[0] for o in report.outcomes}


def _decisions(tmp_path: Path, body: str) -> dict[str, bool]:
    report = evaluate(load_pairs(_csv(tmp_path, body)))
    return {o.rule.name: o.decisions[0] for o in report.outcomes}


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- the rules on single pairs ---------------------------------------------------


def test_16_minutes_at_45_db_notifies_every_rule(tmp_path: Path) -> None:
    # 45 dB is below every edge, so every rule counts it at weight 1: 16 min each,
    # >= 15 (Swiss, German, below70), > 15 (Italian), >= 10 (below68).
    assert _one(tmp_path, "A,1,45,16\n") == {
        "swiss": 16.0, "german": 16.0, "italian": 16.0, "below68-10min": 16.0,
        "below70-15min": 16.0,
    }
    assert all(_decisions(tmp_path, "A,1,45,16\n").values())


def test_15_minutes_at_52_db(tmp_path: Path) -> None:
    # Swiss: 52 is in [50, 55), weight 0.5 -> 7.5 min, no. German: 52 < 55, weight 1
    # -> 15 >= 15, yes. Italian: [50, 70) weight 1 -> 15, not > 15, no.
    weighted = _one(tmp_path, "A,1,52,15\n")
    assert weighted["swiss"] == 7.5
    assert weighted["german"] == 15.0
    assert weighted["italian"] == 15.0
    decided = _decisions(tmp_path, "A,1,52,15\n")
    assert decided == {
        "swiss": False, "german": True, "italian": False, "below68-10min": True,
        "below70-15min": True,
    }


def test_exactly_15_minutes_strict_italian_against_inclusive_swiss(tmp_path: Path) -> None:
    # 15.0 min at 65 dB (below 70): Italian 15 is not > 15; below70-15min 15 >= 15 is.
    at_65 = _decisions(tmp_path, "A,1,65,15.0\n")
    assert at_65["italian"] is False
    assert at_65["below70-15min"] is True
    # 15.0 min at 49 dB (below 50): Swiss 15 >= 15 notifies; Italian still does not.
    at_49 = _decisions(tmp_path, "A,1,49,15.0\n")
    assert at_49["swiss"] is True
    assert at_49["italian"] is False


@pytest.mark.parametrize(
    ("att", "swiss", "german", "italian"),
    [
        # an edge belongs to the bucket above it: lower <= att < upper
        ("50", 10.0, 20.0, 20.0),  # Swiss 0.5 x 20; German < 55 -> 20; Italian [50, 70)
        ("55", 0.0, 10.0, 20.0),  # Swiss nothing at >= 55; German [55, 63) 0.5 x 20
        ("63", 0.0, 0.0, 20.0),  # German nothing at >= 63
        ("70", 0.0, 0.0, 0.0),  # Italian nothing at >= 70
    ],
)
def test_edges_belong_to_the_bucket_above(
    tmp_path: Path, att: str, swiss: float, german: float, italian: float
) -> None:
    weighted = _one(tmp_path, f"A,1,{att},20\n")
    assert (weighted["swiss"], weighted["german"], weighted["italian"]) == (swiss, german, italian)


def test_a_pairs_rows_are_added_up_wherever_they_are(tmp_path: Path) -> None:
    # A: 10 min at 48 (Swiss weight 1) + 5 min at 53 (0.5) -> 12.5; B sits in between.
    path = _csv(tmp_path, "A,1,48,10\nB,3,80,1\nA,1,53,5\n")
    pairs = load_pairs(path)
    assert [p.label for p in pairs] == ["A", "B"]
    assert pairs[0].histogram.minutes == (10.0, 5.0, 0.0, 0.0, 0.0, 0.0)
    report = evaluate(pairs)
    swiss = next(o for o in report.outcomes if o.rule.name == "swiss")
    assert swiss.weighted == (12.5, 0.0)
    assert swiss.notified == 0


# -- counting and AUC --------------------------------------------------------------


def test_tpr_fpr_and_notified_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # close (<= 2 m): c1 16@45 (every rule), c2 15@52 (German yes, Swiss no), c3 5@80 (none)
    # far: f1 16@45 at 3 m (every rule), f2 and f3 5@80 (none)
    # Swiss notifies c1, f1: TPR 1/3, FPR 1/3. German c1, c2, f1: TPR 2/3, FPR 1/3.
    # Largest weighted minutes: 16 for both.
    body = "c1,1,45,16\nc2,2.0,52,15\nc3,0.5,80,5\nf1,3,45,16\nf2,2.01,80,5\nf3,9,80,5\n"
    path = _csv(tmp_path, body)
    report = evaluate(load_pairs(path))
    assert (report.n_close, report.n_far) == (3, 3)
    by = {o.rule.name: o for o in report.outcomes}
    assert (by["swiss"].rates.tp, by["swiss"].rates.fp) == (1, 1)
    assert by["swiss"].notified == 2
    assert by["swiss"].rates.tpr == pytest.approx(1 / 3)
    assert by["german"].notified == 3
    assert by["german"].rates.tpr == pytest.approx(2 / 3)
    assert by["german"].rates.fpr == pytest.approx(1 / 3)
    assert by["swiss"].max_weighted == 16.0
    code, out, err = _run(capsys, "rules", str(path))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"{path}: 6 pairs, 3 close, 3 far")
    german = next(line for line in lines if line.startswith("german"))
    assert german.split() == ["german", "3", "0.667", "(2/3)", "0.333", "(1/3)", "16.00"]


def _pair(label: str, close: bool, mean: float) -> PairData:
    minutes = (0.0,) * len(ALL_EDGES) + (1.0,)
    return PairData(label, 1.0 if close else 3.0, close,
                    AttenuationHistogram(ALL_EDGES, minutes), mean)


def test_auc_is_one_when_separated_and_zero_when_reversed() -> None:
    # evaluate is pure: pairs made by hand, no file. Lower attenuation = closer.
    separated = [_pair("a", True, 40), _pair("b", True, 45), _pair("c", False, 60),
                 _pair("d", False, 70)]
    assert evaluate(separated).auc == 1.0
    reversed_ = [_pair("a", True, 60), _pair("b", True, 70), _pair("c", False, 40),
                 _pair("d", False, 45)]
    assert evaluate(reversed_).auc == 0.0
    # a tie counts one half: one close and one far pair at the same mean
    assert evaluate([_pair("a", True, 50), _pair("b", False, 50)]).auc == 0.5


def test_auc_reads_the_time_weighted_mean(tmp_path: Path) -> None:
    # close P: 10 min at 40 and 30 min at 80 -> (400 + 2400) / 40 = 70 dB (the plain mean
    # of the two readings would be 60); far Q: 60 dB. 70 > 60, so the close pair looks
    # farther: AUC 0 (it would be 0.5 with the plain mean).
    pairs = load_pairs(_csv(tmp_path, "P,1,40,10\nP,1,80,30\nQ,3,60,5\n"))
    assert pairs[0].mean_attenuation_db == 70.0
    assert evaluate(pairs).auc == 0.0


def test_a_pair_with_no_minutes_counts_as_farthest(tmp_path: Path) -> None:
    # close C has 0 minutes (never heard: +inf); far F at 60 dB -> F looks closer: AUC 0.
    pairs = load_pairs(_csv(tmp_path, "C,1,40,0\nF,3,60,5\n"))
    assert math.isinf(pairs[0].mean_attenuation_db)
    assert evaluate(pairs).auc == 0.0


def test_an_empty_class_prints_dashes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # both pairs close: FPR and AUC have nothing to count
    path = _csv(tmp_path, "A,1,45,16\nB,0,80,1\n")
    code, out, err = _run(capsys, "rules", str(path))
    assert code == 0, err
    swiss = next(line for line in out.splitlines() if line.startswith("swiss"))
    assert swiss.split() == ["swiss", "1", "0.500", "(1/2)", "-", "16.00"]
    assert out.splitlines()[-1].endswith(": -")
    code, out, _ = _run(capsys, "rules", str(path), "--json")
    data = json.loads(out)
    assert data["rules"]["swiss"]["fpr"] is None
    assert data["auc_mean_attenuation"] is None


def test_evaluate_refuses_no_pairs() -> None:
    with pytest.raises(ValueError, match="no pairs"):
        evaluate([])


# -- the truth -------------------------------------------------------------------


def test_close_column_overrides_distance(tmp_path: Path) -> None:
    # near: 0.5 m but marked far; far: 5 m but marked close; plain: 1 m with an empty
    # cell, so by distance (close); edge: exactly 2.0 m, empty -> close (<=).
    body = "near,0.5,45,16,false\nfar,5,45,16,1\nplain,1,45,16,\nedge,2.0,45,16,\n"
    header = "pair,distance_m,attenuation_db,minutes,close\n"
    pairs = load_pairs(_csv(tmp_path, body, header=header))
    assert [p.close for p in pairs] == [False, True, True, True]


def test_close_m_moves_the_truth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _csv(tmp_path, "A,2.5,45,16\nB,1,45,16\n")
    assert [p.close for p in load_pairs(path)] == [False, True]
    assert [p.close for p in load_pairs(path, close_m=3.0)] == [True, True]
    code, out, _ = _run(capsys, "rules", str(path), "--close-m", "3", "--json")
    assert code == 0
    assert json.loads(out)["n_close"] == 2


# -- the file format ---------------------------------------------------------------


def test_comments_blank_lines_extra_columns_any_order_crlf_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "odd.csv"
    text = ("# measured on a tram\r\n\r\n"
            " Minutes , note, attenuation_db,pair,distance_m\r\n"
            "10,seat 3,48,A,1\r\n# a comment between rows\r\n\r\n5,,53,A,1\r\n")
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    (pair,) = load_pairs(path)
    # as in the test above: 10 x 1 + 5 x 0.5 = 12.5 Swiss minutes
    assert pair.label == "A"
    assert evaluate([pair]).outcomes[0].weighted == (12.5,)


def test_json_has_the_numbers_and_each_pairs_weighted_minutes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _csv(tmp_path, "A,1,52,15\nB,3,45,16\n")
    code, out, err = _run(capsys, "rules", str(path), "--json")
    assert code == 0, err
    assert out.count("\n") == 1
    data = json.loads(out)
    assert list(data) == ["file", "close_m", "n_pairs", "n_close", "n_far", "rules",
                          "auc_mean_attenuation", "pairs"]
    assert (data["n_pairs"], data["n_close"], data["n_far"]) == (2, 1, 1)
    assert list(data["rules"]) == ["swiss", "german", "italian", "below68-10min",
                                   "below70-15min"]
    swiss = data["rules"]["swiss"]
    assert {k: swiss[k] for k in ("notified", "tp", "fn", "fp", "tn")} == {
        "notified": 1, "tp": 0, "fn": 1, "fp": 1, "tn": 0}
    assert (swiss["tpr"], swiss["fpr"], swiss["max_weighted_minutes"]) == (0.0, 1.0, 16.0)
    # A at 52 dB looks farther than B at 45: the close pair loses, AUC 0
    assert data["auc_mean_attenuation"] == 0.0
    a = data["pairs"][0]
    assert a["pair"] == "A"
    assert a["weighted_minutes"]["swiss"] == 7.5
    assert a["weighted_minutes"]["german"] == 15.0
    assert a["notified"] == {"swiss": False, "german": True, "italian": False,
                             "below68-10min": True, "below70-15min": True}


def test_module_entry_point_runs(tmp_path: Path) -> None:
    path = _csv(tmp_path, "A,1,45,16\nB,3,80,16\n")
    proc = subprocess.run([sys.executable, "-m", "bluetrace.sim", "rules", str(path)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "2 pairs, 1 close, 1 far" in proc.stdout
    assert "AUC of the time-weighted mean attenuation (lower = closer): 1.000" in proc.stdout


def test_help_states_the_format_and_the_module_limits(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["rules", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for needle in ("pair", "distance_m", "attenuation_db", "minutes", "close",
                   f"{replay.MAX_ROWS:,} data rows", f"{replay.MAX_PAIRS:,} pairs",
                   f"{replay.MAX_LINE_CHARS:,} characters"):
        assert needle in out, needle


# -- errors: one line, exit 2 --------------------------------------------------------


def _fails(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code, out, err = _run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("bluetrace-sim: error: ")
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("A,1,45,x\n", "f.csv:2: minutes must be a number >= 0, got 'x'"),
        ("A,1,45,-1\n", "f.csv:2: minutes must be a number >= 0, got '-1'"),
        ("A,1,45,\n", "f.csv:2: minutes must be a number >= 0, got ''"),
        ("A,nan,45,1\n", "f.csv:2: distance_m must be a number >= 0, got 'nan'"),
        ("A,-0.5,45,1\n", "f.csv:2: distance_m must be a number >= 0"),
        ("A,1,inf,1\n", "f.csv:2: attenuation_db must be a finite number, got 'inf'"),
        ("A,1,45,1e999\n", "f.csv:2: minutes must be a number >= 0, got '1e999'"),
        ("A,1,45\n", "f.csv:2: 3 fields, the header has 4"),
        ("A,1,45,1,extra\n", "f.csv:2: 5 fields, the header has 4"),
        (" ,1,45,1\n", "f.csv:2: pair must not be empty"),
        ("A,1,45,1\nA,2,45,1\n", "f.csv:3: pair 'A' has distance_m 2 here but 1 on line 2"),
        # finite each, but their sum (or attenuation x minutes) is not
        ("A,1,45,1e308\nA,1,45,1e308\n", "f.csv:2: pair 'A': numbers too large to add up"),
        ("A,1,1e300,1e300\n", "f.csv:2: pair 'A': numbers too large to add up"),
    ],
)
def test_bad_rows_name_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, needle: str
) -> None:
    path = _csv(tmp_path, body, name="f.csv")
    assert needle in _fails(capsys, "rules", str(path))


def test_line_numbers_count_comments_and_blank_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # line 1 comment, 2 header, 3 blank, 4 good, 5 comment, 6 bad
    path = tmp_path / "f.csv"
    path.write_text("# tram\n" + HEADER + "\nA,1,45,1\n# x\nB,1,45,oops\n")
    assert "f.csv:6: minutes must be a number >= 0, got 'oops'" in _fails(
        capsys, "rules", str(path))


def test_close_column_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    header = "pair,distance_m,attenuation_db,minutes,close\n"
    bad = _csv(tmp_path, "A,1,45,1,maybe\n", header=header, name="f.csv")
    assert "f.csv:2: close must be 1/0, true/false, yes/no or empty, got 'maybe'" in _fails(
        capsys, "rules", str(bad))
    # the first row is close by distance (1 m), the second marks the same pair far
    clash = _csv(tmp_path, "A,1,45,1,\nA,1,45,1,0\n", header=header, name="g.csv")
    assert "g.csv:3: pair 'A' is far here but close on line 2" in _fails(
        capsys, "rules", str(clash))


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("pair,distance\nA,1\n", "header lacks column(s) distance_m, attenuation_db, minutes"),
        ("", "no data rows (no pairs)"),
        (HEADER, "no data rows (no pairs)"),
        ("# only a comment\n\n", "no data rows (no pairs)"),
        ("pair,pair,distance_m,attenuation_db,minutes\n", "column 'pair' appears twice"),
    ],
)
def test_bad_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, needle: str
) -> None:
    path = tmp_path / "f.csv"
    path.write_text(text)
    assert needle in _fails(capsys, "rules", str(path))


def test_files_that_cannot_be_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "No such file or directory" in _fails(capsys, "rules", str(tmp_path / "none.csv"))
    assert "Is a directory" in _fails(capsys, "rules", str(tmp_path))
    binary = tmp_path / "b.csv"
    binary.write_bytes(HEADER.encode() + b"A,1,45,\xff\n")
    assert "not UTF-8 text" in _fails(capsys, "rules", str(binary))


@pytest.mark.parametrize("value", ["-1", "nan", "x"])
def test_bad_close_m(tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str) -> None:
    path = _csv(tmp_path, "A,1,45,1\n")
    assert "--close-m" in _fails(capsys, "rules", str(path), "--close-m", value)


def test_row_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replay, "MAX_ROWS", 3)
    ok = _csv(tmp_path, "A,1,45,1\n# not a row\nA,1,45,1\n\nB,1,45,1\n", name="ok.csv")
    code, _, err = _run(capsys, "rules", str(ok))
    assert code == 0, err
    # the fourth data row is on line 5
    over = _csv(tmp_path, "A,1,45,1\nA,1,45,1\nB,1,45,1\nB,1,45,1\n", name="f.csv")
    assert "f.csv:5: more than 3 data rows (the limit)" in _fails(capsys, "rules", str(over))


def test_pair_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replay, "MAX_PAIRS", 2)
    ok = _csv(tmp_path, "A,1,45,1\nB,1,45,1\nA,1,45,1\n", name="ok.csv")
    assert _run(capsys, "rules", str(ok))[0] == 0
    over = _csv(tmp_path, "A,1,45,1\nB,1,45,1\nC,1,45,1\n", name="f.csv")
    assert "f.csv:4: more than 2 pairs (the limit)" in _fails(capsys, "rules", str(over))


def test_line_length_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replay, "MAX_LINE_CHARS", len(HEADER) - 1)
    path = _csv(tmp_path, "A" * 200 + ",1,45,1\n", name="f.csv")
    assert "f.csv:2: line longer than" in _fails(capsys, "rules", str(path))
