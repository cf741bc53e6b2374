"""What protocol_spec.md defines, and nothing else: the bytes (construct definitions
and their fast paths), typed messages, framing, time formats, the clock and the
server's state table. Pure: no sockets, no files, no terminal.
"""
