"""Render a :class:`~forecast.report.content.ReportContent` as HTML and as Markdown.

``render_html`` returns one self-contained page: figures embedded as base64 ``data:`` URIs,
CSS inline, no script, no font, no link to anything outside the file.  ``render_markdown``
returns the same sections with figures linked as ``figures/<name>.png`` (the caller writes
the PNG bytes there, see :func:`markdown_figures`).  Both are pure: nothing is read or written.
"""

from __future__ import annotations

import base64
from functools import cache

import jinja2

from forecast.artefacts import FIGURES_FOLDER
from forecast.report.content import ReportContent, ReportFigure, build_view, figure_names


@cache
def _environment(html: bool) -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("forecast.report", "templates"),
        autoescape=html,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["md"] = _markdown_cell
    environment.filters["data_uri"] = _data_uri
    return environment


def _markdown_cell(value: object) -> str:
    """Text safe inside a Markdown table cell (pipes escaped, one line)."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _data_uri(figure: ReportFigure) -> str:
    return "data:image/png;base64," + base64.b64encode(figure.png).decode("ascii")


def render_html(content: ReportContent) -> str:
    """The report as one self-contained HTML page."""
    figure_names(content.figures)
    return _environment(True).get_template("report.html.j2").render(view=build_view(content))


def render_markdown(content: ReportContent, *, figures_folder: str = FIGURES_FOLDER) -> str:
    """The report as Markdown; figures are linked as ``<figures_folder>/<name>.png``."""
    figure_names(content.figures)
    return (
        _environment(False).get_template("report.md.j2").render(view=build_view(content), figures_folder=figures_folder)
    )


def markdown_figures(content: ReportContent, *, figures_folder: str = FIGURES_FOLDER) -> dict[str, bytes]:
    """Relative path -> PNG bytes of every figure the Markdown links to."""
    return {f"{figures_folder}/{figure.filename}": figure.png for figure in content.figures}
