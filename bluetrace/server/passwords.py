"""Passwords at rest: the assignment's plain form, or a salted scrypt hash.

credentials.txt keeps the assignment's ``<username> <password>`` lines, and
also takes ``<username> $scrypt$n=16384,r=8,p=1$<salt>$<key>`` (salt and key
in unpadded base64), so that plain and hashed users can share one file while
a deployment moves over. A password as typed can therefore not begin with
``$scrypt$``: such a line is always read as a hash (and refused if it is not
a well-formed one).

scrypt is the standard library's memory-hard KDF. One check costs about
35 ms here at the default cost (n = 2^14, r = 8), which is why the server
runs checks in worker processes (``bluetrace.runtime.workers``), bounds how many it
runs per second (``Limits.hashes_per_second``), and bounds what one line may
ask for (MAX_WORK, MAX_MEMORY).
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
MIN_SALT_BYTES: Final = 16
MAX_SALT_BYTES: Final = 48
MAX_N: Final = 2**20
MAX_MEMORY: Final = 129 * 1024 * 1024
"""The most memory one check may take, counted as OpenSSL counts it
(:func:`memory`): 128 MiB for n's table, 1 MiB for the rest. The same
figure is scrypt's ``maxmem``, so a line the loader accepts is a check
that runs: never "memory limit exceeded" at the first login."""
MAX_WORK: Final = 2**20
"""The most work one check may take, as n * r * p: 8 times the default
cost (2^14 * 8 * 1), about 0.3 s of one worker. p multiplies the time
without the memory, so it is bounded here, not by MAX_MEMORY."""
_FORM: Final = re.compile(
    r"\$scrypt\$n=([0-9]{1,8}),r=([0-9]{1,2}),p=([0-9]{1,2})\$([A-Za-z0-9+/]{22,64})\$([A-Za-z0-9+/]{43})"
)


def memory(n: int, r: int, p: int) -> int:
    """Bytes one scrypt check allocates, by OpenSSL's own rule
    (EVP_PBE_scrypt: ``Blen = 128 r p``, ``Vlen = 128 r (n + 2)``)."""
    return 128 * r * p + 128 * r * (n + 2)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def is_hashed(stored: str) -> bool:
    """Whether ``stored`` names a hash scheme: ``$scrypt$`` in any case, so
    that ``$SCRYPT$...`` is refused as a malformed hash by :func:`problem`
    rather than taken for a plain password nobody would type."""
    return stored[: len(PREFIX)].lower() == PREFIX


def cost_problem(n: int, r: int, p: int) -> str | None:
    """Why scrypt with these parameters is not one this server will run, or None."""
    if n < 2 or n & (n - 1) or n > MAX_N:
        return f"scrypt n must be a power of two from 2 to {MAX_N:,}, not {n:,}"
    if not (1 <= r <= 32 and 1 <= p <= 16):
        return f"scrypt r must be 1 to 32 and p 1 to 16, not r={r}, p={p}"
    if n * r * p > MAX_WORK:
        return (
            f"scrypt n*r*p is {n * r * p:,}, over the {MAX_WORK:,} a check may cost "
            f"(n={n:,}, r={r}, p={p})"
        )
    if memory(n, r, p) > MAX_MEMORY:
        return (
            f"scrypt n={n:,}, r={r}, p={p} needs {memory(n, r, p) / 2**20:,.1f} MiB a check, "
            f"over the {MAX_MEMORY // 2**20} MiB allowed"
        )
    return None


def problem(stored: str) -> str | None:
    """Why ``stored`` (a hashed credential) is not well formed, or None."""
    if not stored.startswith(PREFIX):
        return f"the hash scheme is written {PREFIX} in lower case, not {stored[:len(PREFIX)]}"
    match = _FORM.fullmatch(stored)
    if match is None:
        return (
            "a password starting with $scrypt$ must be "
            "$scrypt$n=<N>,r=<R>,p=<P>$<salt>$<key> (see bluetrace-passwd)"
        )
    n, r, p = (int(group) for group in match.groups()[:3])
    why = cost_problem(n, r, p)
    if why is not None:
        return why
    salt = len(_unb64(match.group(4)))
    if not MIN_SALT_BYTES <= salt <= MAX_SALT_BYTES:
        return f"scrypt salt must be {MIN_SALT_BYTES} to {MAX_SALT_BYTES} bytes, not {salt}"
    return None


def hash_password(
    password: str, *, n: int = DEFAULT_N, r: int = DEFAULT_R, p: int = DEFAULT_P
) -> str:
    """The stored form of ``password``, with a fresh random salt; ValueError
    for parameters :func:`cost_problem` refuses."""
    why = cost_problem(n, r, p)
    if why is not None:
        raise ValueError(why)
    salt = os.urandom(SALT_BYTES)
    key = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=MAX_MEMORY, dklen=KEY_BYTES
    )
    return f"{PREFIX}n={n},r={r},p={p}${_b64(salt)}${_b64(key)}"


def verify(stored: str, password: str) -> bool:
    """Whether ``password`` matches ``stored`` (plain or hashed), compared in
    constant time. A malformed hash, or one that cannot be computed, matches
    nothing: a check never raises, whatever the file held."""
    typed = password.encode("utf-8")
    if not is_hashed(stored):
        return hmac.compare_digest(stored.encode("utf-8"), typed)
    match = _FORM.fullmatch(stored)
    if match is None or problem(stored) is not None:
        return False
    n, r, p = (int(group) for group in match.groups()[:3])
    try:
        key = hashlib.scrypt(
            typed, salt=_unb64(match.group(4)), n=n, r=r, p=p, maxmem=MAX_MEMORY, dklen=KEY_BYTES
        )
    except (ValueError, MemoryError):
        return False
    return hmac.compare_digest(key, _unb64(match.group(5)))


def needs_hashing(stored: str) -> bool:
    """Whether checking a password against ``stored`` is a hash worth taking
    off the loop (a plain comparison is not)."""
    return is_hashed(stored) and problem(stored) is None


def verify_job(payload: bytes) -> bytes:
    """A worker's check: ``stored LF typed`` in, ``1`` (match) or ``0`` out."""
    stored, _, typed = payload.decode("utf-8").partition("\n")
    return b"1" if verify(stored, typed) else b"0"


def verify_request(stored: str, password: str) -> bytes:
    return f"{stored}\n{password}".encode()


def hash_job(payload: bytes) -> bytes:
    """A worker's hashing for a registration: the password in, its stored form out."""
    return hash_password(payload.decode("utf-8")).encode("ascii")
