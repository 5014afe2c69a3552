"""Names shared by every layer: dimensions, columns and allowed values, declared once.

Nothing here imports from the rest of the package.
"""

from __future__ import annotations

# Dimensions of arrays and posterior variables.
TIME = "time"
FRONT = "front"
WINDOW = "window"
INTERVENTION = "intervention"
CHANGEPOINT = "changepoint"
#: The day (or step) axis of forecast draws.
DATE_DIM = "date"
#: The sample axes of posterior draws, in ArviZ's order.
SAMPLE_DIMS = ("chain", "draw")

# Columns of the canonical events table (the input contract of issue #2).
DATE = "date"
END_DATE = "end_date"
COUNT = "count"
SOURCE = "source"
PRECISION = "precision"

# Columns added by readers so that every later error can point at its input line.
ORIGIN_FILE = "origin_file"
ORIGIN_LINE = "origin_line"

# Columns of the interventions table.
KIND = "kind"
SHAPE = "shape"
LABEL = "label"

# Columns of the observation table inside a panel.
EXPOSURE_DAYS = "exposure_days"
OBS_KIND = "obs_kind"
OBS_PERIOD = "period"
OBS_WINDOW = "window"

# Intervention shapes.
SHAPE_PULSE = "pulse"
SHAPE_WINDOW = "window"
SHAPE_STEP = "step"
SHAPES = (SHAPE_PULSE, SHAPE_WINDOW, SHAPE_STEP)

# Grid frequencies.
FREQ_DAY = "day"
FREQ_WEEK = "week"
FREQ_MONTH = "month"
FREQ_YEAR = "year"
FREQS = (FREQ_DAY, FREQ_WEEK, FREQ_MONTH, FREQ_YEAR)

# Precision flags carried from the input.  ``at_least`` totals are lower bounds
# (censored from below); the others are kept as information.
PRECISION_EXACT = "exact"
PRECISION_AT_LEAST = "at_least"
PRECISION_APPROX = "approx"
PRECISION_APPROX_DATE = "approx_date"
PRECISION_WEEK = "within_week"
PRECISION_MONTH = "within_month"

# Input formats the readers understand.
FORMAT_AUTO = "auto"
FORMAT_EVENTS = "events"
FORMAT_ACLED = "acled"
FORMAT_UCDP = "ucdp"
FORMATS = (FORMAT_AUTO, FORMAT_EVENTS, FORMAT_ACLED, FORMAT_UCDP)
