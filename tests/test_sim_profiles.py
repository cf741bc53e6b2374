"""Phone profiles as data: settable presets, user profiles, scan windows, randomised
gaps, per-OS detection and per-pair detectability, in both engines."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from pathlib import Path

import numpy as np
import pytest

from bluetrace.sim.channel import PhoneArrays, draw_links
from bluetrace.sim.cli import main
from bluetrace.sim.exact import run_exact
from bluetrace.sim.fast import run_fast
from bluetrace.sim.metrics import seed_metrics
from bluetrace.sim.scenario import (
    PlaceSpec,
    Scenario,
    ScenarioError,
    apply_overrides,
    load_scenario,
    load_toml,
    scenario_from_dict,
    scenario_to_toml,
)
from bluetrace.sim.world import World


def _pair(**kw: object) -> Scenario:
    """Two phones 1 m apart for 8 h, a radio that always reaches: only the phones decide."""
    place = PlaceSpec(name="desk", kind="room", per_place=2, rows=1, cols=2, pitch=1.0,
                      start=9.0, end=17.0)
    sc = Scenario(name="pair", population=2, places=[place], infected=[0, 1],
                  radio={"threshold": 500.0, "s_scan": 0.0}, primary_rule="covidsafe")
    return dataclasses.replace(sc, **kw)  # type: ignore[arg-type]


def test_a_preset_can_be_set_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", "office", "--set", "profiles.opentrace-android.scan_every=120",
                 "--no-sweep", "--progress", "off", "--out", str(tmp_path / "o")])
    _, err = capsys.readouterr()
    assert code == 0, err
    saved = json.loads((tmp_path / "o" / "results.json").read_text())
    assert saved["scenario"]["profiles"]["opentrace-android"] == {
        "share": 0.75, "scan_every": [120.0, 120.0]}


def test_a_slower_scan_is_what_the_engine_runs() -> None:
    """A scan every 300 s instead of a reading every ~120 s (the 100-s revisit rule
    already skips two scans in three): fewer readings are offered."""
    sent = {}
    for label, sets in (("default", []),
                        ("slow", ["profiles.opentrace-android.scan_every=300"])):
        sc = apply_overrides(load_scenario("office"), sets)
        sent[label] = run_fast(World.build(sc, 1), sc).beacons_sent
    assert sent["slow"] < 0.8 * sent["default"]


@pytest.mark.parametrize(
    ("setting", "needle"),
    [("profiles.opentrace-android.scan_evry=3", "no setting 'scan_evry'"),
     ("profiles.gaen.hear_bg=2", "hear_bg must be in [0, 1]"),
     ("profiles.gaen.scan_every=[9, 3]", "0 < low <= high"),
     ("profiles.gaen.scan_window=500", "at most scan_every's low end"),
     ("profiles.new.hear_fg=1", "a new profile needs like = PRESET"),
     ("profiles.new.like=\"nokia\"", "must name a preset"),
     ("profiles.opentrace-ios.background_heard_by=[3]", "list of os names"),
     ("profiles.opentrace-ios.os=\"\"", "must not be empty")],
)
def test_bad_profile_settings_are_one_clear_error(setting: str, needle: str) -> None:
    with pytest.raises(ScenarioError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        apply_overrides(load_scenario("office"), [setting])


USER_PROFILE = """
name = "mine"
population = 12
infected = [0, 5]
pair_detectable = 0.8

[profiles.opentrace-ios]
share = 0.5
background_share = 0.5
background_spell = 600

[profiles.blinky]
share = 0.5
like = "opentrace-android"
scan_window = 4
scan_every = [20, 35]
adv_on = 30
adv_off = 30
revisit = 45

