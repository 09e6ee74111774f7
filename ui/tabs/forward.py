"""Tab 3: follow one sample through every layer at the cursor step."""

from __future__ import annotations

import base64
import html
import struct
import zlib
from typing import Any

import numpy as np
import panel as pn

from engine import events as ev
from ui import explain
from ui.diagram import NetworkDiagram
from ui.export import ArrayDownload
from ui.state import describe_operation
from ui.tabs.base import Tab

__all__ = ["ForwardTab", "LayerValues", "heat_cells", "heat_grid", "heat_image"]

MAX_NUMBERS = 240
"""Largest weight matrix (in entries) whose numbers are printed in a table;
larger ones are drawn as an image, one colored square per weight."""
MAX_VECTOR_NUMBERS = 32
"""Longest vector whose numbers are printed in its cells."""
FORWARD_KINDS = (
    "batch_sampled",
    "weighted_sum_computed",
    "activation_computed",
    "dropout_applied",
)
"""The events whose arrays the tab offers for download."""

_CSS = """
table { border-collapse: collapse; font-size: 12px; margin: 2px 0; }
td, th { border: 1px solid #ddd; padding: 1px 4px; text-align: right; }
th { background: #f4f4f4; font-weight: 600; }
td.gn-label { text-align: left; background: #fafafa; font-weight: 600; }
.gn-now { outline: 3px solid #f0a500; background: #fff4d6; }
.gn-sel { outline: 2px solid #222; }
pre { white-space: pre-wrap; font-size: 13px; background: #f8f8f8;
  padding: 6px; border: 1px solid #e5e5e5; }
h4 { margin: 8px 0 2px 0; }
"""
"""Styles of the tab's HTML panes (each pane has its own shadow root)."""


class LayerValues:
    """The recorded forward values of one layer, for the whole batch.

    Gathered from the step's ``WeightedSumComputed``, ``ActivationComputed``
    and ``DropoutApplied`` events; ``a`` is the layer's output (after dropout
    when there is dropout).
    """

    def __init__(
        self,
        weighted: ev.WeightedSumComputed,
        activated: ev.ActivationComputed | None,
        dropped: ev.DropoutApplied | None,
    ) -> None:
        self.layer = int(weighted.layer or 0)
        self.weighted = weighted
        self.activated = activated
        self.dropped = dropped

    @property
    def n_in(self) -> int:
        """Return the number of inputs of the layer."""
        return int(self.weighted.W.shape[0])

    @property
    def n_out(self) -> int:
        """Return the number of units of the layer."""
        return int(self.weighted.W.shape[1])

    @property
    def a(self) -> np.ndarray | None:
        """Return the layer's output for the batch (after dropout)."""
        if self.dropped is not None:
            return self.dropped.a
        return None if self.activated is None else self.activated.a


def gather_layers(events: list[ev.Event]) -> list[LayerValues]:
    """Return the forward values of each layer recorded in one step's events."""
    sums: dict[int, ev.WeightedSumComputed] = {}
    acts: dict[int, ev.ActivationComputed] = {}
    drops: dict[int, ev.DropoutApplied] = {}
    for e in events:
        if isinstance(e, ev.WeightedSumComputed):
            sums[int(e.layer or 0)] = e
        elif isinstance(e, ev.ActivationComputed):
            acts[int(e.layer or 0)] = e
        elif isinstance(e, ev.DropoutApplied):
            drops[int(e.layer or 0)] = e
    return [LayerValues(sums[i], acts.get(i), drops.get(i)) for i in sorted(sums)]


def _color(value: float, scale: float) -> str:
    """Return a diverging background color: blue below 0, red above, white at 0."""
    if not np.isfinite(value) or scale <= 0:
        return "#ffffff" if np.isfinite(value) else "#bbbbbb"
    t = max(-1.0, min(1.0, value / scale))
    fade = int(255 - 175 * abs(t))
    return f"rgb(255,{fade},{fade})" if t > 0 else f"rgb({fade},{fade},255)"


