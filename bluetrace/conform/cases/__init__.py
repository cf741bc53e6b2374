"""The cases, one module per mode (server mode split by topic); each case's ID
carries the section of protocol_spec.md it checks. What they run against is
in the targets beside this package (``server_target``, ``client_target``,
``beacon_target``, ``files_target``)."""
