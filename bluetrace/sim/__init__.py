"""bluetrace.sim: the BlueTrace simulator (world model, radio, engines, metrics, report).

The simulator is an optional part of the package: it needs the ``sim`` extra
(numpy, matplotlib, jinja2, rich). The server and the phone never import it.

Layout, one concern per module:

* ``radio``     path loss, shadowing and detection probability (``RadioModel``)
* ``profiles``  phone duty cycles (OpenTrace Android / iOS, GAEN, the assignment)
* ``places``    geometry of rooms, seat grids and random-waypoint walking
* ``scenario``  the scenario description, TOML files and the built-in scenarios
* ``world``     people, schedules, co-location intervals (``World``, ``INTERVAL_DTYPE``)
* ``rules``     close-contact and exposure rules, ground truth
* ``channel``   per-interval links: when one scan or beacon gets through (both engines)
* ``result``    ``EngineResult``: what every engine hands to the metrics
* ``fast``      the numpy encounter-level engine
* ``exact``     the real phone and server objects on a virtual clock (``run_exact``)
* ``metrics``   recall, precision, continuity and counters with confidence intervals
* ``report``    results.json, CSVs, figures and the HTML report
* ``runner``    engines by name, seeds and sweeps
* ``figures``   matplotlib figures; ``progress``: the progress bar
* ``cli``       ``bluetrace-sim``; ``bench``: the engines' benchmark
* ``exposure``  attenuation-based exposure rules, ROC and AUC (V1)
* ``tracking``  sniffer networks linking walkers' TempIDs (V5)
* ``attacks``   V4 uptake, replay and relay on the real protocol code
* ``sweep``     grids of parameters x seeds, locally or on a Dask cluster
* ``replay``    the exposure rules on measured per-pair data (``bluetrace-sim rules``)
* ``findings``  the investigations, one module per subject (``ENTRIES`` each)
* ``investigate`` runs them and writes docs/investigations.md
"""
