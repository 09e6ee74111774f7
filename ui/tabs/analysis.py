"""Tab 7: activations, gradient health, dead and saturated units, weights."""

from __future__ import annotations

import html
import logging
import math
from typing import Any

import numpy as np
import panel as pn
from bokeh.models import (
    FixedTicker,
    HoverTool,
    LinearColorMapper,
    PrintfTickFormatter,
    Span,
)
from bokeh.palettes import RdBu11

from engine.network import forward
from ui import metrics
from ui.bookmarks import bookmark_note
from ui.plots import (
    TABLE_CSS,
    class_colors,
    cursor_span,
    empty_note,
    empty_source,
    finite_or_nan,
    new_figure,
)
from ui.tabs.base import Tab

__all__ = ["AnalysisTab"]

logger = logging.getLogger(__name__)

#: At most this many buckets per whole-run line (each: min, median, max).
MAX_SERIES_POINTS = 1000
#: Steps sampled for the activations over the run.
RUN_SAMPLES = 40
#: Training rows used for the activations over the run (the first ones).
RUN_ROWS = 2000
#: Bins of the activation histograms.
HIST_BINS = 30
#: Percentiles drawn for the activations over the run.
PERCENTILES = (5, 25, 50, 75, 95)
#: A weight map labels every unit up to this many, else about this many.
MAX_UNIT_TICKS = 20
#: The same for its (shorter) vertical input axis.
MAX_INPUT_TICKS = 8

_VERDICT_COLORS = {
    "healthy": "#2ca02c",
    "vanishing": "#1f77b4",
    "exploding": "#d62728",
    "unknown": "#7f7f7f",
}


