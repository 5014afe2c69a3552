"""Names of the files and folders the jobs write, declared once.

Every job, the command line and the alert reader import these names; the tests that check
what lands on disk spell them out, so that a rename is a visible change of the output contract.
"""

from __future__ import annotations

# ``forecast fit`` (and ``forecast report``, which fits): the saved fit and its summary.
FIT_FILE = "fit.nc"
#: The fit's summary; a backtest's summary has the same name in its own folder.
SUMMARY_FILE = "summary.json"
#: Predictive draws of daily counts after as_of, read by ``forecast alert`` with numpy only.
FORECAST_DRAWS_FILE = "forecast_draws.npz"

# ``forecast check``: plots written beside the fit.
CHECKS_FOLDER = "checks"

# ``forecast report``.
REPORT_HTML_FILE = "report.html"
REPORT_MARKDOWN_FILE = "report.md"
INDICATORS_FILE = "indicators.json"
#: Figures of the report, beside ``report.md``.
FIGURES_FOLDER = "figures"

# ``forecast backtest``.
SCORES_FILE = "scores.csv"
EXCEEDANCE_FILE = "exceedance.csv"
RELIABILITY_FILE = "reliability.csv"
BACKTEST_PAGE_FILE = "backtest.html"

__all__ = [
    "BACKTEST_PAGE_FILE",
    "CHECKS_FOLDER",
    "EXCEEDANCE_FILE",
    "FIGURES_FOLDER",
    "FIT_FILE",
    "FORECAST_DRAWS_FILE",
    "INDICATORS_FILE",
    "RELIABILITY_FILE",
    "REPORT_HTML_FILE",
    "REPORT_MARKDOWN_FILE",
    "SCORES_FILE",
    "SUMMARY_FILE",
]
