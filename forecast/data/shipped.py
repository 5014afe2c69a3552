"""Where the example data shipped in the repository's ``data/`` folder are.

This is all that a ``forecast`` command needs of the shipped data.  The derived files are built
from ``data/raw/`` by ``tools/build_shipped_data.py``, which is not part of the package
(``data/README.md`` says how to run it).
"""

from __future__ import annotations

import os
from pathlib import Path

#: Environment variable that points the toolkit at another shipped-data folder.
DATA_DIR_ENV = "FORECAST_DATA_DIR"

# Derived files (names as in data/).
ALERTS_FILE = "events_israel_alerts.csv"
US_FORCES_FILE = "events_us_forces_iraq_syria.csv"
RED_SEA_FILE = "events_red_sea_shipping.csv"
INTERVENTIONS_FILE = "interventions.csv"
EVENT_FILES = (ALERTS_FILE, US_FORCES_FILE, RED_SEA_FILE)


def shipped_data_dir() -> Path:
    """The folder holding the shipped data.

    Returns
    -------
    pathlib.Path
        ``$FORECAST_DATA_DIR`` when that environment variable is set and not empty, else the
        repository's ``data/`` folder (located relative to this package).
    """
    override = os.environ.get(DATA_DIR_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    return Path(__file__).resolve().parents[2] / "data"


def default_event_files() -> list[Path]:
    """The shipped canonical events files, in a fixed order (alerts, US forces, Red Sea)."""
    folder = shipped_data_dir()
    return [folder / name for name in EVENT_FILES]


def default_interventions_file() -> Path:
    """The shipped interventions table."""
    return shipped_data_dir() / INTERVENTIONS_FILE
