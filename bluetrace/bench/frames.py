"""Pre-built request bytes and reply sizes for the load generator and ceiling.

Built once with the real encoder, so the ceiling answers exactly the same
number of round trips with exactly the same byte sizes as the real server.
"""

from datetime import datetime

from bluetrace.protocol import wire
from bluetrace.protocol.messages import (
    LoginReply,
    LoginRequest,
    LogoutReply,
    LogoutRequest,
    TempIDReply,
    TempIDRequest,
    TempIDWindow,
    encode,
)

_WINDOW = TempIDWindow("0" * 20, datetime(2020, 1, 1), datetime(2020, 1, 1, 0, 14, 59))


def login(username: str, password: str) -> bytes:
    return encode(LoginRequest(username, password))


def account(index: int) -> tuple[str, str]:
    """The bench's generated account number ``index``: username, password.

    Load is spread over many accounts because the server may limit what one
    user does per hour (TempIDs, upload entries); the bench measures the
    server's work, not its per-user limits."""
    return f"+615{index:08d}", f"pw{index:08d}"


def logins(count: int) -> list[bytes]:
    """LOGIN frames for the first ``count`` generated accounts."""
    return [login(*account(i)) for i in range(count)]


TEMPID_REQUEST = encode(TempIDRequest())
LOGOUT_REQUEST = encode(LogoutRequest())
LOGIN_OK = encode(LoginReply(wire.LoginStatus.OK))
TEMPID_REPLY = encode(TempIDReply(_WINDOW))
LOGOUT_REPLY = encode(LogoutReply())
