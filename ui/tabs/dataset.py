"""Tab 2: pick a built-in dataset or import a CSV, and look at it."""

from __future__ import annotations

import html
import logging
import warnings
from dataclasses import asdict
from typing import Any

import numpy as np
import panel as pn
from bokeh.models import ColumnDataSource, HoverTool
from bokeh.palettes import Turbo256
from bokeh.plotting import figure

from engine.data import Dataset
from engine.errors import ConfigError
from sessions.csv_import import DEFAULT_MAX_BYTES, CsvOptions, CsvReport, import_csv
from sessions.datasets import DATASETS, load_dataset
from sessions.errors import DatasetError
from ui.plots import class_colors
from ui.tabs.base import Tab
from ui.upload import LimitedFileInput

__all__ = ["DatasetTab", "class_counts", "feature_stats"]

logger = logging.getLogger(__name__)

_CSS = """
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 2px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.gn-error { color: #a00; font-weight: 600; white-space: pre-wrap; }
.gn-notice { color: #8a5a00; }
.gn-ok { color: #060; }
"""
"""Styles of the tab's HTML panes (each pane has its own shadow root)."""

#: Rows shown in the preview table.
PREVIEW_ROWS = 10
#: Bins of the feature histogram.
N_BINS = 20
#: Points drawn in the scatter; larger splits are sampled evenly.
MAX_POINTS = 5000

_AUTO = "detect"
_DELIMITERS = {
    _AUTO: None,
    ", (comma)": ",",
    "; (semicolon)": ";",
    "tab": "\t",
    "| (bar)": "|",
}
_HEADER = {_AUTO: None, "first row is column names": True, "no header": False}
_TASKS = [_AUTO, "binary", "multiclass", "regression", "classification"]
_LAST_COLUMN = "(last column)"
_SPLITS = ["train", "test", "all"]


def feature_stats(X: np.ndarray) -> dict[str, np.ndarray]:
    """Return count, mean, std, min, max and missing per column of ``X``.

    NaN counts as missing and is left out of the other statistics; ``std`` is
    the population standard deviation (``ddof=0``), as standardization uses.
    """
    X = np.asarray(X, dtype=np.float64)
    missing = np.isnan(X).sum(axis=0)
    count = X.shape[0] - missing
    with np.errstate(all="ignore"), warnings.catch_warnings():
        # A column of NaN only has no mean: shown as empty, not warned about.
        warnings.simplefilter("ignore", RuntimeWarning)
        return {
            "count": count,
            "mean": np.nanmean(X, axis=0),
            "std": np.nanstd(X, axis=0),
            "min": np.nanmin(X, axis=0) if X.shape[0] else np.full(X.shape[1], np.nan),
            "max": np.nanmax(X, axis=0) if X.shape[0] else np.full(X.shape[1], np.nan),
            "missing": missing,
        }


def class_counts(y: np.ndarray, task: str) -> np.ndarray:
    """Return the number of rows of each class (binary: [class 0, class 1])."""
    if task == "binary":
        ones = int(np.sum(y[:, 0] > 0.5))
        return np.array([y.shape[0] - ones, ones])
    return np.asarray(y.sum(axis=0), dtype=np.int64)


def class_index(y: np.ndarray, task: str) -> np.ndarray:
    """Return each row's class index (binary 0/1, multiclass argmax)."""
    if task == "binary":
        return (y[:, 0] > 0.5).astype(np.int64)
    return np.argmax(y, axis=1)


def _num(value: float) -> str:
    return "" if not np.isfinite(value) else f"{value:.4g}"


