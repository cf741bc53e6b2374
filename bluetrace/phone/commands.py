"""The phone's commands as a user meets them: the ``help`` table and the
words Tab completes.

One table feeds both, so help and completion cannot drift apart; the
commands themselves are carried out by ``shell``.
"""

from typing import NamedTuple


class Command(NamedTuple):
    name: str
    usage: str
    summary: str


COMMANDS: tuple[Command, ...] = (
    Command(
        "Download_tempID",
        "Download_tempID",
        "get a new TempID from the server",
    ),
    Command(
        "Upload_contact_log",
        "Upload_contact_log",
        "send recently received beacons for checking",
    ),
    Command(
        "Beacon",
        "Beacon <dest IP> <dest port>",
        "send your TempID to the phone at that UDP port",
    ),
    Command("logout", "logout", "log out and leave"),
    Command("help", "help", "show this list"),
)

COMPLETIONS: tuple[str, ...] = tuple(command.name for command in COMMANDS)
"""The words Tab completes at the phone's ``> `` prompt."""

_COLUMN = max(len(command.usage) for command in COMMANDS) + 2

HELP_TEXT = "Commands (case matters):\n" + "\n".join(
    f"  {command.usage.ljust(_COLUMN)}{command.summary}" for command in COMMANDS
)
"""What ``help`` prints, and what ``--help`` can append as its epilog."""
