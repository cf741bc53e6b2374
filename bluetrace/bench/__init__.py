"""``make bench``: bluetrace measured through real sockets, beside a ceiling.

Each figure is printed next to a bare-socket ceiling measured in the same run
on the same machine, so that the ratio means something on a noisy shared
host where absolute times do not. Load comes from separate processes.
"""
