"""bluetrace: a BlueTrace contact-tracing protocol simulator.

The packages, in dependency order (each imports only those above it; a test,
``tests/test_layers.py``, follows the imports and holds the rule):

``protocol``
    What ``protocol_spec.md`` defines, pure: errors, time formats, the clock,
    the construct wire definitions and their fast paths, typed messages, the
    frame decoder and the server's state table.
``runtime``
    Everything that holds a file descriptor: the one selectors loop, its
    transports, TLS through memory BIOs (and as a stream used like the plain
    one), bounded terminal output, crash-safe file writes, worker processes,
    and the command-line helpers.
``term``
    The phone's terminal: the line editor (pure: keys in, screen bytes out),
    the console that runs it inside the loop, the raw-mode terminal.
``server``
    The health authority: shared state and the sans-I/O connection, stores and
    record formats, password hashing; ``server.main`` and ``server.passwd`` are
    the programs.
``phone``
    A phone: the sans-I/O ``Phone``, its shell and texts; ``phone.main`` is the
    program.
``testing``
    The in-memory hosts and the manual clock that run the sans-I/O objects
    without sockets (the tests and the simulator's exact engine use them).

Beside the programs: ``sim`` (the simulator), ``conform`` (the conformance
kit and the assignment grader) and ``bench`` (the benchmarks) use the layers
above and are used by none of them.
"""

__version__ = "0.1.0"