def heat_cells(
    values: np.ndarray,
    *,
    numbers: bool,
    selected: int | None = None,
    highlight: bool = False,
    scale: float | None = None,
) -> str:
    """Return ``<td>`` cells for one row of values, colored by value."""
    values = np.asarray(values, dtype=np.float64)
    if scale is None:
        finite = values[np.isfinite(values)]
        scale = float(np.abs(finite).max()) if finite.size else 0.0
    cells = []
    for j, v in enumerate(values):
        classes = []
        if selected == j:
            classes.append("gn-sel")
        if highlight:
            classes.append("gn-now")
        cls = f' class="{" ".join(classes)}"' if classes else ""
        text = explain.fmt(v, 3) if numbers else ""
        cells.append(
            f'<td{cls} style="background:{_color(v, scale)}" '
            f'title="{j + 1}: {explain.fmt(v, 6)}">{text}</td>'
        )
    return "".join(cells)


def heat_grid(
    W: np.ndarray, b: np.ndarray, *, selected: int | None, highlight: bool
) -> str:
    """Return ``W`` (n_in rows, n_out columns) and ``b`` below, colored by value.

    Small matrices become a table with every number; larger ones an image
    (one square per weight) so a 64 x 64 layer stays a few kilobytes.
    """
    if W.size > MAX_NUMBERS:
        return heat_image(np.vstack([W, b[None, :]]), selected=selected)
    finite = W[np.isfinite(W)]
    scale = float(np.abs(finite).max()) if finite.size else 0.0
    rows = [
        f'<tr><td class="gn-label">W[{i + 1}, ·]</td>'
        + heat_cells(
            W[i], numbers=True, selected=selected, highlight=highlight, scale=scale
        )
        + "</tr>"
        for i in range(W.shape[0])
    ]
    rows.append(
        '<tr><td class="gn-label">b</td>'
        + heat_cells(b, numbers=True, selected=selected, highlight=highlight)
        + "</tr>"
    )
    return f"<table>{''.join(rows)}</table>"


