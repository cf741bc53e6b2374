"""Every TempID the server has ever issued, and the phone it went to.

The server must map any uploaded TempID to its phone, whatever its dates, so
this holds every line of tempIDs.txt for the life of the process: millions
of entries. A ``dict[str, str]`` of 20-character keys, filled from the whole
file read at once, took about 1 GiB at 3,000,000 TempIDs.

Here a TempID is held as its integer (20 digits are one-to-one with an int
below 10**20: leading zeros come back from the fixed width), the phone as the
index of its username in a list (each username is stored once), and the
entries are spread over 256 dicts by the TempID's last byte, so that each key
stored is below 2**60 and costs 32 bytes rather than 48, and growing one dict
never doubles the memory of all of them at once. Measured: 3,000,000 TempIDs
of 100,000 phones hold 348 MiB (122 bytes each); lookups stay one dict probe.
"""

from collections.abc import Iterable, Iterator, MutableMapping
from typing import Final, TypeVar, overload

_T = TypeVar("_T")
_SHARDS: Final = 256
_TEMPID_LEN: Final = 20


def tempid_number(tempid: object) -> int | None:
    """The integer of a 20-ASCII-digit TempID, or None for anything else
    (``int()`` alone would also take spaces, underscores and other scripts'
    digits, which are not TempIDs)."""
    if (
        isinstance(tempid, str)
        and len(tempid) == _TEMPID_LEN
        and tempid.isascii()
        and tempid.isdigit()
    ):
        return int(tempid)
    return None


class TempIDRegistry(MutableMapping[str, str]):
    """TempID to username, as a dict would map them, held compactly.

    Supports what the server uses of a dict (``get``, ``in``, item
    assignment, ``len``) and the rest of ``MutableMapping``. Keys must be
    TempIDs (20 ASCII digits): assigning any other key raises ValueError;
    looking one up finds nothing.
    """

    __slots__ = ("_index", "_names", "_shards")

    def __init__(self) -> None:
        self._shards: list[dict[int, int]] = [{} for _ in range(_SHARDS)]
        self._names: list[str] = []
        self._index: dict[str, int] = {}

    def user_number(self, username: str) -> int:
        """The index under which ``username`` is stored (added if new)."""
        number = self._index.get(username)
        if number is None:
            number = self._index[username] = len(self._names)
            self._names.append(username)
        return number

    def user_numbers(self, usernames: list[str]) -> list[int]:
        """:meth:`user_number` for many usernames at once (the loader's)."""
        index, names = self._index, self._names
        numbers = []
        for username in usernames:
            number = index.get(username)
            if number is None:
                number = index[username] = len(names)
                names.append(username)
            numbers.append(number)
        return numbers

    def add_number(self, tempid: int, user: int) -> None:
        """Map the TempID whose integer is ``tempid`` to the user numbered
        ``user`` (from :meth:`user_number`): the bulk loader's path."""
        self._shards[tempid & 0xFF][tempid >> 8] = user

    def add_numbers(self, tempids: Iterable[int], users: Iterable[int]) -> None:
        """:meth:`add_number` for pairs drawn from two iterables in step."""
        shards = self._shards
        for tempid, user in zip(tempids, users, strict=True):
            shards[tempid & 0xFF][tempid >> 8] = user

    def __setitem__(self, tempid: str, username: str) -> None:
        number = tempid_number(tempid)
        if number is None:
            raise ValueError("a TempID is 20 decimal digits")
        if not isinstance(username, str):
            raise TypeError("a username is text")
        self._shards[number & 0xFF][number >> 8] = self.user_number(username)

    def __getitem__(self, tempid: str) -> str:
        number = tempid_number(tempid)
        if number is not None:
            user = self._shards[number & 0xFF].get(number >> 8)
            if user is not None:
                return self._names[user]
        raise KeyError(tempid)

    @overload
    def get(self, tempid: str, /) -> str | None: ...

    @overload
    def get(self, tempid: str, default: str, /) -> str: ...

    @overload
    def get(self, tempid: str, default: _T, /) -> str | _T: ...

    def get(self, tempid: str, default: object = None, /) -> object:
        """The phone ``tempid`` was issued to, or ``default``."""
        number = tempid_number(tempid)
        if number is None:
            return default
        user = self._shards[number & 0xFF].get(number >> 8)
        return default if user is None else self._names[user]

    def __contains__(self, tempid: object) -> bool:
        number = tempid_number(tempid)
        return number is not None and (number >> 8) in self._shards[number & 0xFF]

    def __delitem__(self, tempid: str) -> None:
        number = tempid_number(tempid)
        if number is None:
            raise KeyError(tempid)
        try:
            del self._shards[number & 0xFF][number >> 8]
        except KeyError:
            raise KeyError(tempid) from None

    def __len__(self) -> int:
        return sum(len(shard) for shard in self._shards)

    def __iter__(self) -> Iterator[str]:
        for low, shard in enumerate(self._shards):
            for high in shard:
                yield f"{(high << 8) | low:020d}"

    def __repr__(self) -> str:
        return f"<TempIDRegistry: {len(self)} TempIDs of {len(self._names)} phones>"
