"""bluetrace-conform: grades any implementation of protocol_spec.md.

The kit plays phones against a server (``server`` mode), a server and a
beacon sender against a phone (``client`` mode), fires datagrams at a phone's
UDP port (``beacon`` mode) and reads the data files (``files`` mode). Every
case names the statement tags of protocol_spec.md it checks, quotes its
sentence and lists every outcome the specification allows.
"""
