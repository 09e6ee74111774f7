"""Small Bokeh helpers shared by the results and analysis tabs.

Figures are built once per tab and then only their data sources, spans and
labels change, so moving the cursor patches a few properties in the browser
instead of replacing plots.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import numpy as np
from bokeh.models import (
    BasicTickFormatter,
    ColumnDataSource,
    FixedTicker,
    PlainText,
    Span,
)
from bokeh.palettes import Category10, Turbo256
from bokeh.plotting import figure

__all__ = [
    "TABLE_CSS",
    "class_colors",
    "cursor_span",
    "empty_note",
    "empty_source",
    "finite_or_nan",
    "new_figure",
    "plain",
    "set_class_ticks",
]

#: Spacing for the metric tables.
TABLE_CSS = """
table { border-collapse: collapse; }
th, td { padding: 2px 10px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr:nth-child(even) { background: #f4f6f8; }
"""


def new_figure(title: str, **kwargs: Any) -> figure:
    """Return a figure with the app's defaults: stretched width, no logo."""
    options: dict[str, Any] = {
        "height": 280,
        "sizing_mode": "stretch_width",
        "tools": "pan,wheel_zoom,box_zoom,reset,save",
        "title": title,
    }
    options.update(kwargs)
    fig = figure(**options)
    fig.toolbar.logo = None
    # Steps read as 54321, not 5.432e+4.
    fig.xaxis.formatter = BasicTickFormatter(use_scientific=False)
    return fig


def cursor_span(fig: figure, dimension: str = "height") -> Span:
    """Add the dashed line that marks the cursor's step to ``fig``; return it."""
    span = Span(
        location=0,
        dimension=dimension,
        line_color="#d62728",
        line_dash="dashed",
        line_width=2,
    )
    fig.add_layout(span)
    return span


def plain(text: str) -> PlainText:
    """Return ``text`` as a Bokeh label that is never read as TeX or HTML."""
    return PlainText(text=str(text))


def set_class_ticks(axis: Any, names: Sequence[str], reverse: bool = False) -> None:
    """Label positions 0..k-1 of a numeric axis with class names, as plain text."""
    k = len(names)
    axis.ticker = FixedTicker(ticks=list(range(k)))
    labels = {
        (k - 1 - i if reverse else i): plain(name) for i, name in enumerate(names)
    }
    axis.major_label_overrides = labels


def class_colors(n_classes: int) -> list[str]:
    """Return one distinct colour per class."""
    if n_classes <= 10:
        return list(Category10[10][: max(n_classes, 1)])
    picks = np.linspace(0, 255, n_classes).astype(int)
    return [Turbo256[i] for i in picks]


def finite_or_nan(values: np.ndarray, positive: bool = False) -> np.ndarray:
    """Return a float copy with inf (and, for log axes, values <= 0) as NaN."""
    out = np.array(values, dtype=np.float64)
    bad = ~np.isfinite(out)
    if positive:
        bad |= out <= 0
    out[bad] = np.nan
    return out


def empty_note(text: str) -> str:
    """Return an HTML paragraph for a plain-text note (escaped)."""
    return f"<p class='glassnet-note'><em>{html.escape(text)}</em></p>"


def empty_source(columns: Sequence[str]) -> ColumnDataSource:
    """Return a data source with the given columns, all empty."""
    return ColumnDataSource({c: [] for c in columns})
