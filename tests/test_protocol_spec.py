"""protocol_spec.md cannot drift: every hex example in it is parsed here."""

import re
from pathlib import Path

import pytest

from bluetrace.protocol import messages, wire
from bluetrace.protocol.messages import decode, decode_beacon, encode, encode_beacon

SPEC = Path(__file__).resolve().parent.parent / "protocol_spec.md"
_BLOCK = re.compile(r"^```hex (\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _examples() -> list[tuple[str, bytes]]:
    found = []
    for label, body in _BLOCK.findall(SPEC.read_text(encoding="utf-8")):
        digits = "".join(line.split("#", 1)[0] for line in body.splitlines())
        found.append((label, bytes.fromhex(digits)))
    return found


EXAMPLES = _examples()


@pytest.mark.parametrize(("label", "data"), EXAMPLES, ids=[label for label, _ in EXAMPLES])
def test_example_parses_to_its_labelled_type_and_back(label: str, data: bytes) -> None:
    if label == "Beacon":
        window = decode_beacon(data)
        assert encode_beacon(window) == data
        return
    message = decode(data)
    assert type(message).__name__ == label
    assert encode(message) == data


def test_every_message_type_and_the_beacon_have_an_example() -> None:
    labels = {label for label, _ in EXAMPLES}
    expected = {cls.__name__ for cls in messages.Message.__args__} | {"Beacon"}
    assert labels == expected


def test_the_stated_body_limit_is_the_codes() -> None:
    text = SPEC.read_text(encoding="utf-8")
    assert f"`L <= {wire.MAX_FRAME_BODY}`" in text
    assert f"{wire.MAX_FRAME_BODY:,} bytes" in text
