"""How many records a listing returns (``limit=``), as every service that lists takes it.

The services are called from Python as well as from the CLI (whose option parser checks the
type only), so the rule lives here, read once by each service at its boundary, as
:mod:`.durations` reads windows. Nothing is guessed at: SQL reads ``LIMIT -1`` as no limit at
all, ``True`` is an int to Python, ``2.5`` and ``"10"`` are not counts, and an int past 64 bits
overflows the database driver.
"""

from __future__ import annotations

import numbers

from modelyard.domain.numbers import shown_value
from modelyard.errors import InvalidInput

__all__ = ["MAX_LIMIT", "limit_of"]

#: The most records one listing returns: a page a person or a script reads at once, and
#: far below what any database driver takes as a LIMIT.
MAX_LIMIT = 10_000


def limit_of(value: object, what: str = "limit") -> int:
    """A listing's ``limit`` given to the Python API: an int from 1 to :data:`MAX_LIMIT`
    (numpy's ints too).

    Args:
        value: What the caller gave.
        what: The argument's name, for the refusal.

    Returns:
        The limit, as a plain int.

    Raises:
        InvalidInput: naming ``what`` and the value, when it is not an int (a bool, a float,
            text), or is below 1 or above :data:`MAX_LIMIT`.
    """
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise InvalidInput(
            f"{what} must be a whole number from 1 to {MAX_LIMIT:,}, got "
            f"{type(value).__name__} {shown_value(value)}"
        )
    count = int(value)
    if not 1 <= count <= MAX_LIMIT:
        raise InvalidInput(f"{what} must be from 1 to {MAX_LIMIT:,}, got {shown_value(count)}")
    return count
