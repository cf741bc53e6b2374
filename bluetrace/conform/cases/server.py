"""Server mode: the kit plays phones against any server of protocol_spec.md.

Cases run in this order: sessions (login, TempIDs, uploads), frames,
closing and timeouts, then blocking. The blocking cases share the spare
user's block; the shutdown case stops the server and so runs last.

RST or FIN: wherever the specification says a connection is closed, both an
orderly close (FIN) and a reset (RST) count as closed; the report says which
was seen. The kit sends exactly the offending bytes and nothing after them,
so a server that closes with nothing unread sends FIN, and the ERROR reply
that must come first is never lost to a reset.
"""

from bluetrace.conform.cases import (
    server_block,
    server_frame,
    server_session,
    server_timeout,
)
from bluetrace.conform.model import Case
from bluetrace.conform.server_target import ServerTarget

CASES: list[Case[ServerTarget]] = [
    *server_session.CASES,
    *server_frame.CASES,
    *server_timeout.CASES,
    *server_block.CASES,
]