[[place]]
name = "room"
per_place = 12
rows = 3
cols = 4
pitch = 1.5
start = 9.0
end = 13.0
"""


def test_a_user_profile_from_toml_round_trips_and_the_engines_agree(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(USER_PROFILE, encoding="utf-8")
    scenario = load_toml(path)
    blinky = scenario.phone_profiles()["blinky"]
    assert blinky.scan_every == (20.0, 35.0)
    assert blinky.adv_off == 30.0
    assert blinky.heard_fg == 1.0  # the rest from the preset it is like
    assert scenario_from_dict(tomllib.loads(scenario_to_toml(scenario))) == scenario
    world = World.build(scenario, 4)
    fast = run_fast(world, scenario, np.random.default_rng([4, 2]))
    exact = run_exact(world, scenario, np.random.default_rng([4, 2]))
    assert exact.beacons_received == fast.beacons_received > 0
    assert exact.beacons_sent == fast.beacons_sent
    assert exact.extra["beacons_rejected_by_phones"] == 0
    assert exact.pair_days == fast.pair_days
    for person, named in fast.named.items():
        assert np.array_equal(exact.named[person], named)
    assert seed_metrics(world, exact)["detection"] == seed_metrics(world, fast)["detection"]


def _readings(sc: Scenario, seed: int = 1) -> np.ndarray:
    world = World.build(sc, seed)
    result = run_fast(world, sc, np.random.default_rng([seed, 2]))
    det = result.detections
    return np.asarray(det["t"][(det["receiver"] == 0) & (det["sender"] == 1)])


def test_scans_follow_the_randomised_gaps() -> None:
    """Every scan hears (the radio always reaches): reading gaps are GAEN's scan gaps,
    uniform in 210-300 s, not one fixed period."""
    gaps = np.diff(_readings(_pair(profiles={"gaen": 1.0}, days=8)))
    gaps = gaps[gaps < 3600.0]  # not the nights
    assert gaps.size > 800
    assert gaps.min() >= 210.0 - 1e-9
    assert gaps.max() <= 300.0 + 1e-9
    assert abs(gaps.mean() - 255.0) < 3.0
    assert abs(gaps.std() - 90.0 / np.sqrt(12.0)) < 2.5


@pytest.mark.parametrize("window", [1.0, 10.0])
def test_a_scan_hears_a_sender_advertising_at_any_moment_of_its_window(window: float) -> None:
    """The sender advertises 10 s of every 60: a scan of w s overlaps that with
    probability (10 + w) / 60, in both engines."""
    settings = {"scanner": {"like": "gaen", "scan_every": [20.0, 30.0], "scan_window": window,
                            "adv_on": 10.0, "adv_off": 50.0}}
    sc = _pair(profiles={"scanner": 1.0}, profile_settings=settings, days=3,
               infected=[0])
    heard = []
    for seed in (1, 2, 3):
        world = World.build(sc, seed)
        for engine in (run_fast, run_exact):
            result = engine(world, sc, np.random.default_rng([seed, 2]))
            heard.append(result.beacons_received / result.beacons_sent)
    assert heard[0::2] == heard[1::2]  # the engines agree draw for draw
    assert abs(float(np.mean(heard)) - (10.0 + window) / 60.0) < 0.03


def test_pair_detectable_is_drawn_once_per_directed_pair() -> None:
    """In the city every 10-s step is an interval: one draw per step would let almost
    every pair that walks together be heard sometime."""
    sc = apply_overrides(load_scenario("city"), ["pair_detectable=0.5", "uptake=1",
                                                 "place.city.end=11"])
    world = World.build(sc, 2)
    iv = world.intervals_for_day(0)
    links = draw_links(world, iv, np.random.default_rng(1))
    key = links.receiver * world.n + links.sender
    able = links.q > 0
    order = np.argsort(key, kind="stable")
    key, able = key[order], able[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    per_pair_all = np.logical_and.reduceat(able, starts)
    per_pair_any = np.logical_or.reduceat(able, starts)
    assert np.array_equal(per_pair_all, per_pair_any)  # never mixed within a pair
    assert abs(per_pair_any.mean() - 0.5) < 0.05
    # Another generator and another order: the same pairs can hear each other.
    again = draw_links(world, iv[::-1], np.random.default_rng(9))
    key2 = again.receiver * world.n + again.sender
    order2 = np.argsort(key2, kind="stable")
    able_again = (again.q > 0)[order2]
    starts2 = np.flatnonzero(np.r_[True, key2[order2][1:] != key2[order2][:-1]])
    assert np.array_equal(np.logical_or.reduceat(able_again, starts2), per_pair_any)
    per_interval = dataclasses.replace(sc, pair_detectable_per="interval")
    world2 = World.build(per_interval, 2)
    links2 = draw_links(world2, iv, np.random.default_rng(1))
    able2 = (links2.q > 0)[order]
    assert not np.array_equal(np.logical_and.reduceat(able2, starts),
                              np.logical_or.reduceat(able2, starts))


def test_background_spells_are_fixed_per_phone_and_spell_and_take_their_share() -> None:
    sc = _pair(population=2, profiles={"opentrace-ios": 1.0},
               profile_settings={"opentrace-ios": {"background_share": 0.3,
                                                   "background_spell": 100.0}})
    phones = PhoneArrays(World.build(sc, 1), np.random.default_rng(0))
    t = np.arange(0.0, 86400.0 * 10, 50.0)
    bg = phones.in_background(np.zeros(t.size, dtype=np.int64), t)
    assert abs(bg.mean() - 0.3) < 0.02
    assert np.array_equal(bg[0::2], bg[1::2])  # two samples in each 100-s spell
    assert np.array_equal(bg, phones.in_background(np.zeros(t.size, dtype=np.int64), t))


def _who_hears_whom(settings: dict[str, dict[str, object]], a: str, b: str) -> tuple[int, int]:
    """(readings of b by a, readings of a by b) for phone 0 with profile ``a`` and
    phone 1 with profile ``b``, 1 m apart for 8 h, in both engines (which agree)."""
    sc = _pair(profiles={a: 0.5, b: 0.5}, profile_settings=settings)
    world = World.build(sc, 1)
    names = list(world.profile_names)
    world.profile[:] = [names.index(a), names.index(b)]
    counts = []
    for engine in (run_fast, run_exact):
        det = engine(world, sc, np.random.default_rng([1, 2])).detections
        counts.append((int(np.sum(det["receiver"] == 0)), int(np.sum(det["receiver"] == 1))))
    assert counts[0] == counts[1]
    return counts[0]


IOS_BG = {"like": "opentrace-ios", "background_share": 1.0}


def test_ios_in_the_background_as_opentrace_reports() -> None:
    """opentrace-ios #4: foreground <-> background works one way (the foreground
    iPhone finds the backgrounded one), background <-> background does not, and a
    backgrounded iPhone is not found by Android; #18/#26: it no longer scans."""
    settings = {"ios-bg": IOS_BG, "ios-bg2": IOS_BG}
    fg_hears_bg, bg_hears_fg = _who_hears_whom(settings, "opentrace-ios", "ios-bg")
    assert fg_hears_bg > 400  # a 10-s scan every 60 s for 8 h
    assert bg_hears_fg == 0
    assert _who_hears_whom(settings, "ios-bg", "ios-bg2") == (0, 0)
    assert _who_hears_whom(settings, "opentrace-android", "ios-bg") == (0, 0)
    android, ios = _who_hears_whom({}, "opentrace-android", "opentrace-ios")
    assert android > 200  # a reading every ~2 min (the revisit rule)
    assert ios > 400


