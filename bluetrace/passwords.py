"""Passwords at rest: the assignment's plain form, or a salted scrypt hash.

credentials.txt keeps the assignment's ``<username> <password>`` lines, and
also takes ``<username> $scrypt$n=16384,r=8,p=1$<salt>$<key>`` (salt and key
in unpadded base64), so that plain and hashed users can share one file while
a deployment moves over. A password as typed can therefore not begin with
``$scrypt$``: such a line is always read as a hash (and refused if it is not
a well-formed one).

scrypt is the standard library's memory-hard KDF. One check costs about
35 ms here at the default cost (n = 2^14, r = 8), which is why the server
bounds how many it runs per second (``Limits.hashes_per_second``).
"""

import base64
import hashlib
import hmac
import os
import re
from typing import Final

PREFIX: Final = "$scrypt$"
DEFAULT_N: Final = 2**14
DEFAULT_R: Final = 8
DEFAULT_P: Final = 1
KEY_BYTES: Final = 32
SALT_BYTES: Final = 16
MAX_N: Final = 2**20
"""The dearest cost a file may name: a line cannot make one check take seconds."""
_MAXMEM: Final = 256 * 1024 * 1024
_FORM: Final = re.compile(
    r"\$scrypt\$n=([0-9]{1,8}),r=([0-9]{1,2}),p=([0-9]{1,2})\$([A-Za-z0-9+/]{16,64})\$([A-Za-z0-9+/]{43})"
)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def is_hashed(stored: str) -> bool:
    return stored.startswith(PREFIX)


def problem(stored: str) -> str | None:
    """Why ``stored`` (a hashed credential) is not well formed, or None."""
    match = _FORM.fullmatch(stored)
    if match is None:
        return (
            "a password starting with $scrypt$ must be "
            "$scrypt$n=<N>,r=<R>,p=<P>$<salt>$<key> (see bluetrace-passwd)"
        )
    n, r, p = (int(group) for group in match.groups()[:3])
    if n < 2 or n & (n - 1) or n > MAX_N:
        return f"scrypt n must be a power of two from 2 to {MAX_N:,}, not {n:,}"
    if not (1 <= r <= 32 and 1 <= p <= 16) or 128 * r * n > _MAXMEM:
        return "scrypt r and p are out of range"
    return None


def hash_password(
    password: str, *, n: int = DEFAULT_N, r: int = DEFAULT_R, p: int = DEFAULT_P
) -> str:
    """The stored form of ``password``, with a fresh random salt."""
    salt = os.urandom(SALT_BYTES)
    key = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_MAXMEM, dklen=KEY_BYTES
    )
    return f"{PREFIX}n={n},r={r},p={p}${_b64(salt)}${_b64(key)}"


def verify(stored: str, password: str) -> bool:
    """Whether ``password`` matches ``stored`` (plain or hashed), compared in
    constant time. A malformed hash matches nothing."""
    typed = password.encode("utf-8")
    match = _FORM.fullmatch(stored) if is_hashed(stored) else None
    if match is None:
        return not is_hashed(stored) and hmac.compare_digest(stored.encode("utf-8"), typed)
    if problem(stored) is not None:
        return False
    n, r, p = (int(group) for group in match.groups()[:3])
    key = hashlib.scrypt(
        typed, salt=_unb64(match.group(4)), n=n, r=r, p=p, maxmem=_MAXMEM, dklen=KEY_BYTES
    )
    return hmac.compare_digest(key, _unb64(match.group(5)))
