"""The health authority: the shared server state and the sans-I/O connection
(bytes and time in, bytes, events and a deadline out), its stores and record
formats, password hashing, and the programs that host them (``bluetrace-server``,
``bluetrace-passwd``).
"""
