"""A phone: the sans-I/O ``Phone`` (typed requests and events, the contact log), the
shell that turns typed lines into requests and events into the specification's
texts, and the program that hosts them (``bluetrace-client``).
"""