def test_per_direction_detection_sets_the_share_heard() -> None:
    """hear_fg and heard_fg multiply: 0.5 x 0.6 of the opportunities succeed."""
    settings = {"deaf": {"like": "gaen", "scan_every": [20.0, 30.0], "hear_fg": 0.5},
                "quiet": {"like": "gaen", "scan_every": [20.0, 30.0], "heard_fg": 0.6}}
    deaf_hears, quiet_hears = _who_hears_whom(settings, "deaf", "quiet")
    scans = 8 * 3600 / 25.0
    assert abs(deaf_hears / scans - 0.3) < 0.05
    assert abs(quiet_hears / scans - 1.0) < 0.05


def test_a_city_with_half_ios_gives_every_figure_by_profile_pair(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", "city", "--set", "profiles.opentrace-ios=0.5",
                 "--set", "profiles.opentrace-android=0.5",
                 "--set", "profiles.opentrace-ios.background_share=0.5",
                 "--no-sweep", "--progress", "off", "--out", str(tmp_path / "c")])
    _, err = capsys.readouterr()
    assert code == 0, err
    results = json.loads((tmp_path / "c" / "results.json").read_text())
    split = results["metrics"]["by_profile_pair"]
    assert set(split) == {"opentrace-android|opentrace-android",
                          "opentrace-android|opentrace-ios", "opentrace-ios|opentrace-ios"}
    mixed = split["opentrace-android|opentrace-ios"]
    for key in ("recall", "either_recall", "seen_by_both", "per_direction",
                "opentrace-android_hears_opentrace-ios", "opentrace-ios_hears_opentrace-android",
                "continuity_one_way", "continuity_either"):
        assert set(mixed[key]) >= {"value", "low", "high", "method"}, key
    assert sum(mixed["pair_days"].values()) > 0
    # A backgrounded iPhone is not heard by Android (and does not scan itself).
    hears = {k: mixed[k]["value"] for k in ("opentrace-android_hears_opentrace-ios",
                                           "opentrace-ios_hears_opentrace-android")}
    assert all(v is not None for v in hears.values())
    total = results["metrics"]["pair_days"]
    assert sum(c["pair_days"]["both"] for c in split.values()) == total["both"]
    html = (tmp_path / "c" / "report.html").read_text()
    # city's own headline rule has true contacts: its headline is a number
    assert results["metrics"]["detection"]["log"]["passing"]["true"] > 0
    assert "recall of true close contacts (passing rule): n/a" not in html
    assert "By phone profile pair" in html
    assert "opentrace-android|opentrace-ios" in html
    rows = (tmp_path / "c" / "by_profile_pair.csv").read_text().splitlines()
    assert rows[0] == "profiles,metric,value,low,high,method"
    assert any(r.startswith("opentrace-ios|opentrace-ios,continuity_either,") for r in rows)


def test_the_per_direction_estimate_recovers_detectability_per_profile_pair() -> None:
    """pair_detectable = 0.6 for every directed pair: 2S/(2S+A) is 0.6 in every split."""
    place = PlaceSpec(name="room", kind="room", count=40, per_place=10, rows=2, cols=5,
                      pitch=1.0, start=9.0, end=10.0)
    sc = Scenario(name="grid", population=400, places=[place], infected=0.05,
                  profiles={"assignment": 0.5, "twin": 0.5},
                  profile_settings={"twin": {"like": "assignment"}},
                  beacon_interval=30.0, pair_detectable=0.6,
                  radio={"threshold": 500.0}, primary_rule="covidsafe")
    from bluetrace.sim.runs import run_seeds  # noqa: PLC0415

    _, combined = run_seeds(sc, [1, 2, 3], "fast")
    split = combined["by_profile_pair"]
    assert len(split) == 3
    for cell in split.values():
        est = cell["per_direction"]
        assert est["low"] <= est["value"] <= est["high"]
        assert abs(est["value"] - 0.6) < 0.03
    mixed = split["assignment|twin"]
    for direction in ("assignment_hears_twin", "twin_hears_assignment"):
        assert abs(mixed[direction]["value"] - 0.6) < 0.08
