"""Units of simulated time, below every other simulator module so all can share them."""

from typing import Final

#: Seconds in a simulated day: pair-days, retention and rule windows count in it.
DAY: Final = 86400.0
