"""The attack lab and V4 on the real protocol code (exact engine), small N."""

import math

from bluetrace.sim.studies import attacks


def test_replay_acceptance_follows_one_minus_d_over_900() -> None:
    points = attacks.replay_curve([0.0, 300.0, 600.0, 900.0, 1200.0], trials=300)
    for point in points:
        # Binomial, 300 trials: 4 standard deviations is at most 0.116.
        sd = math.sqrt(max(point.analytic * (1 - point.analytic), 1e-9) / point.tried)
        assert abs(point.rate - point.analytic) <= max(4 * sd, 0.0)
    assert points[0].rate == 1.0  # a live beacon is always accepted
    assert points[-2].rate == 0.0  # 15 minutes later: never
    assert points[-1].rate == 0.0


def test_uptake_recall_is_u_squared_p_end_to_end() -> None:
    result = attacks.uptake_end_to_end(0.6, 0.8, seeds=2)
    assert result.true > 1500
    sd = math.sqrt(result.expected * (1 - result.expected) / result.true)
    # App users are drawn per seed, which adds variance: allow 4 binomial sds.
    assert abs(result.recall - result.expected) <= 4 * sd


def test_relays_create_false_contacts_the_server_names() -> None:
    (one, three) = attacks.relay_lab([1, 3], hours=0.05)
    assert one.false_contacts == 9  # 3 heard x 3 reached, all accepted as live
    assert three.false_contacts > one.false_contacts
    assert three.named_falsely == three.false_contacts
