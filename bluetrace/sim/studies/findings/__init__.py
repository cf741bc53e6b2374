"""The investigations of docs/investigations.md, one module per subject.

Each module lists its entries in ``ENTRIES``; the page order is the order of
``SUBJECTS`` below (Leith's tram and bus and the exposure rules, app uptake,
the attacks, then tracking), set here once rather than by import order. The
page itself is written by ``bluetrace.sim.studies.investigate``.
"""

from bluetrace.sim.studies.findings import attacks, exposure_rules, tracking, uptake
from bluetrace.sim.studies.findings.registry import (
    REGISTRY,
    Finding,
    Investigation,
    Options,
    register,
)

SUBJECTS = (exposure_rules, uptake, attacks, tracking)
for _subject in SUBJECTS:
    for _entry in _subject.ENTRIES:
        register(_entry)

__all__ = ["REGISTRY", "SUBJECTS", "Finding", "Investigation", "Options", "register"]
