"""How big each part runs: the full sizes behind the targets, and --quick.

The quick sizes only keep the bench's code working (the test suite runs them);
their figures are printed but never judged against a target.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Sizes:
    parser_rounds: int
    session_seconds: float
    session_clients: tuple[int, ...]
    startup_tempids: int
    startup_credentials: int
    checking_tempids: int
    upload_entries: int
    held: int
    churn_cycles: int
    pipeline_bytes: int
    pipeline_seconds: float
    beacon_rates: tuple[int, ...]
    beacon_seconds: float
    spread_connections: tuple[int, ...]
    spread_bytes: int
    spread_seconds: float
    hello_rate: int
    hello_seconds: float
    idle_connections: int


FULL = Sizes(
    parser_rounds=20_000,
    session_seconds=4.0,
    session_clients=(1, 10, 100),
    startup_tempids=3_000_000,
    startup_credentials=1_000_000,
    checking_tempids=1_000_000,
    upload_entries=100_000,
    held=5_000,
    churn_cycles=100_000,
    pipeline_bytes=1 << 20,
    pipeline_seconds=15.0,
    beacon_rates=(5_000, 10_000, 15_000, 20_000, 25_000, 30_000, 35_000, 40_000),
    beacon_seconds=1.0,
    spread_connections=(250, 1_000),
    spread_bytes=64 << 10,
    spread_seconds=8.0,
    hello_rate=1_000,
    hello_seconds=8.0,
    idle_connections=21_000,
)

QUICK = Sizes(
    parser_rounds=500,
    session_seconds=0.3,
    session_clients=(1, 10),
    startup_tempids=5_000,
    startup_credentials=5_000,
    checking_tempids=5_000,
    upload_entries=3_000,
    held=50,
    churn_cycles=1_000,
    pipeline_bytes=64 << 10,
    pipeline_seconds=0.5,
    beacon_rates=(500, 1_000),
    beacon_seconds=0.2,
    spread_connections=(20,),
    spread_bytes=8 << 10,
    spread_seconds=0.5,
    hello_rate=50,
    hello_seconds=0.5,
    idle_connections=150,
)
