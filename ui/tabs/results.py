"""Tab 6: metrics, confusion matrices and decision boundary at the cursor step."""

from __future__ import annotations

import html
import logging
import math
from collections import OrderedDict
from typing import Any

import numpy as np
import panel as pn
from bokeh.models import LinearColorMapper
from bokeh.palettes import Blues256, RdBu11

from engine.network import forward
from ui import metrics
from ui.compare import ComparePanel
from ui.export import session_downloads
from ui.plots import (
    TABLE_CSS,
    class_colors,
    cursor_span,
    empty_note,
    empty_source,
    finite_or_nan,
    new_figure,
    plain,
    set_class_ticks,
)
from ui.tabs.base import Tab

__all__ = ["GRID_SIZE", "ResultsTab"]

logger = logging.getLogger(__name__)

#: Points per side of the decision-boundary grid.
GRID_SIZE = 100
#: Share of the data's range added on each side of the decision-boundary grid.
GRID_MARGIN = 0.1
#: Decision-boundary grids kept per user (one per recently visited step).
GRID_CACHE_SIZE = 16
#: At most this many points of a per-epoch curve are drawn.
MAX_CURVE_POINTS = 2000

_SPLITS = ("train", "test")


class ResultsTab(Tab):
    """How well the network does at the cursor's step, on training and test data.

    Everything is computed with the parameters the cursor's step used (before
    its update), from ``AppState.predict``: classification gets accuracy,
    per-class and macro precision/recall/F1 and confusion matrices, plus the
    decision boundary for two input features; regression gets predicted
    against actual values and MSE/MAE/R^2.  The recorded per-epoch metrics
    are drawn over the run with the cursor marked.
    """

    title = "Training results"
    index = 5
    help = (
        "Move the cursor; every number and plot here uses the "
        "parameters the cursor's step started from (before its update). "
        "The curves at the bottom are the metrics recorded after each epoch."
    )
    watches = ("session", "events")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._shown_session: Any = None
        self._curve_steps = 0
        self._grids: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self._grid_frame: tuple[float, float, float, float] = (0.0, 1.0, 0.0, 1.0)

        # Text: how to use, what the cursor shows, the metric tables.
        self._help = pn.pane.HTML(
            f"<p><i>{html.escape(self.help)}</i></p>", sizing_mode="stretch_width"
        )
        self._summary = pn.pane.HTML("", sizing_mode="stretch_width")
        self._tables = pn.pane.HTML(
            "", sizing_mode="stretch_width", stylesheets=[TABLE_CSS]
        )

        # Confusion matrices, one per split.
        self._confusion: dict[str, dict[str, Any]] = {}
        for split in _SPLITS:
            self._confusion[split] = self._build_confusion(split)
        self._confusion_row = pn.Row(
            *(self._confusion[s]["pane"] for s in _SPLITS),
            sizing_mode="stretch_width",
        )

        # Decision boundary over the plane (two input features only).
        self._boundary = self._build_boundary()

        # Regression: predicted against actual.
        self._regression = self._build_regression()

        # Per-epoch curves.
        self._curves = self._build_curves()

        self._layout = pn.Column(
            self._help,
            # The run's metrics (CSV) and a notebook of its plots, to download.
            session_downloads(self.state),
            self._summary,
            self._tables,
            self._confusion_row,
            self._boundary["box"],
            self._regression["pane"],
            pn.Row(
                self._curves["loss_pane"],
                self._curves["accuracy_pane"],
                sizing_mode="stretch_width",
            ),
            ComparePanel(state=self.state),
            sizing_mode="stretch_width",
        )

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout

    # -- building the figures once -----------------------------------------

    def _build_confusion(self, split: str) -> dict[str, Any]:
        fig = new_figure(
            f"Confusion matrix, {split} data",
            height=320,
            tools="save",
            x_axis_label="predicted class",
            y_axis_label="true class",
        )
        source = empty_source(["x", "y", "count", "share", "label", "text_color"])
        mapper = LinearColorMapper(palette=Blues256[::-1], low=0.0, high=1.0)
        fig.rect(
            "x",
            "y",
            width=1,
            height=1,
            source=source,
            fill_color={"field": "share", "transform": mapper},
            line_color="white",
        )
        fig.text(
            "x",
            "y",
            text="label",
            source=source,
            text_align="center",
            text_baseline="middle",
            text_color="text_color",
        )
        fig.grid.visible = False
        # NOTE: hide the Column around a Bokeh pane: the pane's own
        # ``visible`` does not reach the figure.
        pane = pn.Column(
            pn.pane.Bokeh(fig, sizing_mode="stretch_width"), sizing_mode="stretch_width"
        )
        return {"fig": fig, "source": source, "pane": pane}

    def _build_boundary(self) -> dict[str, Any]:
        fig = new_figure("Decision boundary", height=420)
        image = empty_source(["image", "x", "y", "dw", "dh"])
        mapper = LinearColorMapper(palette=RdBu11, low=0.0, high=1.0)
        fig.image(
            image="image",
            x="x",
            y="y",
            dw="dw",
            dh="dh",
            source=image,
            color_mapper=mapper,
            alpha=0.55,
        )
        points = {}
        for split, marker in (("train", "circle"), ("test", "triangle")):
            points[split] = empty_source(["x", "y", "color"])
            fig.scatter(
                "x",
                "y",
                source=points[split],
                marker=marker,
                size=6 if split == "train" else 8,
                fill_color="color",
                line_color="black" if split == "test" else "white",
                line_width=1,
            )
        legend = pn.pane.HTML("", sizing_mode="stretch_width")
        pane = pn.pane.Bokeh(fig, sizing_mode="stretch_width")
        box = pn.Column(legend, pane, sizing_mode="stretch_width", visible=False)
        return {
            "fig": fig,
            "image": image,
            "mapper": mapper,
            "points": points,
            "legend": legend,
            "box": box,
        }

    def _build_regression(self) -> dict[str, Any]:
        fig = new_figure(
            "Predicted against actual (on the line: exact)",
            height=380,
            x_axis_label="actual",
            y_axis_label="predicted",
        )
        identity = empty_source(["x", "y"])
        fig.line("x", "y", source=identity, color="gray", line_dash="dotted")
        points = {}
        for split, color in (("train", "#1f77b4"), ("test", "#ff7f0e")):
            points[split] = empty_source(["x", "y"])
            fig.scatter(
                "x",
                "y",
                source=points[split],
                size=5,
                color=color,
                alpha=0.7,
                legend_label=f"{split} data",
            )
        fig.legend.location = "top_left"
        pane = pn.Column(
            pn.pane.Bokeh(fig, sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
            visible=False,
        )
        return {"fig": fig, "identity": identity, "points": points, "pane": pane}

    def _build_curves(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in ("loss", "accuracy"):
            fig = new_figure(
                f"{name} after each epoch",
                x_axis_label="updates applied (= the step that uses them)",
                y_axis_label=name,
            )
            for split, color in (("train", "#1f77b4"), ("test", "#ff7f0e")):
                source = empty_source(["x", "y"])
                fig.line(
                    "x", "y", source=source, color=color, legend_label=f"{split} data"
                )
                fig.scatter("x", "y", source=source, color=color, size=3)
                out[f"{name}_{split}"] = source
            fig.legend.location = "top_right" if name == "loss" else "bottom_right"
            out[f"{name}_span"] = cursor_span(fig)
            out[f"{name}_fig"] = fig
            out[f"{name}_pane"] = pn.Column(
                pn.pane.Bokeh(fig, sizing_mode="stretch_width"),
                sizing_mode="stretch_width",
            )
        # The cursor's own accuracy: on the curve whenever it sits on an epoch end.
        out["accuracy_dot"] = empty_source(["x", "y"])
        out["accuracy_fig"].scatter(
            "x",
            "y",
            source=out["accuracy_dot"],
            size=10,
            color="#d62728",
            legend_label="at the cursor",
        )
        return out

    # -- refreshing ----------------------------------------------------------

    def _update(self) -> None:
        session = self.state.session
        if session is None:
            self._summary.object = empty_note("No session is open.")
            return
        if session is not self._shown_session:
            self._shown_session = session
            self._grids.clear()
            self._update_session()
        elif session.n_steps != self._curve_steps:
            # A run still being recorded has grown: draw its new epochs.
            self._update_curves()
        traces = {s: self.state.predict(s) for s in _SPLITS}
        if traces["train"] is None:
            self._summary.object = empty_note(
                "This step has no forward pass to evaluate: it could not be rebuilt "
                "(see the message above) or diverged before one."
            )
            return
        y_hat = {s: (None if t is None else t.y_hat) for s, t in traces.items()}
        task = session.dataset.task
        self._update_summary()
        if task == "regression":
            self._update_regression(y_hat)
        else:
            self._update_classification(y_hat)
            self._update_boundary()
        self._update_curves_cursor(y_hat)

    def _update_session(self) -> None:
        """Set up the figures for a newly opened session (task, classes, epochs)."""
        session = self.state.session
        data = session.dataset
        classify = data.task != "regression"
        self._confusion_row.visible = classify
        self._regression["pane"].visible = not classify
        self._curves["accuracy_pane"].visible = classify
        two_d = classify and data.n_features == 2
        self._boundary["box"].visible = two_d
        if classify:
            names = self._class_names()
            for split in _SPLITS:
                fig = self._confusion[split]["fig"]
                set_class_ticks(fig.xaxis[0], names)
                set_class_ticks(fig.yaxis[0], names, reverse=True)
                k = len(names)
                fig.x_range.start, fig.x_range.end = -0.5, k - 0.5
                fig.y_range.start, fig.y_range.end = -0.5, k - 0.5
            self._confusion["test"]["pane"].visible = data.X_test.shape[0] > 0
        if two_d:
            self._update_boundary_frame()
        else:
            for source in self._boundary["points"].values():
                source.data = {"x": [], "y": [], "color": []}
            self._boundary["image"].data = {
                "image": [],
                "x": [],
                "y": [],
                "dw": [],
                "dh": [],
            }
        self._update_curves()

    def _class_names(self) -> list[str]:
        data = self.state.session.dataset
        k = 2 if data.task == "binary" else data.n_outputs
        names = list(data.class_names)
        return [names[i] if i < len(names) else f"class {i}" for i in range(k)]

    def _update_summary(self) -> None:
        state = self.state
        session = state.session
        data = session.dataset
        parts = [
            f"<p>Step <b>{state.step}</b> of {session.n_steps}: parameters after "
            f"{state.step} update(s), on {data.n_train} training and "
            f"{data.n_test} test samples.</p>"
        ]
        ended = [e for e in state.events if e.kind == "epoch_completed"]
        if ended:
            e = ended[0]
            if session.config.train_metrics == "batches":
                how = (
                    "The training figures are the mean over the epoch's batches as "
                    "they were trained (each with its own step's parameters); the "
                    "test figures were measured <em>after</em> this step's update "
                    f"(the parameters step {state.step + 1} uses):"
                )
            else:
                how = (
                    "Its recorded metrics were measured <em>after</em> this step's "
                    f"update (the parameters step {state.step + 1} uses):"
                )
            parts.append(
                f"<p>This step ends epoch {e.epoch + 1}. {how}"
                f"{_format_metrics(e.train, 'train')}"
                f"{_format_metrics(e.test, 'test')}</p>"
            )
        if data.n_test == 0:
            parts.append(
                empty_note("The test part is empty: this run has no test data.")
            )
        self._summary.object = "".join(parts)

    def _update_classification(self, y_hat: dict[str, np.ndarray | None]) -> None:
        data = self.state.session.dataset
        names = self._class_names()
        k = len(names)
        tables = []
        for split in _SPLITS:
            y = data.y_train if split == "train" else data.y_test
            out = y_hat[split]
            if out is None or y.shape[0] == 0:
                tables.append(
                    f"<h4>{split} data</h4>"
                    + empty_note(f"The {split} part is empty: nothing to measure.")
                )
                self._confusion[split]["source"].data = _confusion_data(
                    np.zeros((k, k), dtype=np.int64)
                )
                continue
            actual = metrics.true_classes(y, data.task)
            predicted = metrics.predicted_classes(out, data.task)
            matrix = metrics.confusion_matrix(actual, predicted, k)
            scores = metrics.class_metrics(matrix)
            tables.append(_class_table(split, names, scores))
            self._confusion[split]["source"].data = _confusion_data(matrix)
        self._tables.object = (
            "<div style='display:flex; gap:2em; flex-wrap:wrap'>"
            + "".join(f"<div>{t}</div>" for t in tables)
            + "</div>"
        )

    def _update_regression(self, y_hat: dict[str, np.ndarray | None]) -> None:
        data = self.state.session.dataset
        rows = []
        lo, hi = math.inf, -math.inf
        for split in _SPLITS:
            y = data.y_train if split == "train" else data.y_test
            out = y_hat[split]
            source = self._regression["points"][split]
            if out is None or y.shape[0] == 0:
                rows.append(
                    f"<tr><td>{split}</td><td colspan='3'>empty: no {split} data"
                    "</td></tr>"
                )
                source.data = {"x": [], "y": []}
                continue
            scores = metrics.regression_metrics(out, y)
            rows.append(
                f"<tr><td>{split}</td><td>{scores['mse']:.4g}</td>"
                f"<td>{scores['mae']:.4g}</td><td>{scores['r2']:.4f}</td></tr>"
            )
            actual, predicted = y.ravel(), finite_or_nan(out.ravel())
            source.data = {"x": actual, "y": predicted}
            with np.errstate(all="ignore"):
                both = np.concatenate([actual, predicted])
                lo = min(lo, float(np.nanmin(both)))
                hi = max(hi, float(np.nanmax(both)))
        if math.isfinite(lo):
            self._regression["identity"].data = {"x": [lo, hi], "y": [lo, hi]}
        self._tables.object = (
            "<table class='glassnet-metrics'><tr><th>data</th><th>MSE</th>"
            "<th>MAE</th><th>R<sup>2</sup></th></tr>" + "".join(rows) + "</table>"
            "<p>MSE: mean squared error; MAE: mean absolute error; R<sup>2</sup>: "
            "share of the targets' variance the network explains (1 is perfect, 0 "
            "is no better than always predicting the mean).</p>"
        )

    # -- decision boundary -----------------------------------------------------

    def _update_boundary_frame(self) -> None:
        """Fix the plane the grid covers: all data plus a margin; colour the points."""
        data = self.state.session.dataset
        X = np.vstack([data.X_train, data.X_test])
        lo, hi = X.min(axis=0), X.max(axis=0)
        pad = np.maximum((hi - lo) * GRID_MARGIN, 1e-3)
        lo, hi = lo - pad, hi + pad
        self._grid_frame = (float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1]))
        names = self._class_names()
        colors = class_colors(len(names))
        fig = self._boundary["fig"]
        fig.x_range.start, fig.x_range.end = self._grid_frame[:2]
        fig.y_range.start, fig.y_range.end = self._grid_frame[2:]
        fig.xaxis[0].axis_label = plain(data.feature_names[0])
        fig.yaxis[0].axis_label = plain(data.feature_names[1])
        mapper = self._boundary["mapper"]
        if data.task == "binary":
            # NOTE: Bokeh lists RdBu from blue to red: low (0) is blue.
            mapper.palette = list(RdBu11)
            mapper.low, mapper.high = 0.0, 1.0
            shading = (
                f"Background: the predicted probability of {html.escape(names[1])!s} "
                "(red) against "
                f"{html.escape(names[0])!s} (blue); the boundary is where it is 0.5."
            )
            colors = ["#2166ac", "#b2182b"]
        else:
            mapper.palette = colors
            mapper.low, mapper.high = -0.5, len(names) - 0.5
            shading = "Background: the class the network predicts at each point."
        for split in _SPLITS:
            X_s = data.X_train if split == "train" else data.X_test
            y_s = data.y_train if split == "train" else data.y_test
            idx = metrics.true_classes(y_s, data.task) if len(y_s) else []
            self._boundary["points"][split].data = {
                "x": X_s[:, 0],
                "y": X_s[:, 1],
                "color": [colors[i] for i in idx],
            }
        swatches = " ".join(
            f"<span style='color:{c}'>&#9679;</span> {html.escape(n)}"
            for c, n in zip(colors, names, strict=False)
        )
        self._boundary["legend"].object = (
            f"<p>{shading} Points: {swatches}; circles are training samples, "
            "outlined triangles test samples.</p>"
        )

    def boundary_grid(self) -> np.ndarray | None:
        """Return the decision-boundary image at the cursor (GRID_SIZE square).

        Binary: the predicted probability of class 1; multiclass: the predicted
        class index.  Computed with ``engine.network.forward`` at the
        parameters the cursor's step used, and cached per step.  None when
        the data does not have exactly two features or is not classification.
        """
        session = self.state.session
        params = self.state.params()
        if session is None or params is None:
            return None
        data = session.dataset
        if data.task == "regression" or data.n_features != 2:
            return None
        key = (id(session), self.state.step)
        if key in self._grids:
            self._grids.move_to_end(key)
            return self._grids[key]
        x0, x1, y0, y1 = self._grid_frame
        xs = np.linspace(x0, x1, GRID_SIZE)
        ys = np.linspace(y0, y1, GRID_SIZE)
        gx, gy = np.meshgrid(xs, ys)
        points = np.column_stack([gx.ravel(), gy.ravel()])
        with np.errstate(all="ignore"):
            out = forward(params, points, session.spec.activations()).y_hat
        if data.task == "binary":
            grid = out[:, 0].reshape(GRID_SIZE, GRID_SIZE)
        else:
            grid = out.argmax(axis=1).reshape(GRID_SIZE, GRID_SIZE).astype(float)
        self._grids[key] = grid
        if len(self._grids) > GRID_CACHE_SIZE:
            self._grids.popitem(last=False)
        return grid

    def _update_boundary(self) -> None:
        grid = self.boundary_grid()
        if grid is None:
            return
        x0, x1, y0, y1 = self._grid_frame
        self._boundary["image"].data = {
            "image": [grid],
            "x": [x0],
            "y": [y0],
            "dw": [x1 - x0],
            "dh": [y1 - y0],
        }

    # -- per-epoch curves ------------------------------------------------------

    def _update_curves(self) -> None:
        """Draw the recorded per-epoch metrics (once per session)."""
        epochs = self.state.session.epochs()
        self._curve_steps = self.state.session.n_steps
        x = epochs.step + 1
        for name in ("loss", "accuracy"):
            for split in _SPLITS:
                values = getattr(epochs, split).get(name)
                source = self._curves[f"{name}_{split}"]
                if values is None or len(values) == 0:
                    source.data = {"x": [], "y": []}
                    continue
                xs, ys = metrics.decimate(x, finite_or_nan(values), MAX_CURVE_POINTS)
                source.data = {"x": xs, "y": ys}

    def _update_curves_cursor(self, y_hat: dict[str, np.ndarray | None]) -> None:
        step = self.state.step
        self._curves["loss_span"].location = step
        self._curves["accuracy_span"].location = step
        data = self.state.session.dataset
        if data.task == "regression":
            return
        xs, ys = [], []
        for split in _SPLITS:
            y = data.y_train if split == "train" else data.y_test
            if y_hat[split] is not None and y.shape[0]:
                xs.append(step)
                ys.append(metrics.classification_accuracy(y_hat[split], y, data.task))
        self._curves["accuracy_dot"].data = {"x": xs, "y": ys}

    # -- what tests and other code read ----------------------------------------

    def accuracy(self, split: str = "train") -> float:
        """Return the accuracy shown for ``split`` at the cursor (NaN if none)."""
        trace = self.state.predict(split)
        data = self.state.session.dataset
        y = data.y_train if split == "train" else data.y_test
        if trace is None or y.shape[0] == 0 or data.task == "regression":
            return math.nan
        return metrics.classification_accuracy(trace.y_hat, y, data.task)


