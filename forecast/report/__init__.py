"""The weekly report (floor 5): content in, HTML and Markdown out; the report never fits a model.

:mod:`forecast.report.content` turns indicators, the fit summary and provenance into the
headline and tables; :mod:`forecast.report.render` renders them with the Jinja templates in
``templates/``.  Figures come ready-made (PNG bytes) from :mod:`forecast.plots.report`.
"""

from forecast.report.content import SECTIONS, ReportContent, ReportFigure, scenario_rows
from forecast.report.render import FIGURES_FOLDER, markdown_figures, render_html, render_markdown

__all__ = [
    "FIGURES_FOLDER",
    "SECTIONS",
    "ReportContent",
    "ReportFigure",
    "markdown_figures",
    "render_html",
    "render_markdown",
    "scenario_rows",
]
