"""Pre-built request bytes and reply sizes for the load generator and ceiling.

Built once with the real encoder, so the ceiling answers exactly the same
number of round trips with exactly the same byte sizes as the real server.
"""

from datetime import datetime

from bluetrace import wire
from bluetrace.messages import (
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


TEMPID_REQUEST = encode(TempIDRequest())
LOGOUT_REQUEST = encode(LogoutRequest())
LOGIN_OK = encode(LoginReply(wire.LoginStatus.OK))
TEMPID_REPLY = encode(TempIDReply(_WINDOW))
LOGOUT_REPLY = encode(LogoutReply())
