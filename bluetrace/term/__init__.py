"""The phone's terminal: the line editor (keys in, screen bytes and events out), the
console that runs it inside the loop, and the raw-mode terminal around it.
"""
