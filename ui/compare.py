"""Compare the open run with another, on one cursor (shown on tab 6).

Both runs' loss curves and epoch metrics are drawn on the open run's steps
(a fork lines up with its parent), the settings that differ are listed alone,
the first differing event is named with a button to go there, and each
layer's weight drift is plotted; the cursor's dashed line moves on all plots.
"""

from __future__ import annotations

import html
import logging
from pathlib import Path
from typing import Any

import numpy as np
import panel as pn
import param
from bokeh.models import ColumnDataSource

from sessions import Session, SessionError
from sessions.compare import Comparison, compare
from sessions.library import list_sessions
from ui.metrics import decimate
from ui.plots import TABLE_CSS, cursor_span, finite_or_nan, new_figure
from ui.state import AppState

__all__ = ["ComparePanel"]

logger = logging.getLogger(__name__)

MAX_POINTS = 2000
LAYER_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")


class ComparePanel(pn.viewable.Viewer):
    """Pick another session and see how it differs from the open one."""

    state = param.ClassSelector(class_=AppState, doc="The cursor shared by the tabs.")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.other: Session | None = None
        self.result: Comparison | None = None
        self.choice = pn.widgets.Select(label="Compare with", options={}, width=380)
        self.button = pn.widgets.Button(label="Compare", width=100)
        self.clear_button = pn.widgets.Button(label="Stop comparing", width=130)
        self.go_button = pn.widgets.Button(
            label="Go to the first difference", width=220, visible=False
        )
        self.summary = pn.pane.HTML(
            "", sizing_mode="stretch_width", stylesheets=[TABLE_CSS]
        )
        # The figures are built on the first comparison: most users never
        # compare, and each figure costs memory per connected user.
        self.spans: list[Any] = []
        self.plots = pn.Column(sizing_mode="stretch_width", visible=False)
        self.button.on_click(lambda _: self.compare_with(self.choice.value))
        self.clear_button.on_click(lambda _: self.clear())
        self.go_button.on_click(lambda _: self.go_to_difference())
        self.state.param.watch(self._on_session, "session")
        self.state.param.watch(self._on_step, "step")
        self._layout = pn.Column(
            pn.pane.HTML("<h3>Compare with another run</h3>"),
            pn.Row(self.choice, self.button, self.clear_button),
            self.summary,
            self.go_button,
            self.plots,
            sizing_mode="stretch_width",
        )
        self._on_session()

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout

    # -- actions ---------------------------------------------------------

    def compare_with(self, path: str | None) -> bool:
        """Compare the open run with the session at ``path``; False if impossible."""
        session = self.state.session
        if session is None or not path:
            self.summary.object = "<p>Open a session and pick another to compare.</p>"
            return False
        try:
            other = Session(path)
            result = compare(session, other)
        except (SessionError, OSError) as err:
            self.state.message = f"Cannot compare with {Path(path).name}: {err}"
            return False
        self.clear()
        self.other, self.result = other, result
        self._draw(session, other, result)
        return True

    def clear(self) -> None:
        """Stop comparing: close the other run and hide the plots."""
        if self.other is not None:
            self.other.close()
        self.other = self.result = None
        self.summary.object = ""
        self.plots.visible = self.go_button.visible = False

    def go_to_difference(self) -> None:
        """Move the cursor to the first step whose values differ."""
        if self.result is not None and self.result.first_step is not None:
            self.state.go_to(self.result.first_step)

    # -- drawing ---------------------------------------------------------

    def _on_session(self, *_: Any) -> None:
        self.clear()
        session = self.state.session
        options: dict[str, str] = {}
        if session is not None:
            folders = {session.path.parent, Path(self.state.sessions_dir)}
            for folder in sorted(folders):
                if not folder.is_dir():
                    continue
                for info in list_sessions(folder):
                    if info.damaged or info.path.resolve() == session.path.resolve():
                        continue
                    options[f"{info.title} ({info.name})"] = str(info.path)
        self.choice.options = options
        self.button.disabled = not options

    def _on_step(self, *_: Any) -> None:
        for span in self.spans:
            span.location = self.state.step

    def _build_plots(self) -> None:
        self.loss_a = ColumnDataSource({"x": [], "y": []})
        self.loss_b = ColumnDataSource({"x": [], "y": []})
        self.metric_a = ColumnDataSource({"x": [], "y": []})
        self.metric_b = ColumnDataSource({"x": [], "y": []})
        self.drift = ColumnDataSource({"x": []})
        self.loss_figure = new_figure("Loss per step", x_axis_label="step")
        self.loss_figure.line("x", "y", source=self.loss_a, legend_label="open run")
        self.loss_figure.line(
            "x", "y", source=self.loss_b, color="#ff7f0e", legend_label="other run"
        )
        self.metric_figure = new_figure("Test metric per epoch", x_axis_label="step")
        self.metric_figure.scatter(
            "x", "y", source=self.metric_a, legend_label="open run"
        )
        self.metric_figure.scatter(
            "x",
            "y",
            source=self.metric_b,
            color="#ff7f0e",
            marker="triangle",
            legend_label="other run",
        )
        self.drift_figure = new_figure(
            "How far the weights drifted apart: |W_open - W_other| / |W_open|",
            x_axis_label="step",
        )
        self._drift_layers = 0
        self.spans = [
            cursor_span(f)
            for f in (self.loss_figure, self.metric_figure, self.drift_figure)
        ]
        self.plots.objects = [
            pn.pane.Bokeh(self.loss_figure, sizing_mode="stretch_width"),
            pn.pane.Bokeh(self.metric_figure, sizing_mode="stretch_width"),
            pn.pane.Bokeh(self.drift_figure, sizing_mode="stretch_width"),
        ]

    def _draw(self, a: Session, b: Session, c: Comparison) -> None:
        if not self.spans:
            self._build_plots()
        sa, sb = a.series(), b.series()
        self.loss_a.data = _curve(sa.step, sa.loss)
        self.loss_b.data = _curve(sb.step + c.offset, sb.loss)
        ea, eb = a.epochs(), b.epochs()
        name = "accuracy" if "accuracy" in ea.test else "loss"
        self.metric_figure.title.text = f"Test {name} after each epoch"
        self.metric_a.data = _curve(ea.step, ea.test.get(name, np.zeros(0)))
        self.metric_b.data = _curve(eb.step + c.offset, eb.test.get(name, np.zeros(0)))
        data: dict[str, Any] = {"x": c.drift_steps}
        for i in range(c.drift.shape[1]):
            data[f"layer{i}"] = c.drift[:, i]
        self.drift.data = data
        for i in range(self._drift_layers, c.drift.shape[1]):
            self.drift_figure.line(
                "x",
                f"layer{i}",
                source=self.drift,
                color=LAYER_COLORS[i % len(LAYER_COLORS)],
                legend_label=f"layer {i + 1}",
            )
        self._drift_layers = max(self._drift_layers, c.drift.shape[1])
        self._on_step()
        self.plots.visible = True
        self.summary.object = _summary(a, b, c)
        self.go_button.visible = c.first_step is not None
        if c.first_step is not None:
            self.go_button.name = f"Go to the first difference (step {c.first_step})"


