"""Write the seed corpus: one file per valid message, in the target's input form."""

from datetime import datetime
from pathlib import Path

from bluetrace.protocol import wire
from bluetrace.protocol.messages import (
    ErrorReply,
    LoginReply,
    LoginRequest,
    LogoutReply,
    LogoutRequest,
    Message,
    TempIDReply,
    TempIDRequest,
    TempIDWindow,
    UploadReply,
    UploadRequest,
    encode,
    encode_beacon,
)

WINDOW = TempIDWindow(
    "12345678901234567893", datetime(2020, 5, 14, 17, 54, 6), datetime(2020, 5, 14, 18, 9, 5)
)
SEEDS: dict[str, Message] = {
    "login": LoginRequest("+61410888888", "comp3331"),
    "login_reply": LoginReply(wire.LoginStatus.BLOCKED_NOW),
    "tempid_request": TempIDRequest(),
    "tempid_reply": TempIDReply(WINDOW),
    "upload": UploadRequest((WINDOW, WINDOW), final=True),
    "upload_reply": UploadReply(2),
    "logout": LogoutRequest(),
    "logout_reply": LogoutReply(),
    "error": ErrorReply(wire.ErrorCode.MALFORMED, "bad frame"),
}


def main() -> None:
    corpus = Path(__file__).resolve().parent / "corpus"
    corpus.mkdir(exist_ok=True)
    for name, message in SEEDS.items():
        (corpus / f"frame_{name}").write_bytes(b"\x00" + encode(message))
    (corpus / "beacon").write_bytes(b"\x01" + encode_beacon(WINDOW))


if __name__ == "__main__":
    main()
