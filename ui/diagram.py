"""Draw a network as layers of units joined by one line per weight.

The figure is built once; moving the cursor only replaces the data of its
sources (and moves one box that marks the current operation's layer), so the
browser patches a few arrays instead of building a new plot.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import numpy as np
import panel as pn
import param
from bokeh.models import (
    BoxAnnotation,
    ColumnDataSource,
    HoverTool,
    LinearColorMapper,
    TapTool,
)
from bokeh.plotting import figure

from engine import events as ev
from engine.network import NetworkSpec, Params
from sessions.initial import apply_initial_values, normalize_initial_values
from ui.state import AppState

__all__ = ["MAX_EDGES_PER_LAYER", "MAX_UNITS_DRAWN", "NetworkDiagram", "design_params"]

#: Units drawn per layer; wider layers show their first units only.
MAX_UNITS_DRAWN = 64
#: Weight lines drawn per layer; the largest in size are kept beyond that.
MAX_EDGES_PER_LAYER = 800

_POSITIVE = "#d62728"
_NEGATIVE = "#1f77b4"
_ZERO = "#9e9e9e"
_HIGHLIGHT = "#ffbf00"
_SELECTED = "#000000"

# The initializer's stream of a run's seed (engine.trainer draws with the same).
_INIT_STREAM = 0


def design_params(
    spec: NetworkSpec, initial_values: dict[Any, Any] | None = None, seed: int = 0
) -> Params:
    """Return the starting parameters a run of ``spec`` with ``seed`` would use.

    Drawn with the run's initializer stream, then overridden by the hand-set
    ``initial_values`` (``{(layer, "W" or "b", index): value}``).

    Raises
    ------
    ConfigError
        If a hand-set value does not fit ``spec``.
    """
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_INIT_STREAM,)))
    params = spec.init_params(rng)
    return apply_initial_values(params, normalize_initial_values(initial_values, spec))


@dataclass(frozen=True)
class _Picked:
    """A weight or bias the user clicked: ``(layer, "W" or "b", index)``."""

    layer: int
    name: str
    index: tuple[int, ...]


def _positions(n: int) -> np.ndarray:
    """Return the vertical positions of ``n`` drawn units, centred on 0."""
    return (np.arange(n) - (n - 1) / 2.0)[::-1]


class NetworkDiagram(pn.viewable.Viewer):
    """The network as columns of units and one line per weight.

    A line's colour is the weight's sign (red above 0, blue below, gray at 0)
    and its width its size relative to the largest weight drawn.  A unit's
    fill is its bias's sign.  In ``"session"`` mode the weights are the ones
    the cursor's step used (``state.params()``); in ``"design"`` mode they are
    the starting values of ``state.design`` (drawn with ``seed``, then the
    hand-set ``state.initial_values``).  Clicking a unit selects it
    (``state.layer``, ``state.neuron``); clicking a line or unit also sets
    ``picked`` to the weight or bias clicked, so a tab can offer to edit it.
    """

    state = param.ClassSelector(
        class_=AppState, doc="The shared cursor; the diagram reads and sets it."
    )
    mode = param.Selector(
        default="session",
        objects=["session", "design"],
        doc="'session': weights at the cursor's step; 'design': starting weights.",
    )
    highlight = param.Boolean(
        default=False, doc="Mark the layer of the cursor's current operation."
    )
    seed = param.Integer(
        default=0, doc="Seed of the drawn starting weights in 'design' mode."
    )
    picked = param.Parameter(
        default=None,
        doc="The last weight or bias clicked: (layer, 'W' or 'b', index), or None.",
    )
    height = param.Integer(default=360, doc="Height of the figure in pixels.")

    def __init__(self, **params: Any) -> None:
        if params.get("state") is None:
            params["state"] = AppState()
        super().__init__(**params)
        self._key: Any = None
        self._layout: Any = None
        self._sizes: tuple[int, ...] = ()

        self.nodes = ColumnDataSource(
            {
                "x": [],
                "y": [],
                "column": [],
                "unit": [],
                "label": [],
                "bias": [],
                "fill": [],
                "line": [],
                "line_width": [],
                "size": [],
            }
        )
        self.edges = ColumnDataSource(
            {
                "x0": [],
                "y0": [],
                "x1": [],
                "y1": [],
                "layer": [],
                "i": [],
                "j": [],
                "value": [],
                "sign": [],
                "width": [],
                "label_edge": [],
            }
        )
        self.columns = ColumnDataSource({"x": [], "y": [], "text": []})
        fig = figure(
            height=self.height,
            sizing_mode="stretch_width",
            tools="pan,wheel_zoom,reset,save",
            toolbar_location="right",
            x_axis_type=None,
            y_axis_type=None,
        )
        fig.toolbar.logo = None
        fig.grid.visible = False
        fig.outline_line_color = None
        self.box = BoxAnnotation(
            left=0, right=0, fill_color=_HIGHLIGHT, fill_alpha=0.0, line_alpha=0.0
        )
        fig.add_layout(self.box)
        self.edge_renderer = fig.segment(
            "x0",
            "y0",
            "x1",
            "y1",
            source=self.edges,
            # sign -1, 0, 1 picks blue, gray, red (numbers travel as binary).
            line_color={
                "field": "sign",
                "transform": LinearColorMapper(
                    palette=[_NEGATIVE, _ZERO, _POSITIVE], low=-1.5, high=1.5
                ),
            },
            line_width="width",
            line_alpha=0.7,
            nonselection_line_alpha=0.7,
            selection_line_alpha=1.0,
            hover_line_alpha=1.0,
            hover_line_color=_HIGHLIGHT,
        )
        self.node_renderer = fig.scatter(
            "x",
            "y",
            source=self.nodes,
            size="size",
            fill_color="fill",
            line_color="line",
            line_width="line_width",
            nonselection_fill_alpha=1.0,
            nonselection_line_alpha=1.0,
            hover_line_color=_HIGHLIGHT,
        )
        # Text glyphs draw their strings as plain text (never HTML).
        fig.text(
            "x",
            "y",
            text="text",
            source=self.columns,
            text_align="center",
            text_baseline="top",
            text_font_size="11px",
            text_color="#333333",
        )
        fig.add_tools(
            HoverTool(
                renderers=[self.edge_renderer],
                tooltips=[("weight", "@label_edge"), ("value", "@value{0.0000}")],
                line_policy="interp",
            ),
            HoverTool(
                renderers=[self.node_renderer],
                tooltips=[("unit", "@label"), ("bias", "@bias{0.0000}")],
            ),
            TapTool(renderers=[self.node_renderer, self.edge_renderer]),
        )
        self.figure = fig
        self.nodes.selected.on_change("indices", self._on_nodes_indices)
        self.edges.selected.on_change("indices", self._on_edges_indices)

        self.note = pn.pane.HTML("", sizing_mode="stretch_width")
        self._layout = pn.Column(
            pn.pane.Bokeh(fig, sizing_mode="stretch_width"),
            self.note,
            sizing_mode="stretch_width",
        )

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout

    # -- what is drawn -----------------------------------------------------

    def current_params(self) -> tuple[Params | None, str]:
        """Return the parameters to draw and a problem text ('' if none)."""
        if self.mode == "session":
            if self.state.session is None:
                return None, "Open a session to see its weights."
            params = self.state.params()
            if params is None:
                return None, f"Step {self.state.step} has no forward pass recorded."
            return params, ""
        spec = self.state.design
        if spec is None:
            return None, "Build a network to see its starting weights."
        try:
            return design_params(spec, self.state.initial_values, self.seed), ""
        except Exception as err:  # noqa: BLE001 - shown to the user, never raised
            return None, str(err)

    def _data_key(self) -> Any:
        if self.mode == "session":
            session = self.state.session
            return ("session", id(session), self.state.step, id(self.state.events))
        return (
            "design",
            id(self.state.design),
            id(self.state.data),
            tuple(sorted(map(repr, self.state.initial_values.items()))),
            self.seed,
        )

    # -- refreshers --------------------------------------------------------

    def update(self) -> None:
        """Bring the drawing up to date with the state (cheap if nothing moved)."""
        key = self._data_key()
        if key != self._key:
            self._key = key
            self._update_data()
        self._update_marks()

    def _update_data(self) -> None:
        params, problem = self.current_params()
        if params is None:
            self._sizes = ()
            self._layout = None
            self.nodes.data = {k: [] for k in self.nodes.data}
            self.edges.data = {k: [] for k in self.edges.data}
            self.columns.data = {"x": [], "y": [], "text": []}
            self.note.object = f"<p><em>{html.escape(problem)}</em></p>"
            return
        sizes = (int(params[0]["W"].shape[0]), *(int(p["b"].shape[0]) for p in params))
        self._sizes = sizes
        drawn = [min(n, MAX_UNITS_DRAWN) for n in sizes]
        ys = [_positions(n) for n in drawn]
        notes: list[str] = []
        features = self._feature_names()

        # Units: one column per layer, input first.
        node: dict[str, list[Any]] = {k: [] for k in self.nodes.data}
        for c, n in enumerate(drawn):
            bias = np.full(n, np.nan) if c == 0 else params[c - 1]["b"][:n]
            node["x"].extend([float(c)] * n)
            node["y"].extend(ys[c].tolist())
            node["column"].extend([c] * n)
            node["unit"].extend(range(n))
            where = "input" if c == 0 else f"layer {c}"
            if c == 0 and len(features) == sizes[0]:
                # Hover tooltips show field values as text, never as HTML.
                node["label"].extend(f"input {features[j]}" for j in range(n))
            else:
                node["label"].extend(f"{where}, unit {j + 1}" for j in range(n))
            node["bias"].extend(bias.tolist())
            node["fill"].extend(
                ["#ffffff"] * n if c == 0 else [_tint(v) for v in np.nan_to_num(bias)]
            )
            if n < sizes[c]:
                notes.append(f"{where}: first {n} of {sizes[c]} units drawn")

        # Weights: one line per (i, j), the largest ones when there are many.
        scale = max(
            (float(np.nanmax(np.abs(p["W"]))) for p in params if p["W"].size), default=0
        )
        scale = scale if np.isfinite(scale) and scale > 0 else 1.0
        edge: dict[str, list[Any]] = {k: [] for k in self.edges.data}
        for layer, p in enumerate(params):
            W = np.asarray(p["W"])[: drawn[layer], : drawn[layer + 1]]
            i, j = np.indices(W.shape)
            i, j, w = i.ravel(), j.ravel(), W.ravel()
            if w.size > MAX_EDGES_PER_LAYER:
                keep = np.argsort(-np.abs(np.nan_to_num(w)), kind="stable")
                keep = np.sort(keep[:MAX_EDGES_PER_LAYER])
                i, j, w = i[keep], j[keep], w[keep]
            if w.size < p["W"].size:
                notes.append(
                    f"layer {layer + 1}: {w.size} of {p['W'].size} weights drawn "
                    "(the largest in size)"
                )
            edge["x0"].extend([float(layer)] * w.size)
            edge["x1"].extend([float(layer + 1)] * w.size)
            edge["y0"].extend(ys[layer][i].tolist())
            edge["y1"].extend(ys[layer + 1][j].tolist())
            edge["layer"].extend([layer] * w.size)
            edge["i"].extend(i.tolist())
            edge["j"].extend(j.tolist())
            edge["value"].extend(w.tolist())
            mag = np.nan_to_num(np.abs(w) / scale, nan=0.0, posinf=1.0)
            edge["width"].extend((0.5 + 5.0 * np.minimum(mag, 1.0)).tolist())
        edge["label_edge"] = [
            f"W{la + 1}[{a + 1}, {b + 1}]"
            for la, a, b in zip(edge["layer"], edge["i"], edge["j"], strict=True)
        ]
        # Units shrink so a tall column (up to 64) still fits the figure.
        size = max(4.0, min(16.0, 0.8 * (self.height - 60) / max(drawn)))
        node["size"] = [size] * len(node["x"])
        node["line"] = ["#444444"] * len(node["x"])
        node["line_width"] = [1.0] * len(node["x"])
        edge["value"] = np.asarray(edge["value"], dtype=np.float64)
        edge["sign"] = np.sign(np.nan_to_num(edge["value"]))
        edge["width"] = np.asarray(edge["width"], dtype=np.float64)
        layout = (sizes, tuple(edge["layer"]), tuple(edge["i"]), tuple(edge["j"]))
        if layout == self._layout:
            # Same lines and units as before: send only what a step changes.
            self.edges.data.update({k: edge[k] for k in ("value", "sign", "width")})
            self.nodes.data.update({k: node[k] for k in ("bias", "fill")})
            self._update_note(notes)
            return
        self._layout = layout
        self.edges.data = edge
        self.nodes.data = node
        bottom = -(max(drawn) - 1) / 2.0 - 0.6
        self.columns.data = {
            "x": [float(c) for c in range(len(sizes))],
            "y": [bottom] * len(sizes),
            "text": self._column_labels(sizes),
        }
        self.figure.x_range.start = -0.5
        self.figure.x_range.end = len(sizes) - 0.5
        self._update_note(notes)

    def _update_note(self, notes: list[str]) -> None:
        text = "Red lines: positive weights, blue: negative; wider is larger. "
        text += "Unit fill: sign of its bias."
        if notes:
            text += " Large layers are drawn in part: " + "; ".join(notes) + "."
        note = f"<p><small>{html.escape(text)}</small></p>"
        if note != self.note.object:
            self.note.object = note

    def _feature_names(self) -> tuple[str, ...]:
        """Return the input names of the data drawn for (empty if unknown)."""
        data = self.state.data
        if self.mode == "session" and self.state.session is not None:
            data = self.state.session.dataset
        return () if data is None else tuple(data.feature_names)

    def _column_labels(self, sizes: tuple[int, ...]) -> list[str]:
        """Return "input (4)", "layer 1: 16 relu", ... one per column."""
        spec = self.state.design if self.mode == "design" else None
        if self.mode == "session" and self.state.session is not None:
            spec = self.state.session.spec
        labels = [f"input ({sizes[0]})"]
        for k, n in enumerate(sizes[1:]):
            act = ""
            if spec is not None and k < len(spec.layers):
                act = f" {spec.layers[k].activation}"
            labels.append(f"layer {k + 1}: {n}{act}")
        return labels

    def _update_marks(self) -> None:
        """Outline the selected unit and mark the current operation's layer."""
        if not self._sizes:
            self.box.fill_alpha = 0.0
            return
        column = self.highlight_column()
        if column is None:
            self.box.fill_alpha = 0.0
        else:
            self.box.update(left=column - 0.35, right=column + 0.35, fill_alpha=0.25)
        sel = self.selected_unit()
        columns = self.nodes.data["column"]
        units = self.nodes.data["unit"]
        line = [
            _SELECTED if (c, u) == sel else "#444444"
            for c, u in zip(columns, units, strict=True)
        ]
        if line != list(self.nodes.data["line"]):
            width = [3.0 if color == _SELECTED else 1.0 for color in line]
            self.nodes.patch(
                {
                    "line": [(slice(0, len(line)), line)],
                    "line_width": [(slice(0, len(width)), width)],
                }
            )

    def highlight_column(self) -> int | None:
        """Return the column (0 = input) of the current operation, or None."""
        if not self.highlight or self.mode != "session":
            return None
        event = self.state.event
        if event is None:
            return None
        if isinstance(event, ev.LossComputed) or (
            isinstance(event, ev.GradientComputed) and event.layer is None
        ):
            return len(self._sizes) - 1
        if event.layer is None:
            return None
        return int(event.layer) + 1

    def selected_unit(self) -> tuple[int, int]:
        """Return the (column, unit) of the selected unit as drawn."""
        return self.state.layer + 1, self.state.neuron

    # -- clicks --------------------------------------------------------------

    def tap_node(self, row: int) -> None:
        """Handle a click on the unit drawn at ``row`` of the node source."""
        column = int(self.nodes.data["column"][row])
        unit = int(self.nodes.data["unit"][row])
        if column == 0:
            return
        with param.parameterized.batch_call_watchers(self.state):
            self.state.layer = column - 1
            self.state.neuron = unit
        self.picked = (column - 1, "b", (unit,))
        self._update_marks()

    def tap_edge(self, row: int) -> None:
        """Handle a click on the weight line drawn at ``row`` of the edge source."""
        layer = int(self.edges.data["layer"][row])
        i = int(self.edges.data["i"][row])
        j = int(self.edges.data["j"][row])
        self.picked = (layer, "W", (i, j))

    def _on_nodes_indices(self, attr: str, old: Any, new: list[int]) -> None:
        if new:
            self.tap_node(new[0])
            # Forget the selection, so a second click on the same unit counts.
            self.nodes.selected.indices = []

    def _on_edges_indices(self, attr: str, old: Any, new: list[int]) -> None:
        if new:
            self.tap_edge(new[0])
            self.edges.selected.indices = []


def _tint(value: float) -> str:
    """Return a light red for a positive bias, light blue for negative, white at 0."""
    if value > 0:
        return "#f4a5a5"
    if value < 0:
        return "#a9c8e8"
    return "#ffffff"
