"""Tracking by sniffers: linking checked by hand on tiny worlds, then a small real run."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from bluetrace.sim.radio import RadioModel
from bluetrace.sim.studies import tracking
from bluetrace.sim.studies.tracking import NEVER, Sightings, TrackingSetup, link, link_metrics

I = np.int64  # noqa: E741 (a dtype, short for readability in the hand-made tables)


def sightings(rows: list[tuple[int, int, int]]) -> Sightings:
    """(step, walker, sniffer) rows."""
    a = np.asarray(rows, dtype=np.int32)
    return Sightings(step=a[:, 0], walker=a[:, 1], sniffer=a[:, 2])


# -- TempIDs -------------------------------------------------------------------------


def test_tempids_rotate_on_each_walkers_own_schedule() -> None:
    walker = np.asarray([0, 0, 0, 1, 1, 1], dtype=I)
    step = np.asarray([0, 8, 9, 0, 3, 4], dtype=I)
    # 10-s steps, 90-s TempIDs; walker 0 starts at phase 0, walker 1 at 50 s
    tid = tracking.tempid_of(walker, step, 90.0, np.asarray([0.0, 50.0]), 10.0)
    assert tid[0] == tid[1] != tid[2]  # 80 s is still epoch 0; 90 s is epoch 1
    assert tid[3] == tid[4] != tid[5]  # 50 + 30 < 90 <= 50 + 40
    assert len(set(tid[:3].tolist()) & set(tid[3:].tolist())) == 0
    never = tracking.tempid_of(walker, step, NEVER, np.zeros(2), 10.0)
    assert never.tolist() == [0, 0, 0, 1, 1, 1]


# -- linking by hand -------------------------------------------------------------------

# Six TempIDs (numbers are the IDs themselves):
#   walker 0: ID 10 at sniffer 5, steps 0-3; then ID 11 at sniffer 5 from step 4: stitch
#   walker 1: ID 20 ends at sniffer 9 at step 2; ID 21 starts there at step 10: gap too long
#   walker 2: ID 30 ends at sniffer 7 at step 3; walker 2's ID 31 and walker 3's ID 40 both
#             start at sniffer 7 at step 4: ambiguous, not stitched
#   walker 4: ID 50 ends at sniffer 11 at step 5; walker 5's ID 60 starts there at step 6:
#             a unique but wrong stitch (cut and counted)
ROWS = [
    (0, 0, 5, 10), (1, 0, 5, 10), (3, 0, 5, 10), (3, 0, 6, 10),
    (4, 0, 5, 11), (6, 0, 6, 11), (8, 0, 6, 11),
    (1, 1, 9, 20), (2, 1, 9, 20), (10, 1, 9, 21), (12, 1, 9, 21),
    (0, 2, 7, 30), (3, 2, 7, 30), (4, 2, 7, 31), (5, 2, 7, 31),
    (4, 3, 7, 40), (9, 3, 7, 40),
    (2, 4, 11, 50), (5, 4, 11, 50),
    (6, 5, 11, 60), (7, 5, 11, 60),
]  # fmt: skip


def hand_world() -> tuple[Sightings, np.ndarray[tuple[int], np.dtype[np.int64]]]:
    a = np.asarray(ROWS, dtype=np.int32)
    return Sightings(step=a[:, 0], walker=a[:, 1], sniffer=a[:, 2]), a[:, 3].astype(I)


def spans(t: tracking.Tracks) -> list[tuple[int, int, int, int]]:
    """(walker, first, last, sightings) per track, sorted."""
    return sorted(
        zip(t.walker.tolist(), t.first.tolist(), t.last.tolist(), t.n_sightings.tolist(),
            strict=True)
    )  # fmt: skip


def test_equal_tempid_linking_by_hand() -> None:
    s, tid = hand_world()
    t = link(s, tid, "equal", gap_steps=3)
    assert spans(t) == [
        (0, 0, 3, 4), (0, 4, 8, 3), (1, 1, 2, 2), (1, 10, 12, 2), (2, 0, 3, 2),
        (2, 4, 5, 2), (3, 4, 9, 2), (4, 2, 5, 2), (5, 6, 7, 2),
    ]  # fmt: skip
    assert t.stitches == 0


def test_stitch_edges_by_hand() -> None:
    s, tid = hand_world()
    table = tracking._id_table(s, tid)
    ids = np.unique(tid)
    a, b = tracking.stitch_edges(s, table, gap_steps=3)
    pairs = sorted(zip(ids[a].tolist(), ids[b].tolist(), strict=True))
    # 10 -> 11 (same sniffer, next step), 50 -> 60 (unique but another walker);
    # 20 -> 21 is 8 steps apart; 30 -> {31, 40} is ambiguous
    assert pairs == [(10, 11), (50, 60)]
    # 20 -> 21 is exactly 8 steps: a gap of 8 joins them, a gap of 7 does not
    a, b = tracking.stitch_edges(s, table, gap_steps=8)
    assert (20, 21) in set(zip(ids[a].tolist(), ids[b].tolist(), strict=True))
    a, b = tracking.stitch_edges(s, table, gap_steps=7)
    assert (20, 21) not in set(zip(ids[a].tolist(), ids[b].tolist(), strict=True))


def test_stitched_linking_cuts_wrong_stitches() -> None:
    s, tid = hand_world()
    t = link(s, tid, "stitched", gap_steps=3)
    assert (t.stitches, t.wrong_stitches) == (2, 1)
    assert spans(t) == [
        (0, 0, 8, 7), (1, 1, 2, 2), (1, 10, 12, 2), (2, 0, 3, 2),
        (2, 4, 5, 2), (3, 4, 9, 2), (4, 2, 5, 2), (5, 6, 7, 2),
    ]  # fmt: skip
    assert max(t.n_ids.tolist()) == 2


def test_long_chains_are_followed_to_the_end() -> None:
    # one walker, IDs 0..4 in turn at sniffer 1, each seen for two steps
    rows = [(2 * k + j, 0, 1) for k in range(5) for j in range(2)]
    s = sightings(rows)
    tid = np.asarray([k for k in range(5) for _ in range(2)], dtype=I)
    t = link(s, tid, "stitched", gap_steps=1)
    assert spans(t) == [(0, 0, 9, 10)]
    assert t.n_ids.tolist() == [5]


def test_metrics_by_hand() -> None:
    s, tid = hand_world()
    setup = TrackingSetup(n_walkers=6, hours=13 * 10 / 3600, step_s=10.0)  # 13 steps
    assert setup.n_steps == 13
    eq = link_metrics(s, link(s, tid, "equal", 3), setup)
    st = link_metrics(s, link(s, tid, "stitched", 3), setup)
    total = 12 * 10.0  # from step 0 to step 12
    # walker 0: equal 3 + 4 steps, stitched 8; walker 1: 1 + 2; walker 2: 3 + 1;
    # walker 3: 5; walker 4: 3; walker 5: 1
    assert eq.linked_share == pytest.approx((7 + 3 + 4 + 5 + 3 + 1) * 10 / total / 6)
    assert st.linked_share == pytest.approx((8 + 3 + 4 + 5 + 3 + 1) * 10 / total / 6)
    assert st.longest_share == pytest.approx((8 + 2 + 3 + 5 + 3 + 1) * 10 / total / 6)
    assert eq.mean_track_min == pytest.approx((3 + 4 + 1 + 2 + 3 + 1 + 5 + 3 + 1) * 10 / 60 / 9)
    assert (eq.n_tracks, st.n_tracks) == (9, 8)
    assert st.stitch_precision == 0.5
    assert math.isnan(eq.stitch_precision)
    heard = len({(w, k) for k, w, _ in [(r[0], r[1], r[2]) for r in ROWS]})
    assert eq.observed_share == pytest.approx(heard / (6 * 13))


# -- the world: sniffers, walkers, sightings ------------------------------------------


def test_sniffer_grid_centres() -> None:
    g = tracking.sniffer_grid(200.0, 100.0)
    assert sorted(map(tuple, g.tolist())) == [(50, 50), (50, 150), (150, 50), (150, 150)]
    assert len(tracking.sniffer_grid(1500.0, 75.0)) == 400


def test_sightings_on_a_tiny_grid_follow_the_range() -> None:
    """No shadowing and a 30-m threshold: sniffers within 30 m hear, others never do."""
    radio = RadioModel(a0=40.0, n=2.0, s_pair=0.0, s_scan=0.0, threshold=40 + 20 * math.log10(30))
    setup = TrackingSetup(side_m=200.0, n_walkers=3, hours=20 / 3600, step_s=10.0, radio=radio)
    # sniffers at 25, 75, 125, 175 on both axes (pitch 50 m)
    pos = np.asarray([[[25.0, 25.0], [50.0, 25.0], [100.0, 100.0]]] * 2)
    s = tracking.draw_sightings(np.random.default_rng(0), pos, 50.0, setup)
    heard = {(int(w), int(k)) for w, k in zip(s.walker, s.sniffer, strict=True)}
    n_axis = 4

    def idx(x: float, y: float) -> int:
        return int(x // 50) * n_axis + int(y // 50)

    assert heard == {
        (0, idx(25, 25)),  # on top of it
        (1, idx(25, 25)), (1, idx(75, 25)),  # 25 m either side; (25|75, 75) is 55.9 m
    }  # fmt: skip
    assert sorted(s.step.tolist()) == [0, 0, 0, 1, 1, 1]  # both steps, every sniffer


def test_random_waypoint_stays_inside_and_walks_at_speed() -> None:
    setup = TrackingSetup(side_m=300.0, n_walkers=20, hours=1.0, step_s=10.0)
    pos = tracking.random_waypoint(np.random.default_rng(3), setup)
    assert pos.shape == (360, 20, 2)
    assert pos.min() >= 0.0
    assert pos.max() <= 300.0
    step = np.hypot(*np.diff(pos, axis=0).transpose(2, 0, 1))
    assert step.max() <= setup.speed_mps[1] * setup.step_s + 1e-9
    assert (step == 0).any()  # pauses happen


# -- a small real run ------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_runs() -> dict[float, tracking.TrackingRun]:
    setup = TrackingSetup(side_m=600.0, n_walkers=40, hours=1.5)
    return {p: tracking.run_pitch(setup, p, seed=0) for p in (25.0, 75.0, 200.0)}


def test_denser_networks_hear_more(small_runs: dict[float, tracking.TrackingRun]) -> None:
    heard = [small_runs[p].results[900.0, "equal"].observed_share for p in (25.0, 75.0, 200.0)]
    assert heard[0] > heard[1] > heard[2] > 0.0


def test_linking_orders_hold_on_the_same_sightings(
    small_runs: dict[float, tracking.TrackingRun],
) -> None:
    """Same sightings and nested TempID epochs, so by equal ID: never >= 2 h >= 15 min;
    and stitching (right stitches only) never loses time or shortens tracks."""
    for run in small_runs.values():
        r = run.results
        assert r[NEVER, "equal"].linked_share >= r[7200.0, "equal"].linked_share - 1e-12
        assert r[7200.0, "equal"].linked_share >= r[900.0, "equal"].linked_share - 1e-12
        for rot in (900.0, 7200.0, NEVER):
            assert r[rot, "stitched"].linked_share >= r[rot, "equal"].linked_share - 1e-12
            assert r[rot, "stitched"].mean_track_min >= r[rot, "equal"].mean_track_min - 1e-12
            assert 0.0 <= r[rot, "equal"].linked_share <= 1.0


def test_fifteen_minute_ids_cap_equal_id_tracks(
    small_runs: dict[float, tracking.TrackingRun],
) -> None:
    for run in small_runs.values():
        assert max(run.results[900.0, "equal"].track_minutes) <= 15.0
        assert max(run.results[7200.0, "equal"].track_minutes) <= 120.0


def test_table_and_task_shapes() -> None:
    setup = TrackingSetup(side_m=400.0, n_walkers=10, hours=0.5)
    rows, _ = tracking.tracking_table(setup, seeds=(0, 1), pitches=(75.0,))
    assert len(rows) == 3 * 2
    md = tracking.table_markdown(rows)
    assert md.count("\n") == 2 + 3
    doc = tracking.table_json(rows, setup, (0, 1))
    assert len(doc["rows"]) == 6  # type: ignore[arg-type]
    out = tracking.tracking_task(
        {"pitch_m": 75, "rotation_s": 900, "n_walkers": 10, "hours": 0.5, "side_m": 400.0}, 0
    )
    assert set(out) >= {"observed_share", "linked_share_equal", "mean_track_min_stitched"}


def test_command_prints_the_table_and_saves_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "tracking.json"
    args = ["--seeds", "1", "--walkers", "5", "--hours", "0.2", "--out", str(out)]
    assert tracking.main(args) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("| pitch | rotation |")
    assert len(printed) == 2 + 9
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["setup"]["n_walkers"] == 5
    assert len(doc["rows"]) == 18
    with pytest.raises(SystemExit):
        tracking.main(["--seeds", "0"])


def test_any_integer_tempids_link_alike() -> None:
    """Small non-negative IDs take a counting shortcut; any others a sort: same tracks."""
    s, tid = hand_world()
    for method in ("equal", "stitched"):
        small = link(s, tid, method, gap_steps=3)
        shifted = link(s, tid - 1000, method, gap_steps=3)
        assert spans(small) == spans(shifted)
        assert (small.stitches, small.wrong_stitches) == (shifted.stitches, shifted.wrong_stitches)
