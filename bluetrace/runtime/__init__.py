"""Everything that holds a file descriptor: the one selectors loop, its transports,
TLS through memory BIOs, bounded terminal output, crash-safe file writes, worker
processes, and the command-line helpers the programs share.
"""
