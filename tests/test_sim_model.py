"""Radio, profiles, scenarios and the world model of the simulator."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from bluetrace.sim.places import random_waypoint
from bluetrace.sim.profiles import PROFILES, get_profile, scan_windows
from bluetrace.sim.radio import PRESETS, RadioModel, model_offsets, normal_cdf
from bluetrace.sim.rules import CONTACT_RULES, EXPOSURE_RULES, contact_rules, true_contacts
from bluetrace.sim.scenario import (
    PlaceSpec,
    Scenario,
    ScenarioError,
    apply_overrides,
    builtin_names,
    load_scenario,
    load_toml,
    scenario_to_toml,
)
from bluetrace.sim.world import INTERVAL_DTYPE, World, close_pairs, make_intervals


def test_normal_cdf_matches_known_values() -> None:
    got = normal_cdf(np.array([-1.959963984540054, 0.0, 1.0, 3.0]))
    assert got == pytest.approx([0.025, 0.5, 0.841344746, 0.998650102], abs=2e-7)


def test_detect_probability_matches_drawn_scans() -> None:
    radio = RadioModel(a0=40.0, n=2.0, s_pair=0.0, s_scan=4.0, threshold=60.0)
    rng = np.random.default_rng(5)
    d = np.full(200_000, 8.0)  # mean 58.06 dB: a little under the threshold
    heard = radio.scan_attenuation(rng, d, np.zeros(d.size)) <= radio.threshold
    expected = float(radio.detect_probability(8.0))
    assert 0.6 < expected < 0.75
    assert heard.mean() == pytest.approx(expected, abs=0.005)


def test_pair_offsets_include_body_and_holder_terms() -> None:
    rng = np.random.default_rng(1)
    plain = RadioModel(a0=40, n=2, s_pair=0.0, s_scan=0.0)
    assert np.all(plain.pair_offsets(rng, 10) == 0.0)
    body = RadioModel(a0=40, n=2, s_pair=0.0, s_scan=0.0, body_loss=6.0, body_fraction=0.25)
    offs = body.pair_offsets(rng, 40_000)
    assert set(np.unique(offs).tolist()) == {0.0, 6.0}
    assert (offs > 0).mean() == pytest.approx(0.25, abs=0.01)
    held = RadioModel(a0=40, n=2, s_pair=0.0, s_scan=0.0, holder_spread=10.0)
    h = held.pair_offsets(rng, 10_000)
    assert h.min() >= -10.0
    assert h.max() <= 10.0
    assert h.std() == pytest.approx(20 / 12**0.5, rel=0.05)


def test_presets_and_model_offsets() -> None:
    assert PRESETS["tram"].a0 == 63.9
    assert PRESETS["bus"].n == 0.22
    assert PRESETS["open"].mean_attenuation(10.0) == pytest.approx(60.0)
    tx, rx = model_offsets(np.random.default_rng(0), 10_000, "gaen")
    assert np.median(rx) == pytest.approx(0.0, abs=0.7)
    assert rx.max() <= 32.0
    assert rx.min() >= -19.0
    with pytest.raises(ValueError, match="unknown model-offset scheme"):
        model_offsets(np.random.default_rng(0), 3, "nokia")
    assert tx.shape == (10_000,)


def test_profiles_from_the_notes() -> None:
    android = get_profile("opentrace-android")
    assert android.scan_window == 8.0
    assert android.scan_every == (36.0, 43.0)
    assert android.skip_after_hit == 2  # 100 s revisit at ~40 s scans
    assert PROFILES["gaen"].scan_every == (210.0, 300.0)
    assert android.advertising_fraction == pytest.approx(180 / 185)
    windows = scan_windows(android, 0.0, 3600.0, np.random.default_rng(2))
    gaps = np.diff(windows[:, 0])
    assert gaps.min() >= 36.0
    assert gaps.max() <= 43.0
    assert 3600 / 43 - 1 <= len(windows) <= 3600 / 36 + 1
    with pytest.raises(ValueError, match="unknown phone profile"):
        get_profile("blackberry")


@pytest.mark.parametrize("name", builtin_names())
def test_builtin_scenarios_round_trip_through_toml(name: str, tmp_path: object) -> None:
    scenario = load_scenario(name)
    path = tmp_path / f"{name}.toml"  # type: ignore[operator]
    path.write_text(scenario_to_toml(scenario))
    again = load_toml(path)
    assert dataclasses.asdict(again) == dataclasses.asdict(scenario)


def test_required_builtins_exist() -> None:
    assert {"office", "classroom", "tram", "bus", "city", "spec"} <= set(builtin_names())
    assert load_scenario("city").places[0].area == 1500.0
    assert load_scenario("spec").population == 3


def test_overrides_and_errors() -> None:
    base = load_scenario("office")
    changed = apply_overrides(base, ["uptake=0.6", "radio.s_pair=6", "place.office.pitch=1.5",
                                     "profiles.gaen=1", "infected=[1, 2]"])
    assert changed.uptake == 0.6
    assert changed.radio == {"s_pair": 6.0}
    assert changed.places[0].pitch == 1.5
    assert changed.profiles["gaen"] == 1.0
    assert changed.infected == [1, 2]
    for bad, msg in (("uptake=2", "uptake"), ("nosuch=1", "unknown parameter"),
                     ("radio.colour=1", "radio has no"), ("place.attic.pitch=1", "no place"),
                     ("uptake", "key=value"), ("infected=[99]", "infected id")):
        with pytest.raises(ScenarioError, match=msg):
            apply_overrides(base, [bad])
    with pytest.raises(ScenarioError, match="no scenario"):
        load_scenario("atlantis")


def test_bad_toml_is_one_line(tmp_path: object) -> None:
    path = tmp_path / "x.toml"  # type: ignore[operator]
    path.write_text("name = 'x'\n[[place]\n")
    with pytest.raises(ScenarioError, match="not valid TOML") as err:
        load_toml(path)
    assert "\n" not in str(err.value)


def _room(**kw: object) -> Scenario:
    place = PlaceSpec(name="r", kind="room", per_place=6, rows=2, cols=3, pitch=1.0,
                      start=9.0, end=10.0)
    sc = Scenario(name="t", population=6, places=[place], infected=[0])
    return dataclasses.replace(sc, **kw)  # type: ignore[arg-type]


def test_room_lists_every_pair_within_cutoff() -> None:
    world = World.build(_room(cutoff=1.5), 3)
    iv = world.intervals()
    # 2 x 3 desks 1 m apart: 7 pairs at 1 m, 4 at sqrt(2) m; farther ones are cut.
    assert iv.size == 11
    assert np.all(iv["a"] < iv["b"])
    assert sorted(iv["distance"].tolist()) == pytest.approx([1.0] * 7 + [2**0.5] * 4)
    assert np.all(iv["t1"] - iv["t0"] == 3600.0)


def test_vehicle_and_open_area() -> None:
    tram = load_scenario("tram")
    iv = World.build(tram, 1).intervals()
    # 12 trips of 40 riders: every pair of riders in a 12 m car is within 10 m or so.
    assert iv.size <= 12 * 40 * 39 // 2
    assert iv.size > 12 * 40 * 39 // 4
    assert set(np.round(iv["t1"] - iv["t0"]).tolist()) == {900.0}
    track = random_waypoint(np.random.default_rng(1), 50, 100.0, steps=500, dt=10.0)
    assert track.min() >= 0.0
    assert track.max() <= 100.0
    assert np.abs(np.diff(track, axis=0)).max() <= 15.0 + 1e-9  # 1.5 m/s x 10 s


def test_same_seed_same_world_and_other_seed_differs() -> None:
    sc = load_scenario("office")
    a = World.build(sc, 7).intervals()
    b = World.build(sc, 7).intervals()
    c = World.build(sc, 8).intervals()
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()


def _iv(rows: list[tuple[int, int, float, float, float]]) -> np.ndarray:
    cols = list(zip(*rows, strict=True))
    return make_intervals(a=cols[0], b=cols[1], t0=cols[2], t1=cols[3], distance=cols[4],
                          place=[0] * len(rows), env=0)


def test_contact_rules_one_stretch_versus_cumulative() -> None:
    infected = np.array([True, False, False])
    iv = _iv([
        (0, 1, 0.0, 1200.0, 1.0),  # 20 min at 1 m
        (0, 1, 1200.0, 2400.0, 1.0),  # touching: one 40-min stretch
        (0, 2, 0.0, 600.0, 1.0),  # 10 min ...
        (0, 2, 3000.0, 3600.0, 1.0),  # ... + 10 min later: 20 min cumulative
    ])
    assert iv.dtype == INTERVAL_DTYPE
    bt = true_contacts(iv, CONTACT_RULES["bluetrace"], infected, 3)
    cs = true_contacts(iv, CONTACT_RULES["covidsafe"], infected, 3)
    assert bt.tolist() == [0 * 3 + 1]
    assert cs.tolist() == [1, 2]


def test_exposure_rule_weights() -> None:
    swiss = EXPOSURE_RULES["swiss"]
    w = swiss.weighted_seconds(np.array([45.0, 52.0, 60.0]), np.array([60.0, 60.0, 60.0]))
    assert w.tolist() == [60.0, 30.0, 0.0]
    assert swiss.notifies(np.array([14.9, 15.0])).tolist() == [False, True]
    assert EXPOSURE_RULES["italian"].notifies(np.array([15.0, 15.1])).tolist() == [False, True]


def test_close_pairs_matches_brute_force() -> None:
    track = random_waypoint(np.random.default_rng(4), 60, 100.0, steps=40, dt=10.0)
    step, i, j, dist = close_pairs(track, 15.0)
    ia, ib = np.triu_indices(60, 1)
    diff = track[:, ia, :] - track[:, ib, :]
    brute = np.hypot(diff[..., 0], diff[..., 1])
    s2, p2 = np.nonzero(brute <= 15.0)
    assert step.size == s2.size > 0
    got = set(zip(step.tolist(), i.tolist(), j.tolist(), strict=True))
    assert got == set(zip(s2.tolist(), ia[p2].tolist(), ib[p2].tolist(), strict=True))
    assert np.allclose(np.sort(dist), np.sort(brute[s2, p2]))


def test_scenario_contact_rules_are_parameters(tmp_path: object) -> None:
    sc = apply_overrides(load_scenario("office"), [
        "contact_rules.near.distance=2.5", "contact_rules.near.minutes=60",
        "contact_rules.near.cumulative=false", "primary_rule=near",
    ])
    rule = contact_rules(sc.contact_rules)["near"]
    assert (rule.distance, rule.minutes, rule.cumulative) == (2.5, 60.0, False)
    path = tmp_path / "rules.toml"  # type: ignore[operator]
    path.write_text(scenario_to_toml(sc))
    assert load_toml(path).contact_rules == {"near": {"distance": 2.5, "minutes": 60,
                                                      "cumulative": False}}
    with pytest.raises(ScenarioError, match="needs minutes"):
        apply_overrides(sc, ["contact_rules.far.distance=9"])
    with pytest.raises(ScenarioError, match="primary_rule"):
        apply_overrides(load_scenario("office"), ["primary_rule=nearest"])


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('name = "a"\nplace = [1]\n', "must be a table"),
        ('name = "a"\nplace = 3\n', "array of tables"),
        ('name = "a"\nuptake = nan\n[[place]]\nper_place = 1\n', "finite"),
        ('name = "a"\n[[place]]\nper_place = 1\njitter = 9999.0\n', "jitter"),
        ('population = 1\n[[place]]\nper_place = 1\n', "needs a name"),
        ('name = "a"\n[[place]]\nper_place = 1\n[contact_rules.near]\ndistance = 1\n'
         'minutes = 5\ncumulative = "yes"\n', "'near': cumulative must be true or false"),
        ('name = "a"\n[[place]]\nper_place = 1\n[contact_rules.near]\ndistance = 1\n'
         'minutes = 5\ncolour = 1\n', "'near': unknown key 'colour'"),
        ('name = "a"\n[[place]]\nper_place = 1\n[contact_rules]\nnear = 3\n',
         "'near': must be a table"),
        ('name = "a"\n[[place]]\nper_place = 1\n[contact_rules.near]\ndistance = -1\n'
         'minutes = 5\n', "'near': needs distance >= 0"),
    ],
)
def test_malformed_scenario_files(text: str, needle: str, tmp_path: object) -> None:
    path = tmp_path / "bad.toml"  # type: ignore[operator]
    path.write_text(text)
    with pytest.raises(ScenarioError, match=needle):
        load_toml(path)