def heat_image(M: np.ndarray, *, selected: int | None) -> str:
    """Return an ``<img>`` of ``M`` (rows W[0..n_in-1] then b), one square per entry.

    Blue below 0, red above, white at 0, gray where not finite; the selected
    column is framed in black.
    """
    n_rows, n_cols = M.shape
    px = int(max(2, min(10, 480 // max(n_rows, n_cols))))
    finite = np.isfinite(M)
    scale = float(np.abs(M[finite]).max()) if finite.any() else 0.0
    t = np.clip(np.where(finite, M, 0.0) / (scale or 1.0), -1.0, 1.0)
    fade = (255 - 175 * np.abs(t)).astype(np.uint8)
    rgb = np.empty((n_rows, n_cols, 3), dtype=np.uint8)
    rgb[..., 0] = np.where(t > 0, 255, fade)
    rgb[..., 1] = fade
    rgb[..., 2] = np.where(t > 0, fade, 255)
    rgb[~finite] = 187
    img = np.repeat(np.repeat(rgb, px, axis=0), px, axis=1)
    # The bias row is set off by a gray line.
    img[(n_rows - 1) * px, :] = 128
    if selected is not None and 0 <= selected < n_cols:
        left, right = selected * px, (selected + 1) * px - 1
        img[:, left] = 0
        img[:, right] = 0
    data = base64.b64encode(_png(img)).decode("ascii")
    return (
        f'<img src="data:image/png;base64,{data}" width="{n_cols * px}" '
        f'height="{n_rows * px}" style="image-rendering: pixelated" '
        f'alt="W and b: {n_rows - 1} x {n_cols}, last row b">'
        f"<p>{n_rows - 1} × {n_cols} weights, bias in the last row; colors from "
        f"{explain.fmt(-scale)} (blue) to {explain.fmt(scale)} (red); the "
        "selected unit's column is framed.</p>"
    )


def _png(rgb: np.ndarray) -> bytes:
    """Encode an RGB array of shape (height, width, 3), uint8, as a PNG file."""
    height, width, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(height))

    def chunk(tag: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(tag + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )


class ForwardTab(Tab):
    """Follow one sample of the batch through every layer at the cursor step.

    Shows the sample (its training-set row, features and target), each
    layer's input ``a_prev``, ``W``, ``b``, ``z`` and ``a`` for that sample,
    the cursor's operation highlighted, and the selected unit's weighted sum
    and activation written out with the recorded numbers.
    """

    title = "Forward propagation"
    index = 2
    help = (
        "Pick a sample of the step's batch and a unit (layer and unit number): "
        "its weighted sum z and activation a are written out with the recorded "
        "numbers. The cursor's operation is outlined in orange."
    )
    watches = ("session", "events", "op", "sample", "layer", "neuron")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._layers: list[LayerValues] = []

        # Controls, linked to the shared cursor.
        self.sample_input = pn.widgets.IntInput(
            label="Sample of the batch", value=0, start=0, end=0, width=160
        )
        # Wide enough for "layer 12 (sigmoid, 128 units)" whole.
        self.layer_select = pn.widgets.Select(
            label="Layer", options={"layer 1": 0}, value=0, width=280
        )
        # Units are counted from 1 on screen; state.neuron stays 0-based.
        self.neuron_input = pn.widgets.IntInput(
            label="Unit of the layer", value=1, start=1, end=1, width=160
        )
        self.sample_input.param.watch(self._on_sample_input_value, "value")
        self.layer_select.param.watch(self._on_layer_select_value, "value")
        self.neuron_input.param.watch(self._on_neuron_input_value, "value")

        # Views, filled by _update.
        text = {"sizing_mode": "stretch_width", "stylesheets": [_CSS]}
        self.help_pane = pn.pane.HTML(f"<p><i>{html.escape(self.help)}</i></p>", **text)
        self.status = pn.pane.HTML("", **text)
        self.sample_pane = pn.pane.HTML("", **text)
        self.layers_pane = pn.pane.HTML("", **text)
        self.expansion_pane = pn.pane.HTML("", **text)
        self.values_pane = pn.pane.HTML("", **text)
        self.diagram = NetworkDiagram(state=self.state, mode="session", highlight=True)
        # Any forward array of the step (whole batch), as a .npy file.
        self.array_download = ArrayDownload(state=self.state, kinds=list(FORWARD_KINDS))
        self._layout = pn.Column(
            self.help_pane,
            self.status,
            pn.Row(self.sample_input, self.layer_select, self.neuron_input),
            self.array_download,
            self.sample_pane,
            self.diagram,
            self.layers_pane,
            self.expansion_pane,
            self.values_pane,
            sizing_mode="stretch_width",
        )

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout

    # -- handlers ----------------------------------------------------------

    def _on_sample_input_value(self, event: Any) -> None:
        if event.new is not None and event.new != self.state.sample:
            self.state.sample = max(int(event.new), 0)

    def _on_layer_select_value(self, event: Any) -> None:
        if event.new is not None and event.new != self.state.layer:
            self.state.layer = int(event.new)

    def _on_neuron_input_value(self, event: Any) -> None:
        if event.new is not None and event.new - 1 != self.state.neuron:
            self.state.neuron = max(int(event.new) - 1, 0)

    # -- refreshers --------------------------------------------------------

    def selection(self) -> tuple[int, int, int]:
        """Return the (sample, layer, unit) shown, clipped to the step's sizes."""
        layers = self._layers
        if not layers:
            return 0, 0, 0
        n = layers[0].weighted.z.shape[0]
        sample = min(self.state.sample, n - 1)
        layer = min(self.state.layer, len(layers) - 1)
        unit = min(self.state.neuron, layers[layer].n_out - 1)
        return sample, layer, unit

    def _update(self) -> None:
        self._layers = gather_layers(self.state.events)
        self.array_download.update()
        if self.state.session is None or not self._layers:
            self._update_empty()
            return
        sample, layer, unit = self.selection()
        self._update_controls(sample, layer, unit)
        self._update_status()
        self._update_sample(sample)
        self._update_layer_list(layer)
        self._update_expansion(sample, layer, unit)
        self._update_values(sample, layer, unit)
        self.diagram.update()

    def _update_empty(self) -> None:
        self.diagram.update()
        text = (
            "Open a session to follow a sample through the network."
            if self.state.session is None
            else f"Step {self.state.step} has no forward pass recorded."
        )
        self.status.object = f"<p>{html.escape(text)}</p>"
        for pane in (
            self.sample_pane,
            self.layers_pane,
            self.expansion_pane,
            self.values_pane,
        ):
            pane.object = ""

    def _update_controls(self, sample: int, layer: int, unit: int) -> None:
        n = self._layers[0].weighted.z.shape[0]
        self.sample_input.param.update(end=n - 1, value=sample)
        spec = self.state.session.spec
        options = {
            f"layer {i + 1} ({spec.layers[i].activation}, {lv.n_out} units)": i
            for i, lv in enumerate(self._layers)
        }
        if self.layer_select.options != options:
            self.layer_select.options = options
        self.layer_select.value = layer
        self.neuron_input.param.update(end=self._layers[layer].n_out, value=unit + 1)

    def _update_status(self) -> None:
        event = self.state.event
        now = "" if event is None else describe_operation(event)
        self.status.object = (
            f"<p><b>Step {self.state.step}</b> (epoch "
            f"{self._layers[0].weighted.epoch + 1}), operation {self.state.op}: "
            f"{html.escape(now)}</p>"
        )

    def _update_sample(self, sample: int) -> None:
        batches = self.state.events_of(ev.BatchSampled)
        data = self.state.session.dataset
        X = self._layers[0].weighted.a_prev
        now = isinstance(self.state.event, ev.BatchSampled)
        row = "?"
        y = None
        if batches:
            row = str(int(batches[0].indices[sample]))
            y = batches[0].y[sample]
        names = list(data.feature_names)
        head = "".join(f"<th>{html.escape(str(n))}</th>" for n in names)
        cells = "".join(f"<td>{explain.fmt(v, 6)}</td>" for v in X[sample])
        target = "" if y is None else html.escape(_describe_target(data, y))
        cls = ' class="gn-now"' if now else ""
        self.sample_pane.object = (
            f"<div{cls}><h4>Sample {sample} of the batch = training row {row}</h4>"
            f"<table><tr>{head}</tr><tr>{cells}</tr></table>"
            f"<p>Target: {target}</p></div>"
        )

    def _update_layer_list(self, layer: int) -> None:
        spec = self.state.session.spec
        event = self.state.event
        rows = [
            "<tr><th>layer</th><th>size</th><th>weighted sum</th>"
            "<th>activation</th><th>dropout</th></tr>"
        ]
        for i, lv in enumerate(self._layers):
            act = spec.layers[i].activation
            now = event is not None and event.layer == i
            cls_z = _now(now and isinstance(event, ev.WeightedSumComputed))
            cls_a = _now(now and isinstance(event, ev.ActivationComputed))
            cls_d = _now(now and isinstance(event, ev.DropoutApplied))
            drop = (
                "none"
                if lv.dropped is None
                else f"keep p = {explain.fmt(lv.dropped.keep_prob)}"
            )
            sel = ' class="gn-sel"' if i == layer else ""
            rows.append(
                f"<tr{sel}><td class='gn-label'>{i + 1}</td>"
                f"<td>{lv.n_in} → {lv.n_out}</td>"
                f"<td{cls_z}>z = a_prev · W + b</td>"
                f"<td{cls_a}>a = {html.escape(act)}(z)</td><td{cls_d}>{drop}</td></tr>"
            )
        self.layers_pane.object = f"<h4>Layers</h4><table>{''.join(rows)}</table>"

    def _update_expansion(self, sample: int, layer: int, unit: int) -> None:
        lv = self._layers[layer]
        w = lv.weighted
        parts = [f"<h4>Layer {layer + 1}, unit {unit + 1}, sample {sample}</h4>"]
        wsum = explain.weighted_sum(
            w.a_prev[sample],
            w.W[:, unit],
            float(w.b[unit]),
            float(w.z[sample, unit]),
            unit=unit + 1,
        )
        parts.append(_pre(wsum))
        parts.append(self._terms_table(lv, sample, unit))
        if lv.activated is not None:
            act = explain.activation(
                lv.activated.activation,
                lv.activated.z[sample],
                lv.activated.a[sample],
                unit,
                label=unit + 1,
            )
            parts.append(_pre(act))
        if lv.dropped is not None:
            d = lv.dropped
            drop = explain.dropout(
                float(d.a_before[sample, unit]),
                bool(d.mask[sample, unit]),
                d.keep_prob,
                float(d.a[sample, unit]),
            )
            parts.append(_pre(drop))
        self.expansion_pane.object = "".join(parts)

    def _terms_table(self, lv: LayerValues, sample: int, unit: int) -> str:
        """Return the table of inputs, weights and products of one unit."""
        w = lv.weighted
        names = self._input_names(lv.layer, lv.n_in)
        x = w.a_prev[sample]
        col = w.W[:, unit]
        rows = ["<tr><th>input</th><th>a_prev</th><th>W</th><th>a_prev × W</th></tr>"]
        for i in range(lv.n_in):
            rows.append(
                f"<tr><td class='gn-label'>{html.escape(names[i])}</td>"
                f"<td>{explain.fmt(x[i], 6)}</td><td>{explain.fmt(col[i], 6)}</td>"
                f"<td>{explain.fmt(x[i] * col[i], 6)}</td></tr>"
            )
        rows.append(
            f"<tr><td class='gn-label'>bias b</td><td></td><td></td>"
            f"<td>{explain.fmt(w.b[unit], 6)}</td></tr>"
            f"<tr><th>z</th><th></th><th></th>"
            f"<th>{explain.fmt(w.z[sample, unit], 6)}</th></tr>"
        )
        table = "".join(rows)
        return f"<details><summary>every term</summary><table>{table}</table></details>"

    def _input_names(self, layer: int, n_in: int) -> list[str]:
        if layer == 0:
            names = list(self.state.session.dataset.feature_names)
            if len(names) == n_in:
                return [str(n) for n in names]
            return [f"x{i + 1}" for i in range(n_in)]
        # Unit i (from 1) of the previous layer, which is layer ``layer``.
        return [f"a{layer}[{i + 1}]" for i in range(n_in)]

    def _update_values(self, sample: int, layer: int, unit: int) -> None:
        event = self.state.event
        blocks = ["<h4>Values of every layer for this sample</h4>"]
        for i, lv in enumerate(self._layers):
            now = event is not None and event.layer == i
            sel = unit if i == layer else None
            w = lv.weighted
            rows = [
                _vector_row("a_prev", w.a_prev[sample]),
                _vector_row(
                    "z",
                    w.z[sample],
                    selected=sel,
                    highlight=now and isinstance(event, ev.WeightedSumComputed),
                ),
            ]
            if lv.activated is not None:
                rows.append(
                    _vector_row(
                        "a = g(z)",
                        lv.activated.a[sample],
                        selected=sel,
                        highlight=now and isinstance(event, ev.ActivationComputed),
                    )
                )
            if lv.dropped is not None:
                rows.append(
                    _vector_row(
                        "a (dropout)",
                        lv.dropped.a[sample],
                        selected=sel,
                        highlight=now and isinstance(event, ev.DropoutApplied),
                    )
                )
            grid = heat_grid(
                w.W,
                w.b,
                selected=sel,
                highlight=now and isinstance(event, ev.WeightedSumComputed),
            )
            blocks.append(
                f"<h4>Layer {i + 1} ({lv.n_in} → {lv.n_out})</h4>"
                f"<table>{''.join(rows)}</table>"
                f"<details{' open' if i == layer else ''}><summary>W and b of layer "
                f"{i + 1}</summary>{grid}</details>"
            )
        self.values_pane.object = "".join(blocks)


def _describe_target(data: Any, y: np.ndarray) -> str:
    """Return the target as text: the label for classification, else the values."""
    values = ", ".join(explain.fmt(v, 6) for v in y)
    if data.task == "multiclass" and data.class_names:
        k = int(np.argmax(y))
        return f"{data.class_names[k]} (class {k}; y = [{values}])"
    if data.task == "binary" and data.class_names:
        k = int(round(float(y[0])))
        if 0 <= k < len(data.class_names):
            return f"{data.class_names[k]} (y = {values})"
    return f"{data.target_name} = {values}"


def _vector_row(
    label: str,
    values: np.ndarray,
    *,
    selected: int | None = None,
    highlight: bool = False,
) -> str:
    numbers = len(values) <= MAX_VECTOR_NUMBERS
    cells = heat_cells(values, numbers=numbers, selected=selected, highlight=highlight)
    return f"<tr><td class='gn-label'>{html.escape(label)}</td>{cells}</tr>"


def _now(flag: bool) -> str:
    return ' class="gn-now"' if flag else ""


def _pre(expansion: explain.Expansion) -> str:
    """Return an expansion as an escaped preformatted block."""
    return f"<pre>{html.escape(str(expansion))}</pre>"