class DatasetTab(Tab):
    """Choose the dataset of the next run and look at it."""

    title = "Dataset"
    index = 1
    help = (
        "Pick a built-in dataset (set its size, noise and seed) or upload a CSV "
        "file and choose its target column; then look at the rows, the statistics "
        "of each feature, the class balance and the plots. The chosen dataset is "
        "used by the next run (tab 5)."
    )
    watches = ("session", "data")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._key: Any = None
        self._syncing = False
        self._csv: tuple[bytes, str] | None = None
        self._report: CsvReport | None = None
        text = {"sizing_mode": "stretch_width", "stylesheets": [_CSS]}
        self.help_pane = pn.pane.HTML(f"<p><i>{html.escape(self.help)}</i></p>", **text)

        # Where the data comes from.
        self.source = pn.widgets.RadioButtonGroup(
            options=["Built-in dataset", "CSV file"], value="Built-in dataset"
        )
        self.builtin = pn.widgets.Select(
            label="Dataset", options=list(DATASETS), value="moons", width=170
        )
        self.n_samples = pn.widgets.IntInput(
            label="Samples", value=200, start=4, end=100_000, width=100
        )
        self.noise = pn.widgets.FloatInput(
            label="Noise", value=0.1, start=0.0, step=0.05, width=90
        )
        self.seed = pn.widgets.IntInput(label="Seed", value=0, start=0, width=80)
        self.test_fraction = pn.widgets.FloatInput(
            label="Test fraction", value=0.2, start=0.0, end=0.95, step=0.05, width=110
        )
        self.standardize = pn.widgets.Checkbox(
            label="Standardize features (mean 0, std 1 on training rows)", value=True
        )
        self.load_button = pn.widgets.Button(
            label="Use this dataset", color="primary", width=160
        )
        self.description = pn.pane.HTML("", **text)
        self.builtin.param.watch(self._on_builtin_value, "value")
        self.load_button.on_click(self._on_load_button_click)

        # The size is checked in the browser: a larger file would close the websocket.
        self.file_input = LimitedFileInput(
            accept=".csv,.tsv,.txt",
            max_bytes=DEFAULT_MAX_BYTES,
            label="Upload a CSV file",
            what="CSV files",
            advice="Keep fewer rows or columns and upload it again.",
            on_refused=lambda text: setattr(self.state, "message", text),
        )
        self.file_input.param.watch(self._on_file_input_value, "value")
        self.target = pn.widgets.Select(
            label="Target column", options=[_LAST_COLUMN], width=180
        )
        self.delimiter = pn.widgets.Select(
            label="Delimiter", options=list(_DELIMITERS), width=140
        )
        self.header = pn.widgets.Select(
            label="Header", options=list(_HEADER), width=200
        )
        self.task = pn.widgets.Select(label="Task", options=_TASKS, width=140)
        self.missing = pn.widgets.Select(
            label="Missing values",
            options=["error", "drop", "impute_mean"],
            width=140,
        )
        self.import_button = pn.widgets.Button(
            label="Import again with these settings", width=240, disabled=True
        )
        self.import_button.on_click(self._on_import_button_click)
        self.report_pane = pn.pane.HTML("", **text)
        self.error_pane = pn.pane.HTML("", **text)

        self.builtin_box = pn.Column(
            pn.Row(self.builtin, self.n_samples, self.noise),
            self.description,
            sizing_mode="stretch_width",
        )
        self.csv_box = pn.Column(
            self.file_input,
            pn.Row(self.target, self.delimiter, self.header),
            pn.Row(self.task, self.missing, self.import_button),
            self.report_pane,
            sizing_mode="stretch_width",
            visible=False,
        )
        self.source.param.watch(self._on_source_value, "value")
        self.session_button = pn.widgets.Button(
            label="Use the open session's dataset", width=240, visible=False
        )
        self.session_button.on_click(self._on_session_button_click)

        # What the chosen dataset holds.
        self.split = pn.widgets.RadioButtonGroup(options=_SPLITS, value="train")
        self.split.param.watch(self._on_view_value, "value")
        self.summary = pn.pane.HTML("<p>No dataset chosen yet.</p>", **text)
        self.preview = pn.pane.HTML("", **text)
        self.stats = pn.pane.HTML("", **text)
        self.balance = pn.pane.HTML("", **text)
        self.hist_feature = pn.widgets.Select(label="Histogram of", width=200)
        self.x_feature = pn.widgets.Select(label="x axis", width=200)
        self.y_feature = pn.widgets.Select(label="y axis", width=200)
        for w in (self.hist_feature, self.x_feature, self.y_feature):
            w.param.watch(self._on_view_value, "value")
        self.hist_source = ColumnDataSource(
            {"left": [], "right": [], "top": [], "color": [], "label": []}
        )
        self.hist_figure = figure(
            height=260,
            sizing_mode="stretch_width",
            tools="pan,wheel_zoom,reset,save",
            y_axis_label="rows",
        )
        self.hist_figure.toolbar.logo = None
        self.hist_figure.quad(
            left="left",
            right="right",
            top="top",
            bottom=0,
            fill_color="color",
            fill_alpha=0.45,
            line_color="color",
            source=self.hist_source,
            legend_field="label",
        )
        self.hist_figure.legend.location = "top_right"
        self.hist_figure.add_tools(
            HoverTool(tooltips=[("class", "@label"), ("rows", "@top")])
        )
        self.points = ColumnDataSource(
            {"x": [], "y": [], "color": [], "label": [], "group": []}
        )
        self.scatter_figure = figure(
            height=320,
            sizing_mode="stretch_width",
            tools="pan,wheel_zoom,box_zoom,reset,save",
        )
        self.scatter_figure.toolbar.logo = None
        self.scatter_figure.scatter(
            "x",
            "y",
            color="color",
            source=self.points,
            size=6,
            alpha=0.7,
            legend_field="group",
        )
        self.scatter_figure.legend.location = "top_right"
        self.scatter_figure.add_tools(HoverTool(tooltips=[("class", "@label")]))
        self.view = pn.Column(
            self.summary,
            self.split,
            pn.pane.HTML("<h4>First rows</h4>", **text),
            self.preview,
            pn.pane.HTML("<h4>Feature statistics</h4>", **text),
            self.stats,
            self.balance,
            pn.Row(self.hist_feature),
            pn.pane.Bokeh(self.hist_figure, sizing_mode="stretch_width"),
            pn.Row(self.x_feature, self.y_feature),
            pn.pane.Bokeh(self.scatter_figure, sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )
        self._layout = pn.Column(
            self.help_pane,
            self.source,
            self.builtin_box,
            self.csv_box,
            pn.Row(self.test_fraction, self.seed, self.standardize),
            pn.Row(self.load_button, self.session_button),
            self.error_pane,
            self.view,
            sizing_mode="stretch_width",
        )
        self._on_builtin_value()
        self.state.param.watch(self._on_state_session, "session")
        if self.state.session is not None:
            self._on_state_session()

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout

    @property
    def data(self) -> Dataset | None:
        """Return the dataset shown: the next run's, else the open session's."""
        if self.state.data is not None:
            return self.state.data
        return None if self.state.session is None else self.state.session.dataset

    # -- choosing the data ---------------------------------------------------

    def load_builtin(self) -> bool:
        """Load the chosen built-in dataset into ``state.data``; False on error."""
        name = self.builtin.value
        synthetic = DATASETS[name].synthetic
        options: dict[str, Any] = {
            "test_fraction": self.test_fraction.value,
            "standardize": bool(self.standardize.value),
            "seed": self.seed.value,
        }
        if synthetic:
            options["n_samples"] = self.n_samples.value
            options["noise"] = self.noise.value
        empty = [k for k, v in options.items() if v is None]
        if empty:
            return self._fail(f"{', '.join(empty)} is empty; enter a number.")
        try:
            data = load_dataset(name, **options)
        except (DatasetError, ConfigError) as err:
            return self._fail(str(err))
        self._use(data, {"kind": "builtin", "name": name, "options": options})
        return True

    def import_bytes(self, raw: bytes, filename: str) -> bool:
        """Import an uploaded CSV file into ``state.data``; False on error."""
        self._csv = (bytes(raw), filename)
        self._report = None
        self.import_button.disabled = False
        # A new file: its columns are not known yet, detect everything.
        self.target.param.update(options=[_LAST_COLUMN], value=_LAST_COLUMN)
        return self.import_csv_again()

    def csv_options(self) -> CsvOptions:
        """Return the CSV options the widgets describe.

        Raises
        ------
        DatasetError
            If an option is invalid.
        """
        task = self.task.value
        target = self.target.value
        fraction = self.test_fraction.value
        seed = self.seed.value
        if fraction is None or seed is None:
            raise DatasetError(
                "The test fraction or the seed is empty; enter a number."
            )
        return CsvOptions(
            target=None if target == _LAST_COLUMN else target,
            task=None if task == _AUTO else task,
            delimiter=_DELIMITERS[self.delimiter.value],
            header=_HEADER[self.header.value],
            test_fraction=float(fraction),
            standardize=bool(self.standardize.value),
            seed=int(seed),
            missing=self.missing.value,
        )

    def import_csv_again(self) -> bool:
        """Import the last uploaded file with the current settings."""
        if self._csv is None:
            return self._fail("Upload a CSV file first.")
        raw, filename = self._csv
        try:
            options = self.csv_options()
            data, report = import_csv(raw, options, name=filename)
        except (DatasetError, ConfigError) as err:
            self.report_pane.object = ""
            return self._fail(str(err))
        except Exception as err:  # noqa: BLE001 - any unreadable upload is a message
            logger.exception("CSV import of %s failed", filename)
            return self._fail(f"The file could not be read as CSV: {err}")
        self._report = report
        columns = [_LAST_COLUMN, *report.columns]
        self.target.param.update(
            options=columns,
            value=report.target if options.target is not None else _LAST_COLUMN,
        )
        self._update_report(report)
        source = {
            "kind": "csv",
            "file": filename,
            "options": {k: v for k, v in asdict(options).items() if k != "max_bytes"},
        }
        self._use(data, source)
        return True

    def _use(self, data: Dataset, source: dict[str, Any]) -> None:
        self.error_pane.object = ""
        self.state.data_source = source
        self.state.data = data
        if self.visible:
            self.refresh()

    def _fail(self, text: str) -> bool:
        self.error_pane.object = (
            f"<p class='gn-error'>Could not use this data: {html.escape(text)}</p>"
        )
        return False

    # -- handlers ------------------------------------------------------------

    def _on_state_session(self, *_: Any) -> None:
        session = self.state.session
        # The dataset follows the open session until the user chooses one here.
        if session is not None and (
            self.state.data is None
            or self.state.data_source.get("kind", "session") == "session"
        ):
            self.state.data_source = {"kind": "session", "name": session.dataset.name}
            self.state.data = session.dataset

    def _on_source_value(self, event: Any) -> None:
        csv = event.new == "CSV file"
        self.csv_box.visible = csv
        self.builtin_box.visible = not csv
        self.load_button.visible = not csv

    def _on_builtin_value(self, *_: Any) -> None:
        info = DATASETS[self.builtin.value]
        synthetic = info.synthetic
        self.n_samples.disabled = not synthetic
        self.noise.disabled = not synthetic
        if synthetic:
            self.n_samples.value = info.default_n_samples
            self.noise.value = info.default_noise
        kind = "generated" if synthetic else "from a file"
        self.description.object = (
            f"<p>{html.escape(info.description)} <small>({html.escape(info.task)}, "
            f"{info.n_features} features, {kind}; {html.escape(info.source)})"
            "</small></p>"
        )

    def _on_load_button_click(self, *_: Any) -> None:
        self.load_builtin()

    def _on_file_input_value(self, event: Any) -> None:
        # An empty file (b"") is imported too, so its message is shown.
        if event.new is not None:
            self.import_bytes(event.new, self.file_input.filename or "uploaded.csv")

    def _on_import_button_click(self, *_: Any) -> None:
        self.import_csv_again()

    def _on_session_button_click(self, *_: Any) -> None:
        session = self.state.session
        if session is not None:
            self.state.data_source = {"kind": "session", "name": session.dataset.name}
            self.state.data = session.dataset

    def _on_view_value(self, *_: Any) -> None:
        if self.visible and self.data is not None and not self._syncing:
            self._update_views(self.data)

    # -- refreshers ----------------------------------------------------------

    def _update(self) -> None:
        session = self.state.session
        self.session_button.visible = (
            session is not None and self.state.data is not session.dataset
        )
        data = self.data
        key = id(data)
        if key == self._key:
            return
        self._key = key
        if data is None:
            self.summary.object = "<p>No dataset chosen yet.</p>"
            self.view.visible = True
            for pane in (self.preview, self.stats, self.balance):
                pane.object = ""
            return
        self._update_summary(data)
        names = list(data.feature_names)
        for w, default in (
            (self.hist_feature, 0),
            (self.x_feature, 0),
            (self.y_feature, min(1, len(names) - 1)),
        ):
            self._syncing = True
            try:
                w.param.update(options=names, value=names[default])
            finally:
                self._syncing = False
        self._update_views(data)

    def rows(self, data: Dataset) -> tuple[np.ndarray, np.ndarray]:
        """Return ``X`` and ``y`` of the split chosen for the views."""
        if self.split.value == "train":
            return data.X_train, data.y_train
        if self.split.value == "test":
            return data.X_test, data.y_test
        return (
            np.vstack([data.X_train, data.X_test]),
            np.vstack([data.y_train, data.y_test]),
        )

    def _update_summary(self, data: Dataset) -> None:
        e = html.escape
        source = self.state.data_source or {}
        where = ""
        if data is not getattr(self.state.session, "dataset", None):
            if source.get("kind") == "csv":
                where = f" (imported from {e(str(source.get('file')))})"
        else:
            where = " (the open session's dataset)"
        classes = ", ".join(data.class_names)
        info = data.info or {}
        scaled = (info.get("standardization") or {}).get("applied")
        lines = [
            f"<h3>Dataset of the next run: {e(data.name)}{where}</h3>",
            "<p>Train on tab 5 uses this dataset; the network on tab 1 takes its "
            "features as inputs and its outputs as output layer.</p>",
            f"<p>Task: <b>{e(data.task)}</b>; {data.n_features} features, "
            f"{data.n_outputs} output(s); {data.n_train} training rows, "
            f"{data.n_test} test rows. Target: {e(data.target_name)}"
            + (f"; classes: {e(classes)}" if classes else "")
            + ".</p>",
            "<p>Values are shown as the network sees them"
            + (", after standardization" if scaled else " (not standardized)")
            + ".</p>",
        ]
        lines += [
            f"<p class='gn-notice'>{e(str(n))}</p>" for n in info.get("notices", [])
        ]
        if info.get("source"):
            lines.append(f"<p><small>Source: {e(str(info['source']))}</small></p>")
        self.summary.object = "".join(lines)

    def _update_views(self, data: Dataset) -> None:
        X, y = self.rows(data)
        self._update_preview(data, X, y)
        self._update_stats(data, X)
        self._update_balance(data, y)
        self._update_histogram(data, X, y)
        self._update_scatter(data, X, y)

    def _labels(self, data: Dataset, y: np.ndarray) -> list[str]:
        if data.task == "regression":
            return [f"{v:.4g}" for v in y[:, 0]]
        names = data.class_names or tuple(str(k) for k in range(data.n_outputs))
        return [names[k] for k in class_index(y, data.task)]

    def _update_preview(self, data: Dataset, X: np.ndarray, y: np.ndarray) -> None:
        e = html.escape
        n = min(PREVIEW_ROWS, X.shape[0])
        head = "".join(f"<th>{e(name)}</th>" for name in data.feature_names)
        labels = self._labels(data, y[:n])
        body = "".join(
            "<tr><td>"
            + str(r + 1)
            + "</td>"
            + "".join(f"<td>{_num(v)}</td>" for v in X[r])
            + f"<td>{e(labels[r])}</td></tr>"
            for r in range(n)
        )
        self.preview.object = (
            f"<div style='overflow-x:auto'><table><tr><th>row</th>{head}"
            f"<th>{e(data.target_name)}</th></tr>{body}</table></div>"
            f"<p><small>{n} of {X.shape[0]} rows.</small></p>"
        )

    def _update_stats(self, data: Dataset, X: np.ndarray) -> None:
        stats = feature_stats(X)
        cols = ("count", "mean", "std", "min", "max", "missing")
        head = "".join(f"<th>{c}</th>" for c in cols)
        rows = []
        for k, name in enumerate(data.feature_names):
            cells = "".join(
                f"<td>{int(stats[c][k])}</td>"
                if c in ("count", "missing")
                else f"<td>{_num(stats[c][k])}</td>"
                for c in cols
            )
            rows.append(f"<tr><td>{html.escape(name)}</td>{cells}</tr>")
        self.stats.object = (
            f"<div style='overflow-x:auto'><table><tr><th>feature</th>{head}</tr>"
            + "".join(rows)
            + "</table></div>"
        )

    def _update_balance(self, data: Dataset, y: np.ndarray) -> None:
        e = html.escape
        if data.task == "regression":
            s = feature_stats(y)
            self.balance.object = (
                f"<p><b>Target {e(data.target_name)}</b>: mean {_num(s['mean'][0])}, "
                f"std {_num(s['std'][0])}, min {_num(s['min'][0])}, "
                f"max {_num(s['max'][0])}</p>"
            )
            return
        counts = class_counts(y, data.task)
        total = max(int(counts.sum()), 1)
        names = data.class_names or tuple(str(k) for k in range(len(counts)))
        rows = "".join(
            f"<tr><td>{e(names[k])}</td><td>{int(c)}</td>"
            f"<td>{100 * c / total:.1f}%</td></tr>"
            for k, c in enumerate(counts)
        )
        self.balance.object = (
            "<p><b>Class balance</b></p><table><tr><th>class</th><th>rows</th>"
            f"<th>share</th></tr>{rows}</table>"
        )

    def _colors(self, data: Dataset, y: np.ndarray) -> tuple[list[str], list[str]]:
        labels = self._labels(data, y)
        if data.task == "regression":
            v = y[:, 0]
            lo, hi = (float(v.min()), float(v.max())) if v.size else (0.0, 1.0)
            pos = np.zeros_like(v) if hi <= lo else (v - lo) / (hi - lo)
            return [Turbo256[int(p * 255)] for p in pos], labels
        palette = class_colors(max(data.n_outputs, 2))
        return [palette[k] for k in class_index(y, data.task)], labels

    def _update_histogram(self, data: Dataset, X: np.ndarray, y: np.ndarray) -> None:
        names = list(data.feature_names)
        feature = self.hist_feature.value
        if feature not in names or X.shape[0] == 0:
            self.hist_source.data = {k: [] for k in self.hist_source.data}
            return
        column = X[:, names.index(feature)]
        finite = column[np.isfinite(column)]
        edges = np.histogram_bin_edges(finite, bins=N_BINS) if finite.size else [0, 1]
        out: dict[str, list[Any]] = {k: [] for k in self.hist_source.data}
        if data.task == "regression":
            groups = [(np.ones(len(column), dtype=bool), "all rows", "#1f77b4")]
        else:
            index = class_index(y, data.task)
            palette = class_colors(max(data.n_outputs, 2))
            names_c = data.class_names or tuple(str(k) for k in range(len(palette)))
            groups = [(index == k, names_c[k], palette[k]) for k in range(len(names_c))]
        for mask, label, color in groups:
            counts, _ = np.histogram(column[mask], bins=edges)
            out["left"].extend(np.asarray(edges[:-1]).tolist())
            out["right"].extend(np.asarray(edges[1:]).tolist())
            out["top"].extend(counts.tolist())
            out["color"].extend([color] * len(counts))
            out["label"].extend([label] * len(counts))
        self.hist_source.data = out
        self.hist_figure.xaxis.axis_label = feature

    def _update_scatter(self, data: Dataset, X: np.ndarray, y: np.ndarray) -> None:
        names = list(data.feature_names)
        fx, fy = self.x_feature.value, self.y_feature.value
        if fx not in names or fy not in names or X.shape[0] == 0:
            self.points.data = {k: [] for k in self.points.data}
            return
        take = np.arange(X.shape[0])
        if take.size > MAX_POINTS:
            take = np.linspace(0, X.shape[0] - 1, MAX_POINTS).astype(int)
        colors, labels = self._colors(data, y[take])
        self.points.data = {
            "x": X[take, names.index(fx)].tolist(),
            "y": X[take, names.index(fy)].tolist(),
            "color": colors,
            "label": labels,
            "group": (
                ["colour: target value"] * len(labels)
                if data.task == "regression"
                else labels
            ),
        }
        self.scatter_figure.xaxis.axis_label = fx
        self.scatter_figure.yaxis.axis_label = fy

    def _update_report(self, report: CsvReport) -> None:
        e = html.escape
        delim = {"\t": "tab"}.get(report.delimiter, report.delimiter)
        classes = ", ".join(
            f"{label} → {index}" for label, index in report.class_mapping.items()
        )
        lines = [
            f"<p>Read <b>{e(report.source)}</b> ({report.size_bytes} bytes, "
            f"{e(report.encoding)}): delimiter <b>{e(repr(delim))}</b>, decimal "
            f"mark {e(repr(report.decimal))}, header "
            f"<b>{'yes' if report.header else 'no'}</b>; {report.rows_read} rows read, "
            f"{report.rows_used} used.</p>",
            f"<p>Target <b>{e(report.target)}</b>, task <b>{e(report.task)}</b>: "
            f"{e(report.task_reason)}</p>",
        ]
        if classes:
            lines.append(f"<p>Classes: {e(classes)}</p>")
        for dropped in report.rows_dropped:
            lines.append(
                f"<p class='gn-notice'>Row {dropped.row} (line {dropped.line}) "
                f"dropped: {e(dropped.reason)}</p>"
            )
        lines += [f"<p class='gn-notice'>{e(n)}</p>" for n in report.notices]
        lines.append(
            f"<p class='gn-ok'>Imported: <b>{e(report.source)}</b> is now the "
            "dataset of the next run (tab 5); the network on tab 1 follows it.</p>"
        )
        self.report_pane.object = "".join(lines)
