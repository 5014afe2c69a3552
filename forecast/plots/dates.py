"""Days as x positions on matplotlib axes with a date x axis."""

from __future__ import annotations

import datetime
from typing import cast

import numpy as np
import pandas as pd

#: What the plots accept as a day.
DateLike = str | datetime.date | np.datetime64 | pd.Timestamp


def date_x(day: DateLike) -> float:
    """``day`` as an x position (a :class:`pandas.Timestamp`) for ``axvspan``, ``axvline``, ``hlines``, ``text``.

    Matplotlib's date converter places Timestamps on a date axis, but its type stubs declare
    those x positions as float; the cast states that once here instead of at every call.
    """
    return cast(float, pd.Timestamp(day))
