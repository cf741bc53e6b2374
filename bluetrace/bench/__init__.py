"""``python -m bluetrace.bench``: bluetrace measured through real sockets, beside a ceiling.

Each figure is printed next to a ceiling measured in the same run on the same
machine (a bare stand-in doing no protocol work), so that the ratio means
something on a noisy shared host where absolute times do not. Load comes from
separate processes; the server and phone are measured as black boxes.

Layout: ``__main__`` (command line), ``context`` (what a part is handed),
``sizes`` (full and --quick), ``report`` (table, legend, JSON), ``processes``
(starting and waiting on programs; shared with the tests), ``load`` and
``ceiling`` (helper programs), ``frames`` and ``datafiles`` (prepared input),
and one module per part: ``parsers``, ``sessions``, ``startup``, ``checking``,
``held``, ``churn``, ``pipelining``, ``beacons``.
"""