class AnalysisTab(Tab):
    """What goes on inside the network: activations, gradients, units, weights.

    Per step (cheap: from ``AppState.predict`` and the step's events): the
    histogram of each layer's activations over the training set, dead ReLU
    and saturated sigmoid/tanh units, and the weight matrices.  Over the
    run (built once per session, the cursor only moves a line): gradient
    norms with a verdict per layer, update-to-weight ratios, and activation
    percentiles at sampled steps.
    """

    title = "Analysis"
    index = 6
    help = (
        "Move the cursor; the histograms, unit counts and weight "
        "maps show the cursor's step, and the red dashed line marks it on the "
        "whole-run plots."
    )
    watches = ("session", "events")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._shown_session: Any = None
        self._series: Any = None
        self._series_steps = 0
        self._views: dict[str, Any] = {}
        self._run_activations: dict[str, Any] = {}

        self._help = pn.pane.HTML(
            f"<p><i>{html.escape(self.help)}</i></p>", sizing_mode="stretch_width"
        )
        self._status = pn.pane.HTML("", sizing_mode="stretch_width")
        self._bookmarks = pn.pane.HTML("", sizing_mode="stretch_width")
        self._verdicts = pn.pane.HTML(
            "", sizing_mode="stretch_width", stylesheets=[TABLE_CSS]
        )
        self._units = pn.pane.HTML(
            "", sizing_mode="stretch_width", stylesheets=[TABLE_CSS]
        )
        self._ratio_note = pn.pane.HTML(
            "<p>Each line is |change of W| / |W| for one step. A common rule of "
            f"thumb puts it near {metrics.UPDATE_RATIO_GUIDE:g} (the grey line): "
            "far below (1e-5) the layer learns very slowly, far above (1e-1) its "
            "weights are thrown around and training may be unstable.</p>",
            sizing_mode="stretch_width",
        )
        self._run_note = pn.pane.HTML("", sizing_mode="stretch_width")
        self._series_note = pn.pane.HTML("", sizing_mode="stretch_width")
        self._histograms = pn.Row(sizing_mode="stretch_width")
        self._run_plots = pn.Row(sizing_mode="stretch_width")
        self._weights = pn.Row(sizing_mode="stretch_width")
        self._grad_pane = pn.Column(sizing_mode="stretch_width")
        self._ratio_pane = pn.Column(sizing_mode="stretch_width")

        self._layout = pn.Column(
            self._help,
            self._status,
            pn.pane.HTML("<h3>Bookmarks</h3>"),
            self._bookmarks,
            pn.pane.HTML("<h3>Activations at the cursor (training set)</h3>"),
            self._histograms,
            self._units,
            pn.pane.HTML("<h3>Activations over the run</h3>"),
            self._run_note,
            self._run_plots,
            pn.pane.HTML("<h3>Gradient norms per layer</h3>"),
            self._series_note,
            self._grad_pane,
            self._verdicts,
            pn.pane.HTML("<h3>Update size relative to the weights</h3>"),
            self._ratio_note,
            self._ratio_pane,
            pn.pane.HTML("<h3>Weights at the cursor</h3>"),
            self._weights,
            sizing_mode="stretch_width",
        )

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout

    # -- refreshing ------------------------------------------------------------

    def _update(self) -> None:
        session = self.state.session
        if session is None:
            self._status.object = empty_note("No session is open.")
            return
        if session is not self._shown_session:
            self._shown_session = session
            self._run_activations = {}
            self._build_session_views()
        elif session.n_steps != self._series_steps:
            # A run still being recorded has grown.
            self._update_run_series()
        self._status.object = (
            f"<p>Step <b>{self.state.step}</b> of {session.n_steps}.</p>"
        )
        self._bookmarks.object = bookmark_note(self.state)
        self._update_series_cursor()
        self._update_verdicts()
        self._update_run_activations()
        trace = self.state.predict("train")
        params = self.state.params()
        if trace is None or params is None:
            self._units.object = empty_note(
                "This step has no forward pass: it could not be rebuilt (see the "
                "message above) or diverged before one."
            )
            return
        self._update_histograms(trace)
        self._update_units(trace)
        self._update_weights(params)

    # -- built once per session ------------------------------------------------

    def _layer_names(self) -> list[str]:
        spec = self.state.session.spec
        n = len(spec.layers)
        return [
            f"layer {i + 1} ({layer.activation}{', output' if i == n - 1 else ''})"
            for i, layer in enumerate(spec.layers)
        ]

    def _build_session_views(self) -> None:
        """Build every figure for a newly opened session (the layer count varies)."""
        names = self._layer_names()
        colors = class_colors(len(names))
        views: dict[str, Any] = {"names": names}

        # Whole-run lines (filled by _update_run_series).
        for key, title in (
            ("grad", "|dW| per step (log scale)"),
            ("ratio", "|update of W| / |W| per step (log)"),
        ):
            fig = new_figure(
                title,
                height=300,
                y_axis_type="log",
                x_axis_label="step",
            )
            sources = []
            for i, name in enumerate(names):
                source = empty_source(["x", "y", "lo", "hi"])
                # Long runs: a band from each bucket's min to max, the median on top.
                fig.varea("x", "lo", "hi", source=source, color=colors[i], alpha=0.25)
                fig.line("x", "y", source=source, color=colors[i], legend_label=name)
                sources.append(source)
            dots = empty_source(["x", "y", "color"])
            fig.scatter("x", "y", source=dots, color="color", size=9)
            fig.legend.location = "top_right"
            fig.legend.label_text_font_size = "8pt"
            # Bokeh's LogTicker ticks a range under two decades linearly, which
            # leaves the small values unlabelled: ticks are set from the data.
            fig.yaxis.ticker = FixedTicker(ticks=[], minor_ticks=[])
            fig.yaxis.formatter = PrintfTickFormatter(format="%.3g")
            views[f"{key}_sources"] = sources
            views[f"{key}_dots"] = dots
            views[f"{key}_span"] = cursor_span(fig)
            views[f"{key}_fig"] = fig
            if key == "ratio":
                fig.add_layout(
                    Span(
                        location=metrics.UPDATE_RATIO_GUIDE,
                        dimension="width",
                        line_color="gray",
                        line_width=2,
                        line_alpha=0.6,
                    )
                )
        self._grad_pane.objects = [
            pn.pane.Bokeh(views["grad_fig"], sizing_mode="stretch_width")
        ]
        self._ratio_pane.objects = [
            pn.pane.Bokeh(views["ratio_fig"], sizing_mode="stretch_width")
        ]

        # Per-layer figures: histogram, percentiles over the run, weights.
        hists, runs, weights = [], [], []
        for i, name in enumerate(names):
            fig = new_figure(f"a of {name}", height=220, tools="save")
            source = empty_source(["top", "left", "right"])
            fig.quad(
                top="top",
                bottom=0,
                left="left",
                right="right",
                source=source,
                color=colors[i],
                alpha=0.7,
            )
            fig.xaxis.axis_label = "activation a"
            fig.yaxis.axis_label = "count (samples x units)"
            hists.append(source)
            hist_pane = pn.pane.Bokeh(fig, sizing_mode="stretch_width")

            run_fig = new_figure(
                f"percentiles of a, {name}", height=220, x_axis_label="step"
            )
            run_source = empty_source(["x", "p5", "p25", "p50", "p75", "p95"])
            run_fig.varea(
                "x", "p5", "p95", source=run_source, color=colors[i], alpha=0.2
            )
            run_fig.varea(
                "x", "p25", "p75", source=run_source, color=colors[i], alpha=0.4
            )
            run_fig.line("x", "p50", source=run_source, color=colors[i], line_width=2)
            run_span = cursor_span(run_fig)
            runs.append((run_source, run_span))

            w_fig = new_figure(
                f"W of {name}",
                height=240,
                tools="save",
                x_axis_label="unit of this layer",
                y_axis_label="input",
            )
            # Unit k (counted from 1, as in the text) is the cell centred on k.
            w_fig.xaxis.ticker = FixedTicker(ticks=[])
            w_fig.yaxis.ticker = FixedTicker(ticks=[])
            mapper = LinearColorMapper(palette=RdBu11, low=-1.0, high=1.0)
            w_source = empty_source(["image", "dw", "dh"])
            w_fig.image(
                image="image",
                x=0.5,
                y=0.5,
                dw="dw",
                dh="dh",
                source=w_source,
                color_mapper=mapper,
            )
            w_fig.grid.visible = False
            w_fig.add_tools(
                HoverTool(
                    tooltips=[
                        ("unit", "$x{0}"),
                        ("input", "$y{0}"),
                        ("W", "@image{0.0000}"),
                    ]
                )
            )
            w_fig.tags = [f"W of {name}"]
            weights.append((w_source, mapper, w_fig))
            views.setdefault("hist_panes", []).append(hist_pane)
            views.setdefault("run_panes", []).append(
                pn.pane.Bokeh(run_fig, sizing_mode="stretch_width")
            )
            views.setdefault("weight_panes", []).append(
                pn.pane.Bokeh(w_fig, sizing_mode="stretch_width")
            )
        views["hists"], views["runs"], views["weights"] = hists, runs, weights
        self._histograms.objects = views["hist_panes"]
        self._run_plots.objects = views["run_panes"]
        self._weights.objects = views["weight_panes"]
        self._views = views
        self._update_run_series()

    def _update_run_series(self) -> None:
        """Read the whole-run series and draw them decimated (again if it grew)."""
        session = self.state.session
        self._series = series = session.series()
        self._series_steps = session.n_steps
        for key, values in (
            ("grad", series.grad_norms),
            ("ratio", series.update_ratios),
        ):
            xs, lo, mid, hi = metrics.bucket_summary(
                series.step, finite_or_nan(values, positive=True), MAX_SERIES_POINTS
            )
            for i, source in enumerate(self._views[f"{key}_sources"]):
                source.data = {"x": xs, "y": mid[:, i], "lo": lo[:, i], "hi": hi[:, i]}
            major, minor = log_ticks(np.concatenate([lo.ravel(), hi.ravel()]))
            ticker = self._views[f"{key}_fig"].yaxis[0].ticker
            ticker.update(ticks=major, minor_ticks=minor)
        n = len(series.step)
        self._series_note.object = (
            ""
            if n <= MAX_SERIES_POINTS
            else f"<p>{n} steps drawn as {MAX_SERIES_POINTS} buckets of about "
            f"{n // MAX_SERIES_POINTS} steps: the line is each bucket's median, the "
            "band its minimum to maximum. The dots show the cursor's exact step.</p>"
        )

    # -- cheap per-step updates --------------------------------------------------

    def _update_series_cursor(self) -> None:
        step = self.state.step
        series = self._series
        views = self._views
        colors = class_colors(len(views["names"]))
        for key, values in (
            ("grad", series.grad_norms),
            ("ratio", series.update_ratios),
        ):
            views[f"{key}_span"].location = step
            if step < len(values):
                row = finite_or_nan(values[step], positive=True)
                views[f"{key}_dots"].data = {
                    "x": [step] * len(row),
                    "y": row,
                    "color": colors[: len(row)],
                }
            else:
                views[f"{key}_dots"].data = {"x": [], "y": [], "color": []}
        for _, span in views["runs"]:
            span.location = step

    def verdicts(self) -> list[metrics.GradientVerdict]:
        """Return the gradient verdict of each layer at the cursor."""
        return metrics.gradient_health(self._series.grad_norms, self.state.step)

    def _update_verdicts(self) -> None:
        names = self._views["names"]
        rows = []
        for name, v in zip(names, self.verdicts(), strict=True):
            color = _VERDICT_COLORS[v.verdict]
            rows.append(
                f"<tr><td>{html.escape(name)}</td>"
                f"<td style='color:{color}'><b>{v.verdict}</b></td>"
                f"<td>{html.escape(v.reason)}</td></tr>"
            )
        self._verdicts.object = (
            "<table class='glassnet-verdicts'><tr><th>layer</th><th>verdict</th>"
            "<th>why</th></tr>" + "".join(rows) + "</table>"
            f"<p>The verdict compares the median |dW| of the last "
            f"{metrics.RECENT_STEPS} steps up to the cursor with the median of the "
            f"first {metrics.EARLY_STEPS} steps: below "
            f"{metrics.VANISHING_RELATIVE:g} times (or below "
            f"{metrics.VANISHING_ABSOLUTE:g}, or a hidden layer below "
            f"{metrics.VANISHING_RELATIVE:g} times the output layer's) is "
            f"<em>vanishing</em>; above {metrics.EXPLODING_RELATIVE:g} times (or "
            f"above {metrics.EXPLODING_ABSOLUTE:g}, or not a number) is "
            "<em>exploding</em>; anything between is <em>healthy</em>.</p>"
        )

    def _update_histograms(self, trace: Any) -> None:
        for source, a in zip(self._views["hists"], trace.a_act, strict=True):
            values = a[np.isfinite(a)]
            if values.size == 0:
                source.data = {"top": [], "left": [], "right": []}
                continue
            counts, edges = np.histogram(values, bins=HIST_BINS)
            source.data = {"top": counts, "left": edges[:-1], "right": edges[1:]}

    def unit_health(self, trace: Any = None) -> list[dict[str, Any]]:
        """Return, per layer, its activation and dead or saturated share at the cursor.

        Each entry holds ``activation``, ``kind`` (``"dead"``, ``"saturated"``
        or None when neither applies), ``share`` and ``units`` (indices).
        """
        trace = trace if trace is not None else self.state.predict("train")
        out = []
        spec = self.state.session.spec
        for layer, a in zip(spec.layers, trace.a_act, strict=True):
            act = get_name(layer.activation)
            entry: dict[str, Any] = {"activation": act, "kind": None}
            if act == "relu":
                share, which = metrics.dead_fraction(a)
                entry.update(kind="dead", share=share, units=np.flatnonzero(which))
            elif act in ("sigmoid", "tanh"):
                share, which = metrics.saturated_fraction(a, act)
                entry.update(kind="saturated", share=share, units=np.flatnonzero(which))
            out.append(entry)
        return out

    def _update_units(self, trace: Any) -> None:
        rows = []
        for name, entry in zip(
            self._views["names"], self.unit_health(trace), strict=True
        ):
            if entry["kind"] is None:
                what = "no check for this activation"
            else:
                units = ", ".join(str(u + 1) for u in entry["units"][:20])
                more = "" if len(entry["units"]) <= 20 else ", ..."
                share = entry["share"]
                what = (
                    f"{entry['kind']}: {share:.0%} of the units"
                    if math.isfinite(share)
                    else f"{entry['kind']}: no samples"
                )
                if units:
                    what += f" (unit {units}{more})"
            rows.append(f"<tr><td>{html.escape(name)}</td><td>{what}</td></tr>")
        self._units.object = (
            "<table class='glassnet-units'>" + "".join(rows) + "</table>"
            "<p><em>Dead</em> ReLU units output 0 for every training sample, so "
            "they pass nothing on and get no gradient: they cannot recover. "
            "<em>Saturated</em> sigmoid/tanh units sit within "
            f"{metrics.SATURATED_MARGIN:g} of an asymptote for at least "
            f"{metrics.SATURATED_SHARE:.0%} of the samples, where their slope is "
            "nearly 0 and gradients through them nearly vanish (for the output "
            "layer this is also what confident predictions look like).</p>"
        )

    def _update_weights(self, params: list[dict[str, np.ndarray]]) -> None:
        for (source, mapper, fig), p in zip(
            self._views["weights"], params, strict=True
        ):
            W = finite_or_nan(p["W"])
            n_in, n_out = W.shape
            top = float(np.nanmax(np.abs(W))) if np.isfinite(W).any() else 1.0
            top = top or 1.0
            mapper.low, mapper.high = -top, top
            source.data = {"image": [W], "dw": [n_out], "dh": [n_in]}
            if list(fig.xaxis[0].ticker.ticks[-1:]) != [n_out]:
                fig.xaxis[0].ticker.ticks = unit_ticks(n_out)
            if list(fig.yaxis[0].ticker.ticks[-1:]) != [n_in]:
                fig.yaxis[0].ticker.ticks = unit_ticks(n_in, MAX_INPUT_TICKS)
            fig.title.text = f"{fig.tags[0]} (colour range: -{top:.3g} to {top:.3g})"

    # -- sampled once per session ---------------------------------------------

    def run_activations(self) -> dict[str, Any]:
        """Return activation percentiles per layer at sampled steps (cached).

        Every step of a short run; in a longer one, multiples of the keyframe
        interval (their parameters are stored, so no step is re-executed)
        plus the end of the run, at most ``RUN_SAMPLES`` in all.  The forward
        pass uses the first ``RUN_ROWS`` training rows.  Returns
        ``{"steps": [...], "layers": [...], "rows": int, "n_steps": int}``,
        ``layers`` holding per layer an array of shape
        (n_sampled_steps, len(PERCENTILES)).
        """
        session = self.state.session
        n_steps = session.n_steps
        cached = self._run_activations
        if cached and cached["n_steps"] >= n_steps * 0.9:
            return cached
        steps = metrics.sampled_steps(n_steps, session.keyframe_interval, RUN_SAMPLES)
        X = session.dataset.X_train[:RUN_ROWS]
        acts = session.spec.activations()
        layers: list[list[np.ndarray]] = [[] for _ in session.spec.layers]
        kept = []
        for step in steps:
            try:
                if step < n_steps:
                    params = session.state_before(step).params
                else:
                    params = session.params_after(step - 1)
            except Exception as err:  # a damaged step must not break the tab
                logger.info("Skipping step %s of the activation samples: %s", step, err)
                continue
            with np.errstate(all="ignore"):
                trace = forward(params, X, acts)
                for i, a in enumerate(trace.a_act):
                    finite = a[np.isfinite(a)]
                    layers[i].append(
                        np.percentile(finite, PERCENTILES)
                        if finite.size
                        else np.full(len(PERCENTILES), np.nan)
                    )
            kept.append(step)
        self._run_activations = {
            "n_steps": n_steps,
            "steps": kept,
            "layers": [np.array(rows).reshape(len(kept), -1) for rows in layers],
            "rows": X.shape[0],
        }
        return self._run_activations

    def _update_run_activations(self) -> None:
        before = self._run_activations
        run = self.run_activations()
        if run is before:
            return
        for (source, _), values in zip(self._views["runs"], run["layers"], strict=True):
            source.data = {
                "x": run["steps"],
                **{f"p{q}": values[:, j] for j, q in enumerate(PERCENTILES)},
            }
        self._run_note.object = (
            f"<p>Percentiles 5-95 (light band), 25-75 "
            f"(dark band) and the median of each layer's activations over the "
            f"first {run['rows']} training samples, at {len(run['steps'])} sampled "
            "steps (each point uses the parameters before that step's update; "
            "the last one is after the final update).</p>"
        )


