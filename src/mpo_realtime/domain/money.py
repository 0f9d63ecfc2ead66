"""Money as integer nano-units: how a JSON cost becomes an exact amount.

Costs are held with 9 decimals (``COST_SCALE``) from ingest to the export file, so sums
are exact and identical whatever order an engine adds them in.

The rounding rule: a cost is the decimal value of the JSON number, rounded half to even
to 9 decimals. A number with at most 15 significant digits is taken as written: every
cost of at most 9 decimals under the per-event cap (1,000,000) is one of those, so it is
stored exactly. A longer number (``0.1 * 3`` computed in floating point arrives as
``0.30000000000000004``) is first read as the nearest binary double, as any JSON reader
does, then rounded: ``0.300000000``.

Why the vectorised path is exact. Let ``v`` be the decimal a double ``x`` stands for
(its shortest form, ``repr``) and ``T = v * 10**9`` the wanted amount before rounding.
For ``0 <= x <= 10**6``: ``x * 1e9 <= 10**15 < 2**50``, so the computed product ``s`` is
within ``ulp(s) / 2 <= 2**-4`` of ``x * 10**9``, and ``|x - v| <= ulp(x) / 2 <= 2**-34``
adds at most ``10**9 * 2**-34 < 0.059``: ``|s - T| < 0.122``. Where ``s`` lies within
0.3 of an integer ``n``, ``T`` lies within 0.422 of it, so ``n`` is the nearest integer
to ``T`` and no tie is possible: ``rint(s)`` is the exact answer. Other values (only
numbers with more than 9 decimals can be there) take the exact decimal path.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "COST_SCALE",
    "NANOS",
    "cost_nanos",
    "costs_nanos",
]

COST_SCALE: Final = 9
NANOS: Final = 10**COST_SCALE
#: beyond this the vectorised proof above no longer holds
_FAST_LIMIT: Final = 1_000_000.0
#: distance from an integer under which the computed product is known to round right
_SAFE: Final = 0.3


def cost_nanos(value: int | float) -> int:
    """Nano-units of a non-negative JSON number, rounded half to even (the exact rule)."""
    if isinstance(value, int):
        return value * NANOS
    scaled = Decimal(repr(value)).scaleb(COST_SCALE)
    return int(scaled.to_integral_value(rounding=ROUND_HALF_EVEN))


def costs_nanos(values: list[int | float]) -> npt.NDArray[np.int64] | None:
    """:func:`cost_nanos` of every value, vectorised; None unless all are in [0, 10**6]."""
    amounts = np.asarray(values, dtype=np.float64)
    if not len(amounts) or not bool(((amounts >= 0) & (amounts <= _FAST_LIMIT)).all()):
        return None
    scaled = amounts * float(NANOS)
    nearest = np.rint(scaled)
    nanos = nearest.astype(np.int64)
    for index in np.flatnonzero(np.abs(scaled - nearest) > _SAFE).tolist():
        nanos[index] = cost_nanos(values[index])
    return nanos