def _curve(x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    if len(x) == 0:
        return {"x": [], "y": []}
    xs, ys = decimate(
        np.asarray(x), finite_or_nan(np.asarray(y, dtype=float)), MAX_POINTS
    )
    return {"x": xs, "y": ys}


def _summary(a: Session, b: Session, c: Comparison) -> str:
    esc = html.escape
    parts = [
        f"<p>Open run <b>{esc(a.title)}</b> against <b>{esc(b.title)}</b> "
        f"({esc(b.path.name)}). "
    ]
    if c.offset:
        parts.append(
            f"The other run's step s is drawn at step s + {c.offset}, where it "
            "stands in the same schedule (a fork continues its parent). "
        )
    start, stop = c.common
    parts.append(f"They share steps {start} to {stop - 1} of the open run.</p>")
    if c.settings:
        rows = "".join(
            f"<tr><td>{esc(str(k))}</td><td>{esc(str(x))}</td><td>{esc(str(y))}</td></tr>"
            for k, x, y in c.settings
        )
        parts.append(
            "<table><tr><th>setting</th><th>open run</th><th>other run</th></tr>"
            f"{rows}</table>"
        )
    else:
        parts.append("<p>Their settings are the same.</p>")
    if c.first_step is None:
        parts.append("<p>Every shared step has the same recorded values.</p>")
    else:
        parts.append(
            f"<p class='glassnet-first-difference'>Their values first differ at step "
            f"{c.first_step}: {esc(c.first_event or '')}.</p>"
        )
    return "".join(parts)