def log_ticks(values: np.ndarray) -> tuple[list[float], list[float]]:
    """Return major and minor ticks of a log axis that span ``values``.

    Parameters
    ----------
    values : numpy.ndarray
        The values drawn on the axis; zero, negative and non-finite ones are
        ignored.

    Returns
    -------
    tuple of list of float
        Major ticks (1, 2 and 5 of each decade over at most four decades, else
        powers of ten, thinned to about ten) and minor ticks (1 to 9 of each
        decade, none over more than ten decades), from the decade below the
        smallest value to the decade above the largest.
    """
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values) & (values > 0)]
    if values.size == 0:
        return [], []
    low = math.floor(math.log10(float(values.min())))
    high = math.ceil(math.log10(float(values.max())))
    high = max(high, low + 1)
    decades = range(low, high + 1)
    if high - low <= 4:
        major = [m * 10.0**k for k in decades for m in (1, 2, 5)]
    else:
        every = max(1, math.ceil((high - low) / 10))
        major = [10.0**k for k in decades if (k - low) % every == 0]
    minor = (
        [m * 10.0**k for k in decades for m in range(1, 10)] if high - low <= 10 else []
    )
    return major, minor


def unit_ticks(n: int, most: int = MAX_UNIT_TICKS) -> list[int]:
    """Return the axis ticks of ``n`` units counted from 1 (every one, or thinned).

    Parameters
    ----------
    n : int
        How many units (or inputs) the axis shows.
    most : int
        Label every unit up to this many, else about this many ticks.

    Returns
    -------
    list of int
        ``1..n`` when ``n`` is at most ``most``, else 1 and the
        multiples of a round step (every other unit for a step of 2),
        always ending with ``n``.
    """
    if n <= most:
        return list(range(1, n + 1))
    raw = n / most
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    ticks = list(range(1, n, 2)) if step == 2 else [1, *range(step, n, step)]
    if len(ticks) > 1 and n - ticks[-1] <= step / 2:
        ticks.pop()
    return [*ticks, n]


def get_name(activation: str) -> str:
    """Return the registry name of an activation (``linear`` is ``identity``)."""
    return "identity" if activation == "linear" else activation
