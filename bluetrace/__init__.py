"""bluetrace: a BlueTrace contact-tracing protocol simulator.

The package is split so that every protocol rule can be exercised with plain
bytes and a fake clock: ``wire`` and ``messages`` own the bytes,
``framing`` cuts a TCP stream into messages, ``server_core`` and
``client_core`` hold the rules, and ``server``/``client`` wire them to real
sockets, files and the terminal through the one ``reactor``.
"""

__version__ = "0.1.0"