def _format_metrics(values: dict[str, float], split: str) -> str:
    if not values:
        return f" {split}: no data."
    text = ", ".join(f"{k} {v:.4f}" for k, v in sorted(values.items()))
    return f" {split}: {text}."


def _confusion_data(matrix: np.ndarray) -> dict[str, list[Any]]:
    """Return the heatmap cells: position, count, share of its row, text colour."""
    k = matrix.shape[0]
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
    out: dict[str, list[Any]] = {
        "x": [],
        "y": [],
        "count": [],
        "share": [],
        "label": [],
        "text_color": [],
    }
    for i in range(k):
        for j in range(k):
            out["x"].append(j)
            out["y"].append(k - 1 - i)
            out["count"].append(int(matrix[i, j]))
            out["share"].append(float(share[i, j]))
            out["label"].append(str(int(matrix[i, j])))
            out["text_color"].append("white" if share[i, j] > 0.6 else "black")
    return out


def _class_table(split: str, names: list[str], scores: metrics.ClassMetrics) -> str:
    """Return the HTML table of one split's scores; class names are escaped."""
    rows = [
        f"<tr><td>{html.escape(name)}</td><td>{scores.support[i]}</td>"
        f"<td>{scores.precision[i]:.3f}</td><td>{scores.recall[i]:.3f}</td>"
        f"<td>{scores.f1[i]:.3f}</td></tr>"
        for i, name in enumerate(names)
    ]
    rows.append(
        f"<tr><td><b>macro average</b></td><td>{int(scores.support.sum())}</td>"
        f"<td>{scores.macro_precision:.3f}</td><td>{scores.macro_recall:.3f}</td>"
        f"<td>{scores.macro_f1:.3f}</td></tr>"
    )
    return (
        f"<h4>{split} data: accuracy <span class='glassnet-accuracy-{split}'>"
        f"{scores.accuracy:.4f}</span></h4>"
        "<table class='glassnet-metrics'><tr><th>class</th><th>samples</th>"
        "<th>precision</th><th>recall</th><th>F1</th></tr>" + "".join(rows) + "</table>"
    )
