"""Studies built on the simulator: each asks one question with its own small model.

The synthetic Leith experiment (``exposure``), tracking by sniffers (``tracking``),
uptake end to end, replay and relay (``attacks``), and the findings page that runs
them all (``investigate``, one module per subject in ``findings``). They import the
simulator's core (``bluetrace.sim``); the core never imports them
(``tests/test_layers.py``), as a framework's examples sit apart from the framework.
"""
