"""Tab 4: predictions against targets, the loss of each sample and over the run."""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import panel as pn
from bokeh.core.properties import value
from bokeh.models import (
    ColumnDataSource,
    DataTable,
    HoverTool,
    NumberFormatter,
    Slope,
    Span,
    TableColumn,
)
from bokeh.plotting import figure

from engine import events as ev
from engine.losses import get_loss
from ui import explain
from ui.tabs.base import Tab

__all__ = ["LossTab", "decimate"]

MAX_CURVE_POINTS = 4000
"""Most points drawn for the per-step loss curve; longer runs are decimated."""

SPLITS = {"Batch of this step": "batch", "Training set": "train", "Test set": "test"}
"""What the per-sample views show: the recorded batch or a whole split."""

_CSS = """
pre { white-space: pre-wrap; font-size: 13px; background: #f8f8f8;
  padding: 6px; border: 1px solid #e5e5e5; margin: 4px 0; }
.gn-now pre { outline: 3px solid #f0a500; background: #fff4d6; }
"""
"""Styles of the tab's HTML panes (each pane has its own shadow root)."""

_BAR = "#4c78a8"
_BAR_SELECTED = "#f0a500"


def decimate(x: np.ndarray, y: np.ndarray, max_points: int) -> tuple[Any, Any]:
    """Return at most ``max_points`` points of a curve, keeping each bucket's extremes.

    The series is cut into ``max_points // 2`` buckets; from each the points
    with the lowest and the highest ``y`` are kept, in order, so spikes (a
    diverging step) stay visible.  Short series are returned unchanged.
    """
    n = len(x)
    if n <= max_points:
        return x, y
    n_buckets = max(max_points // 2, 1)
    edges = np.linspace(0, n, n_buckets + 1).astype(np.int64)
    keep: list[int] = []
    finite = np.where(np.isfinite(y), y, np.nan)
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        if hi <= lo:
            continue
        part = finite[lo:hi]
        if np.all(np.isnan(part)):
            keep.append(int(lo))
            continue
        a, b = int(np.nanargmin(part)) + lo, int(np.nanargmax(part)) + lo
        keep.extend(sorted({a, b}))
    idx = np.array(keep, dtype=np.int64)
    return x[idx], y[idx]


class LossTab(Tab):
    """Show how far predictions are from targets, sample by sample and over the run.

    The per-sample views read the cursor step's ``LossComputed`` event (or a
    forward pass of a whole split at the cursor's parameters); the loss curve
    is drawn once per session and only its cursor line moves.
    """

    title = "Loss"
    index = 3
    help = (
        "Bars and table show each sample's loss at the cursor step (click a row "
        "or pick a sample to see its loss written out); the curve shows the loss "
        "over the whole run, with the cursor as an orange line."
    )
    watches = ("session", "events", "op", "sample")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._session_shown: Any = None
        self._sample_order: np.ndarray = np.zeros(0, dtype=np.int64)
        self._shown: tuple[Any, ...] | None = None
        self.row = 0

        # Controls.
        self.split_select = pn.widgets.RadioButtonGroup(options=SPLITS, value="batch")
        self.sort_toggle = pn.widgets.Checkbox(
            label="Sort by loss (highest first)", value=False
        )
        self.output_select = pn.widgets.Select(
            label="Output", options={"output 1": 0}, value=0, width=200
        )
        self.split_select.param.watch(self._on_split_select_value, "value")
        self.sort_toggle.param.watch(self._on_sort_toggle_value, "value")
        self.output_select.param.watch(self._on_output_select_value, "value")

        # Text views.
        text = {"sizing_mode": "stretch_width", "stylesheets": [_CSS]}
        self.help_pane = pn.pane.HTML(f"<p><i>{html.escape(self.help)}</i></p>", **text)
        self.status = pn.pane.HTML("", **text)
        self.sample_pane = pn.pane.HTML("", **text)
        self.batch_pane = pn.pane.HTML("", **text)

        # Table of samples, sortable by any column (click its header).
        self.rows = ColumnDataSource({"sample": [], "loss": []})
        self.table = DataTable(
            source=self.rows,
            columns=[],
            sortable=True,
            selectable=True,
            index_position=None,
            height=300,
            sizing_mode="stretch_width",
        )
        self.rows.selected.on_change("indices", self._on_table_indices)

        # Plots, built once; their sources change in place.
        self.bars = ColumnDataSource(
            {"x": [], "loss": [], "sample": [], "row": [], "color": []}
        )
        self.bar_figure = figure(
            height=260,
            title="Loss of each sample",
            x_axis_label="sample",
            y_axis_label="loss",
            tools="pan,wheel_zoom,box_zoom,reset,save",
            sizing_mode="stretch_width",
        )
        self.bar_figure.vbar(
            x="x", top="loss", width=0.8, color="color", source=self.bars
        )
        self.bar_figure.add_tools(
            HoverTool(
                tooltips=[("sample", "@sample"), ("row", "@row"), ("loss", "@loss")]
            )
        )
        self.points = ColumnDataSource({"y": [], "y_hat": [], "sample": [], "loss": []})
        self.scatter_figure = figure(
            height=260,
            width=300,
            title="Prediction against target",
            x_axis_label="target y",
            y_axis_label="prediction y_hat",
            tools="pan,wheel_zoom,box_zoom,reset,save",
        )
        self.scatter_figure.scatter(
            "y", "y_hat", source=self.points, size=6, alpha=0.6, color=_BAR
        )
        self.scatter_figure.add_layout(
            Slope(gradient=1, y_intercept=0, line_color="gray", line_dash="dashed")
        )
        self.scatter_figure.add_tools(
            HoverTool(tooltips=[("sample", "@sample"), ("loss", "@loss")])
        )
        self.curve = ColumnDataSource({"step": [], "loss": []})
        self.epoch_train = ColumnDataSource({"step": [], "loss": []})
        self.epoch_test = ColumnDataSource({"step": [], "loss": []})
        self.curve_figure = figure(
            height=260,
            title="Loss over the run",
            x_axis_label="step",
            y_axis_label="loss",
            tools="pan,wheel_zoom,box_zoom,reset,save",
            sizing_mode="stretch_width",
        )
        self.curve_figure.line(
            "step", "loss", source=self.curve, legend_label="step loss (batch)"
        )
        self._train_points = self.curve_figure.scatter(
            "step",
            "loss",
            source=self.epoch_train,
            color="green",
            size=7,
            legend_label="training set, after each epoch",
        )
        self.curve_figure.scatter(
            "step",
            "loss",
            source=self.epoch_test,
            color="red",
            marker="triangle",
            size=7,
            legend_label="test set, after each epoch",
        )
        self.curve_figure.legend.location = "top_right"
        self.cursor_line = Span(
            location=0, dimension="height", line_color=_BAR_SELECTED, line_width=2
        )
        self.curve_figure.add_layout(self.cursor_line)

        self.bar_pane = pn.pane.Bokeh(self.bar_figure, sizing_mode="stretch_width")
        self.scatter_pane = pn.pane.Bokeh(self.scatter_figure)
        self.curve_pane = pn.pane.Bokeh(self.curve_figure, sizing_mode="stretch_width")
        self.table_pane = pn.pane.Bokeh(self.table, sizing_mode="stretch_width")
        self._layout = pn.Column(
            self.help_pane,
            self.status,
            pn.Row(self.split_select, self.sort_toggle, self.output_select),
            pn.Row(self.bar_pane, self.scatter_pane, sizing_mode="stretch_width"),
            self.sample_pane,
            self.batch_pane,
            self.table_pane,
            self.curve_pane,
            sizing_mode="stretch_width",
        )

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout

    # -- handlers ----------------------------------------------------------

    def _on_split_select_value(self, _: Any) -> None:
        self.row = 0
        self._on_state()

    def _on_sort_toggle_value(self, _: Any) -> None:
        self._on_state()

    def _on_output_select_value(self, _: Any) -> None:
        self._on_state()

    def _on_table_indices(self, _attr: str, _old: Any, new: Any) -> None:
        samples = self.rows.data.get("sample", [])
        if not new or new[0] >= len(samples):
            return
        position = int(samples[new[0]])
        if self.split_select.value == "batch":
            self.state.sample = position
        else:
            self.row = position
            self._on_state()

    # -- what is shown -----------------------------------------------------

    def losses(self) -> dict[str, Any] | None:
        """Return y_hat, y, per-sample losses and rows for the chosen split.

        ``batch`` reads the step's ``LossComputed`` event; ``train`` and
        ``test`` run the whole split at the cursor's parameters (shared by all
        tabs through ``state.predict``) and the run's loss, in the same form
        the engine evaluates it (from the logits when fused).  None when there
        is nothing to show.
        """
        state = self.state
        found = state.events_of(ev.LossComputed)
        if state.session is None or not found:
            return None
        recorded = found[0]
        split = self.split_select.value
        logits = state.events_of(ev.WeightedSumComputed)
        if split == "batch":
            batches = state.events_of(ev.BatchSampled)
            n = recorded.per_sample.shape[0]
            rows = batches[0].indices if batches else np.arange(n)
            return {
                "y_hat": recorded.y_hat,
                "y": recorded.y,
                "z": logits[-1].z if logits else None,
                "per_sample": recorded.per_sample,
                "rows": np.asarray(rows),
                "recorded": recorded,
            }
        trace = state.predict(split)
        data = state.session.dataset
        y = data.y_train if split == "train" else data.y_test
        if trace is None or y.shape[0] == 0:
            return None
        loss = get_loss(recorded.loss_name)
        z = trace.z[-1]
        with np.errstate(all="ignore"):
            per_sample = (
                loss.forward_from_logits(z, y)
                if self._fused()
                else loss.forward(trace.y_hat, y)
            )
        return {
            "y_hat": trace.y_hat,
            "y": y,
            "z": z,
            "per_sample": per_sample,
            "rows": np.arange(y.shape[0]),
            "recorded": recorded,
        }

    def _fused(self) -> bool:
        session = self.state.session
        loss = get_loss(session.config.loss)
        return loss.fused_with == session.spec.activations()[-1].name

    def _update(self) -> None:
        self._update_curve()
        self.cursor_line.location = self.state.step
        values = self.losses()
        if values is None:
            self._update_empty()
            return
        n = values["per_sample"].shape[0]
        if self.split_select.value == "batch":
            chosen = min(self.state.sample, n - 1)
        else:
            chosen = min(self.row, n - 1)
        self._update_outputs(values)
        key = (
            id(self.state.session),
            self.state.step,
            self.split_select.value,
            self.sort_toggle.value,
            self.output_select.value,
            chosen,
        )
        # NOTE: moving between operations of one step changes only the
        # highlight, so the plots and table are not sent to the browser again.
        if key != self._shown:
            self._shown = key
            self._update_status(values)
            self._update_bars(values, chosen)
            self._update_scatter(values)
            self._update_sample(values, chosen)
            self._update_table(values, chosen)
        self._update_batch(values)

    def _update_empty(self) -> None:
        self._shown = None
        if self.state.session is None:
            text = "Open a session to see its losses."
        elif self.split_select.value == "test":
            text = "This run has no test set: choose the batch or the training set."
        else:
            text = f"Step {self.state.step} has no loss recorded."
        self.status.object = f"<p>{html.escape(text)}</p>"
        self.sample_pane.object = ""
        self.batch_pane.object = ""
        self.bars.data = {"x": [], "loss": [], "sample": [], "row": [], "color": []}
        self.points.data = {"y": [], "y_hat": [], "sample": [], "loss": []}
        self.rows.data = {"sample": [], "loss": []}

    def _update_curve(self) -> None:
        """Draw the whole-run curves once per session (the cursor line moves alone)."""
        session = self.state.session
        key = (id(session), None if session is None else session.n_steps)
        if key == self._session_shown:
            return
        self._session_shown = key
        if session is None:
            empty = {"step": [], "loss": []}
            self.curve.data = dict(empty)
            self.epoch_train.data = dict(empty)
            self.epoch_test.data = dict(empty)
            return
        series = session.series()
        x, y = decimate(series.step, series.loss, MAX_CURVE_POINTS)
        self.curve.data = {"step": x, "loss": y}
        epochs = session.epochs()
        # Test metrics use the parameters after the epoch's last step, which
        # are the ones the next step starts from; training metrics too, or
        # (by default) they are the mean over the epoch's batches.
        after = epochs.step + 1
        label = (
            "training batches, mean over each epoch"
            if session.config.train_metrics == "batches"
            else "training set, after each epoch"
        )
        for item in self.curve_figure.legend.items:
            if self._train_points in item.renderers:
                item.label = value(label)
        self.epoch_train.data = {
            "step": after,
            "loss": epochs.train.get("loss", np.full(len(after), np.nan)),
        }
        test = epochs.test.get("loss")
        self.epoch_test.data = (
            {"step": after, "loss": test}
            if test is not None and len(test) == len(after)
            else {"step": [], "loss": []}
        )

    def _update_status(self, values: dict[str, Any]) -> None:
        recorded = values["recorded"]
        split = self.split_select.value
        where = {
            "batch": f"the batch of step {self.state.step}",
            "train": "the whole training set",
            "test": "the whole test set",
        }[split]
        fused = " (computed from the output logits, fused)" if self._fused() else ""
        mean = float(np.mean(values["per_sample"]))
        self.status.object = (
            f"<p><b>{html.escape(recorded.loss_name)}</b>{fused} on {where}: "
            f"{len(values['per_sample'])} samples, mean loss "
            f"{explain.fmt(mean, 6)}. Parameters: those step {self.state.step} "
            "used.</p>"
        )

    def _update_outputs(self, values: dict[str, Any]) -> None:
        k = values["y"].shape[1]
        data = self.state.session.dataset
        names = (
            list(data.class_names)
            if data.task == "multiclass" and len(data.class_names) == k
            else [f"output {i + 1}" for i in range(k)]
        )
        options = {str(name): i for i, name in enumerate(names)}
        if self.output_select.options != options:
            self.output_select.options = options
            self.output_select.value = 0
        self.output_select.visible = k > 1

    def _order(self, per_sample: np.ndarray) -> np.ndarray:
        if self.sort_toggle.value:
            return np.argsort(-np.nan_to_num(per_sample, nan=-np.inf), kind="stable")
        return np.arange(per_sample.shape[0])

    def _update_bars(self, values: dict[str, Any], chosen: int) -> None:
        per_sample = values["per_sample"]
        order = self._order(per_sample)
        self._sample_order = order
        colors = np.full(per_sample.shape[0], _BAR, dtype=object)
        colors[chosen] = _BAR_SELECTED
        self.bars.data = {
            "x": np.arange(order.shape[0]),
            "loss": per_sample[order],
            "sample": order,
            "row": values["rows"][order],
            "color": colors[order],
        }
        self.bar_figure.xaxis.axis_label = (
            "samples, highest loss first" if self.sort_toggle.value else "sample"
        )

    def _update_scatter(self, values: dict[str, Any]) -> None:
        k = min(int(self.output_select.value or 0), values["y"].shape[1] - 1)
        self.points.data = {
            "y": values["y"][:, k],
            "y_hat": values["y_hat"][:, k],
            "sample": np.arange(values["y"].shape[0]),
            "loss": values["per_sample"],
        }

    def _update_sample(self, values: dict[str, Any], chosen: int) -> None:
        recorded = values["recorded"]
        z = values["z"]
        out = explain.sample_loss(
            recorded.loss_name,
            values["y_hat"][chosen],
            values["y"][chosen],
            float(values["per_sample"][chosen]),
            z=None if z is None or not self._fused() else z[chosen],
        )
        row = int(values["rows"][chosen])
        label = {
            "batch": f"sample {chosen} of the batch (training row {row})",
            "train": f"training row {row}",
            "test": f"test row {row}",
        }[self.split_select.value]
        self.sample_pane.object = (
            f"<b>Loss of {label}</b><pre>{html.escape(str(out))}</pre>"
        )

    def _update_batch(self, values: dict[str, Any]) -> None:
        recorded = values["recorded"]
        l2 = float(self.state.session.config.l2)
        if self.split_select.value == "batch":
            params = self.state.params() or []
            sum_sq = float(sum(np.sum(p["W"] * p["W"]) for p in params))
            out = explain.batch_loss(
                recorded.per_sample,
                recorded.data_loss,
                recorded.loss,
                l2=l2,
                l2_penalty=recorded.l2_penalty,
                sum_sq_weights=sum_sq,
            )
            head = f"Loss of step {self.state.step}: the mean over its batch"
            if l2 > 0:
                head += " plus the L2 penalty"
        else:
            mean = float(np.mean(values["per_sample"]))
            out = explain.batch_loss(values["per_sample"], mean, mean)
            head = "Mean loss over the split (no L2 penalty, no dropout)"
        now = isinstance(self.state.event, ev.LossComputed)
        cls = ' class="gn-now"' if now else ""
        self.batch_pane.object = (
            f"<div{cls}><b>{html.escape(head)}</b>"
            f"<pre>{html.escape(str(out))}</pre></div>"
        )

    def _update_table(self, values: dict[str, Any], chosen: int) -> None:
        per_sample = values["per_sample"]
        order = self._sample_order
        data = self.state.session.dataset
        y, y_hat = values["y"], values["y_hat"]
        frame: dict[str, Any] = {
            "sample": order,
            "row": values["rows"][order],
        }
        if data.task == "multiclass" and len(data.class_names) == y.shape[1]:
            names = np.array([str(c) for c in data.class_names], dtype=object)
            truth = np.argmax(y, axis=1)
            frame["target"] = names[truth][order]
            frame["predicted"] = names[np.argmax(y_hat, axis=1)][order]
            frame["p(target)"] = y_hat[np.arange(len(truth)), truth][order]
        else:
            for k in range(y.shape[1]):
                suffix = "" if y.shape[1] == 1 else f" {k + 1}"
                frame[f"y{suffix}"] = y[order, k]
                frame[f"y_hat{suffix}"] = y_hat[order, k]
        frame["loss"] = per_sample[order]
        if list(frame) != [c.field for c in self.table.columns]:
            self.table.columns = [
                _column(name, np.asarray(values)) for name, values in frame.items()
            ]
        self.rows.data = frame
        # Show the chosen sample as the table's selection.
        if self.split_select.value == "batch":
            position = int(np.flatnonzero(order == chosen)[0])
            if list(self.rows.selected.indices) != [position]:
                self.rows.selected.indices = [position]


def _column(name: str, values: np.ndarray) -> TableColumn:
    """Return a table column; numbers right-aligned with up to 6 decimals."""
    if values.dtype.kind == "f":
        return TableColumn(
            field=name, title=name, formatter=NumberFormatter(format="0.[000000]")
        )
    return TableColumn(field=name, title=name)
