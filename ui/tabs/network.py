"""Tab 1: build a network, or see the open session's network."""

from __future__ import annotations

import html
from typing import Any

import panel as pn
import param

from engine.activations import ACTIVATIONS
from engine.config import TrainingConfig
from engine.data import Dataset
from engine.errors import ConfigError
from engine.initializers import INITIALIZERS
from engine.network import LayerSpec, NetworkSpec
from engine.trainer import _check_fit
from sessions.datasets import TASK_DEFAULTS
from sessions.initial import normalize_initial_values
from ui.diagram import NetworkDiagram
from ui.tabs.base import Tab

__all__ = ["TEMPLATES", "NetworkTab", "fit_design", "parameter_rows"]

_CSS = """
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 2px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.gn-error { color: #a00; font-weight: 600; }
.gn-notice { color: #8a5a00; }
.gn-ok { color: #060; }
"""
"""Styles of the tab's HTML panes (each pane has its own shadow root)."""

#: Hidden layers and output activation of each template; the output width
#: comes from the dataset (1 for binary when no dataset is chosen yet).
TEMPLATES: dict[str, dict[str, Any]] = {
    "binary classification": {
        "task": "binary",
        "hidden": ((8, "tanh"), (8, "tanh")),
    },
    "multi-class classification": {
        "task": "multiclass",
        "hidden": ((16, "relu"),),
    },
    "regression": {
        "task": "regression",
        "hidden": ((16, "tanh"),),
    },
}

_DEFAULT_INIT = "default"
_NO_TEMPLATE = "(choose a template)"


def parameter_rows(spec: NetworkSpec) -> list[tuple[str, int, int, int]]:
    """Return ``(layer label, n_in, n_out, n_in * n_out + n_out)`` per layer."""
    sizes = spec.sizes
    last = len(spec.layers) - 1
    return [
        (
            "output layer" if k == last else f"hidden layer {k + 1}",
            sizes[k],
            sizes[k + 1],
            sizes[k] * sizes[k + 1] + sizes[k + 1],
        )
        for k in range(len(spec.layers))
    ]


def fit_design(spec: NetworkSpec, data: Dataset) -> tuple[NetworkSpec, str]:
    """Return ``spec`` made to fit ``data``, and what was changed ('' if nothing).

    A network fits when it takes the data's features as inputs, has the data's
    output count, its output activation works with the task's loss and is not
    the output of another task's template (softmax on a binary target, sigmoid
    on a regression target, ...).  Otherwise the inputs become the data's
    features and the output layer gets the data's output count and the task
    template's activation; the hidden layers are kept.
    """
    activation, loss = TASK_DEFAULTS[data.task]
    out = spec.layers[-1]
    others = {a for task, (a, _) in TASK_DEFAULTS.items() if task != data.task}
    fits = (
        spec.n_in == data.n_features
        and out.n_out == data.n_outputs
        and (out.activation == activation or out.activation not in others)
    )
    if fits:
        try:
            _check_fit(spec, TrainingConfig(loss=loss), data)
        except ConfigError:
            fits = False
    if fits:
        return spec, ""
    output = LayerSpec(
        data.n_outputs,
        activation,
        initializer=out.initializer,
        init_scale=out.init_scale,
    )
    new = NetworkSpec(data.n_features, (*spec.layers[:-1], output))
    old = f"{spec.n_in} inputs, output {out.n_out} {out.activation} unit(s)"
    now = f"{new.n_in} inputs, output {output.n_out} {activation} unit(s)"
    note = (
        f"The network was changed to fit the dataset {data.name} ({data.task}, "
        f"{data.n_features} features, {data.n_outputs} output(s)): {old} -> {now}; "
        f"the hidden layers are kept. Tab 5 trains it with the {loss} loss."
    )
    return new, note


def _parameter_table(spec: NetworkSpec) -> str:
    rows = "".join(
        f"<tr><td>{label}</td><td>{n_in} × {n_out} + {n_out}</td><td>{count}</td></tr>"
        for label, n_in, n_out, count in parameter_rows(spec)
    )
    return (
        "<table><tr><th>layer</th><th>n_in × n_out + n_out</th>"
        f"<th>parameters</th></tr>{rows}<tr><th>total</th><th></th>"
        f"<th>{spec.n_params}</th></tr></table>"
    )


def _architecture_table(spec: NetworkSpec, data: Dataset | None) -> str:
    names = "" if data is None else ", ".join(data.feature_names[:8])
    if data is not None and data.n_features > 8:
        names += f", … ({data.n_features} in all)"
    rows = [
        f"<tr><td>input</td><td>{spec.n_in}</td><td colspan='3'>"
        f"{html.escape(names)}</td><td>0</td></tr>"
    ]
    for (label, _, _, count), layer in zip(
        parameter_rows(spec), spec.layers, strict=True
    ):
        rows.append(
            f"<tr><td>{label}</td><td>{layer.n_out}</td>"
            f"<td>{html.escape(layer.activation)}</td>"
            f"<td>{html.escape(layer.initializer_name)}</td>"
            f"<td>{layer.dropout:g}</td><td>{count}</td></tr>"
        )
    return (
        "<table><tr><th>layer</th><th>units</th><th>activation</th>"
        "<th>initializer</th><th>dropout</th><th>parameters</th></tr>"
        + "".join(rows)
        + f"<tr><th>total</th><th colspan='4'></th><th>{spec.n_params}</th></tr>"
        "</table>"
    )


def _key_label(key: tuple[int, str, tuple[int, ...]]) -> str:
    layer, name, index = key
    where = ", ".join(str(i + 1) for i in index)
    return f"{name}{layer + 1}[{where}]"


class _LayerRow:
    """The widgets of one layer in the builder."""

    def __init__(self, layer: LayerSpec, on_change: Any, on_remove: Any) -> None:
        self.units = pn.widgets.IntInput(
            label="units", value=int(layer.n_out), start=0, width=90
        )
        self.activation = pn.widgets.Select(
            label="activation",
            options=list(ACTIVATIONS),
            value=layer.activation if layer.activation in ACTIVATIONS else "identity",
            width=130,
        )
        self.initializer = pn.widgets.Select(
            label="initializer",
            options=[_DEFAULT_INIT, *INITIALIZERS],
            value=layer.initializer or _DEFAULT_INIT,
            width=150,
        )
        self.remove = pn.widgets.Button(label="Remove", width=80, margin=(24, 5, 5, 5))
        self.label = pn.pane.Str("", width=110, margin=(30, 5, 5, 5))
        for w in (self.units, self.activation, self.initializer):
            w.param.watch(on_change, "value")
        self.remove.on_click(lambda _: on_remove(self))
        self.row = pn.Row(
            self.label, self.units, self.activation, self.initializer, self.remove
        )

    def spec(self) -> LayerSpec:
        """Return the layer the widgets describe (units may be invalid)."""
        init = self.initializer.value
        units = self.units.value
        return LayerSpec(
            n_out=0 if units is None else int(units),
            activation=self.activation.value,
            initializer=None if init == _DEFAULT_INIT else init,
        )


class NetworkTab(Tab):
    """Build the network of the next run, or see the open session's network."""

    title = "Network"
    index = 0
    help = (
        "Build a network: add layers, set units, activation and initializer, or "
        "start from a template; click a weight or unit in the lower diagram to set "
        "its starting value by hand. An open session's network is shown above, "
        "with its weights at the cursor's step."
    )
    watches = ("session", "events", "op", "design", "data", "initial_values")

    design_error = param.String(
        default="", doc="Why the builder's network is impossible ('' when it is fine)."
    )

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self._rows: list[_LayerRow] = []
        self._loading = False
        self._touched = False
        self._notices: list[str] = []
        self._template_note = ""
        self._fit_note = ""
        self._session_key: Any = None
        self._builder_key: Any = None

        text = {"sizing_mode": "stretch_width", "stylesheets": [_CSS]}
        self.help_pane = pn.pane.HTML(f"<p><i>{html.escape(self.help)}</i></p>", **text)

        # The open session's network.
        self.session_title = pn.pane.HTML("", **text)
        self.architecture = pn.pane.HTML("", **text)
        self.session_diagram = NetworkDiagram(
            state=self.state, mode="session", highlight=True
        )
        self.edit_button = pn.widgets.Button(
            label="Edit as new network", color="primary", width=180
        )
        self.edit_button.on_click(self._on_edit_button_click)
        self.session_view = pn.Column(
            self.session_title,
            self.architecture,
            self.session_diagram,
            self.edit_button,
            sizing_mode="stretch_width",
            visible=False,
        )

        # The builder.
        self.template = pn.widgets.Select(
            label="Template", options=[_NO_TEMPLATE, *TEMPLATES], width=230
        )
        self.template.param.watch(self._on_template_value, "value")
        self.n_in = pn.widgets.IntInput(label="Inputs", value=2, start=1, width=90)
        self.n_in.param.watch(self._on_layer_value, "value")
        self.input_note = pn.pane.HTML("", **text)
        self.add_button = pn.widgets.Button(label="Add hidden layer", width=150)
        self.add_button.on_click(self._on_add_button_click)
        self.layer_list = pn.Column(sizing_mode="stretch_width")
        self.messages = pn.pane.HTML("", **text)
        self.counts = pn.pane.HTML("", **text)
        self.design_diagram = NetworkDiagram(state=self.state, mode="design")
        self.design_diagram.param.watch(self._on_diagram_picked, "picked")

        # Hand-set starting values.
        self.picked_label = pn.pane.HTML(
            "<p>Click a weight (line) or a unit (its bias) in the diagram above to "
            "set its starting value. The diagram shows the starting weights a run "
            "with seed 0 draws; another seed (tab 5) draws others, but values set "
            "here by hand are always used.</p>",
            **text,
        )
        self.value_input = pn.widgets.FloatInput(
            label="Starting value", value=0.0, step=0.1, width=140, disabled=True
        )
        self.set_button = pn.widgets.Button(
            label="Set value", width=110, disabled=True, margin=(24, 5, 5, 5)
        )
        self.set_button.on_click(self._on_set_button_click)
        self.clear_button = pn.widgets.Button(
            label="Clear hand-set values", width=180, margin=(24, 5, 5, 5)
        )
        self.clear_button.on_click(self._on_clear_button_click)
        self.values_list = pn.pane.HTML("", **text)
        self._picked: tuple[int, str, tuple[int, ...]] | None = None

        self._layout = pn.Column(
            self.help_pane,
            self.session_view,
            pn.pane.HTML("<h3>Network for the next run</h3>", **text),
            pn.Row(self.template, self.n_in, self.input_note),
            self.layer_list,
            self.add_button,
            self.messages,
            self.counts,
            self.design_diagram,
            self.picked_label,
            pn.Row(self.value_input, self.set_button, self.clear_button),
            self.values_list,
            sizing_mode="stretch_width",
        )
        self.state.param.watch(self._on_state_session, "session")
        self.state.param.watch(self._on_state_data, "data")
        self._load_rows(self.state.design)
        if self.state.session is not None:
            self._on_state_session()

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout

    # -- helpers -------------------------------------------------------------

    @property
    def data(self) -> Dataset | None:
        """Return the dataset the next run uses (tab 2's, else the session's)."""
        if self.state.data is not None:
            return self.state.data
        return None if self.state.session is None else self.state.session.dataset

    def _load_rows(self, spec: NetworkSpec | None) -> None:
        """Fill the builder with ``spec`` (a small default network for None)."""
        if spec is None:
            spec = NetworkSpec(2, (LayerSpec(4, "tanh"), LayerSpec(1, "sigmoid")))
        self._loading = True
        try:
            self.n_in.value = int(spec.n_in)
            self._rows = [
                _LayerRow(layer, self._on_layer_value, self._on_row_remove)
                for layer in spec.layers
            ]
            self._relabel()
        finally:
            self._loading = False

    def _relabel(self) -> None:
        last = len(self._rows) - 1
        for k, row in enumerate(self._rows):
            row.label.object = "output layer" if k == last else f"hidden layer {k + 1}"
            row.remove.disabled = k == last
        self.layer_list.objects = [row.row for row in self._rows]

    def builder_spec(self) -> NetworkSpec:
        """Return the network the builder describes.

        Raises
        ------
        ConfigError
            For an impossible network, or one that does not fit the dataset.
        """
        data = self.data
        n_in = data.n_features if data is not None else self.n_in.value
        if n_in is None:
            raise ConfigError("The number of inputs is empty; enter a whole number.")
        spec = NetworkSpec(int(n_in), tuple(row.spec() for row in self._rows))
        if data is not None:
            loss = TASK_DEFAULTS[data.task][1]
            self._notices = _check_fit(spec, TrainingConfig(loss=loss), data)
        else:
            self._notices = []
        return spec

    def apply_builder(self, write: bool = True) -> NetworkSpec | None:
        """Check the builder's network; write it to ``state.design`` if possible.

        Returns the network, or None after showing why it is impossible (the
        last possible network stays in ``state.design``).  With ``write`` False
        the network is only checked.
        """
        try:
            spec = self.builder_spec()
        except ConfigError as err:
            self.design_error = str(err)
            self._update_messages()
            return None
        self.design_error = ""
        if write and spec != self.state.design:
            self._loading = True
            try:
                self.state.design = spec
                self._prune_initial_values(spec)
            finally:
                self._loading = False
        self._update_messages()
        return spec

    def _prune_initial_values(self, spec: NetworkSpec) -> None:
        kept = {}
        for key, value in self.state.initial_values.items():
            try:
                normalize_initial_values({key: value}, spec)
            except ConfigError:
                continue
            kept[key] = value
        if len(kept) != len(self.state.initial_values):
            self.state.initial_values = kept

    # -- handlers ------------------------------------------------------------

    def _on_state_session(self, *_: Any) -> None:
        session = self.state.session
        # The starting network is replaced until the user has built something.
        if session is not None and (self.state.design is None or not self._touched):
            self.state.design = session.spec
            self._fit_note = ""
        if session is not None and (
            self.state.data is None
            or self.state.data_source.get("kind", "session") == "session"
        ):
            self.state.data_source = {"kind": "session", "name": session.dataset.name}
            self.state.data = session.dataset

    def _on_state_data(self, *_: Any) -> None:
        """Make the next run's network fit a newly chosen dataset (tab 2)."""
        data, spec = self.state.data, self.state.design
        if data is None or spec is None:
            return
        session = self.state.session
        if session is not None and data is session.dataset and spec == session.spec:
            self._fit_note = ""
            return
        new, note = fit_design(spec, data)
        if not note:
            return
        # Not marked as loading: the builder's rows must be reloaded from it.
        self._fit_note = note
        self.state.design = new
        self._prune_initial_values(new)

    def _on_layer_value(self, *_: Any) -> None:
        if not self._loading:
            self._touched = True
            self._fit_note = ""
            self.apply_builder()
            self.refresh()

    def _on_row_remove(self, row: _LayerRow) -> None:
        if len(self._rows) > 1 and row in self._rows[:-1]:
            self._rows.remove(row)
            self._relabel()
            self._on_layer_value()

    def _on_add_button_click(self, *_: Any) -> None:
        width = self._rows[-2].units.value if len(self._rows) > 1 else 8
        layer = LayerSpec(int(width or 8), "relu")
        row = _LayerRow(layer, self._on_layer_value, self._on_row_remove)
        self._rows.insert(len(self._rows) - 1, row)
        self._relabel()
        self._on_layer_value()

    def _on_template_value(self, event: Any) -> None:
        if event.new in TEMPLATES:
            self.use_template(event.new)

    def use_template(self, name: str) -> None:
        """Fill the builder from the template ``name`` (a key of TEMPLATES)."""
        template = TEMPLATES[name]
        task = template["task"]
        data = self.data
        if data is not None and data.task == task:
            n_out = data.n_outputs
        else:
            n_out = {"binary": 1, "multiclass": 3, "regression": 1}[task]
        output = TASK_DEFAULTS[task][0]
        layers = [LayerSpec(n, act) for n, act in template["hidden"]]
        layers.append(LayerSpec(n_out, output))
        self._load_rows(
            NetworkSpec(data.n_features if data else self.n_in.value or 2, layers)
        )
        self._template_note = (
            f"Last template used: '{name}', output {output} with {n_out} "
            f"unit(s); train it with the {TASK_DEFAULTS[task][1]} loss (tab 5)."
        )
        self._on_layer_value()

    def _on_edit_button_click(self, *_: Any) -> None:
        self.edit_session_network()

    def edit_session_network(self) -> None:
        """Copy the open session's network into the builder."""
        session = self.state.session
        if session is None:
            return
        spec = session.spec
        self._load_rows(NetworkSpec(spec.n_in, spec.layers))
        if self.state.data is None:
            self.state.data = session.dataset
        self._on_layer_value()

    def _on_diagram_picked(self, event: Any) -> None:
        picked = event.new
        if picked is None:
            return
        self._picked = picked
        current = self.state.initial_values.get(picked)
        if current is None:
            current = self._drawn_value(picked)
        self.value_input.param.update(value=float(current), disabled=False)
        self.set_button.disabled = False
        what = "weight" if picked[1] == "W" else "bias"
        self.picked_label.object = (
            f"<p>Starting value of {what} <b>{_key_label(picked)}</b> "
            f"(drawn: {self._drawn_value(picked):.4g}):</p>"
        )

    def _drawn_value(self, key: tuple[int, str, tuple[int, ...]]) -> float:
        params, _ = self.design_diagram.current_params()
        if params is None:
            return 0.0
        layer, name, index = key
        return float(params[layer][name][index])

    def _on_set_button_click(self, *_: Any) -> None:
        if self._picked is not None and self.value_input.value is not None:
            self.set_initial_value(self._picked, float(self.value_input.value))

    def set_initial_value(
        self, key: tuple[int, str, tuple[int, ...]], value: float
    ) -> bool:
        """Set one starting value by hand; False (with a message) if impossible."""
        spec = self.state.design
        if spec is None:
            self.messages.object = "<p class='gn-error'>Build a network first.</p>"
            return False
        try:
            normalize_initial_values({key: value}, spec)
        except ConfigError as err:
            self.messages.object = f"<p class='gn-error'>{html.escape(str(err))}</p>"
            return False
        self.state.initial_values = {**self.state.initial_values, key: value}
        return True

    def _on_clear_button_click(self, *_: Any) -> None:
        self.state.initial_values = {}

    # -- refreshers ----------------------------------------------------------

    def _update(self) -> None:
        self._update_session()
        self._update_builder()
        self.design_diagram.update()
        self._update_values_list()

    def _update_session(self) -> None:
        session = self.state.session
        self.session_view.visible = session is not None
        if session is None:
            return
        key = id(session)
        if key != self._session_key:
            self._session_key = key
            meta = session.meta or {}
            name = str(meta.get("title") or session.dataset.name)
            self.session_title.object = (
                f"<h3>Network of the open session: {html.escape(name)}</h3>"
            )
            self.architecture.object = _architecture_table(
                session.spec, session.dataset
            )
        self.session_diagram.update()

    def _update_builder(self) -> None:
        data = self.data
        key = (id(self.state.design), id(data))
        if key == self._builder_key:
            return
        self._builder_key = key
        if not self._loading and self.state.design is not None:
            if self.state.design != self._current_or_none():
                self._load_rows(self.state.design)
        if data is not None:
            self._loading = True
            try:
                self.n_in.param.update(value=data.n_features, disabled=True)
            finally:
                self._loading = False
            self.input_note.object = (
                f"<p>Inputs: {data.n_features} features of "
                f"<b>{html.escape(data.name)}</b> ({html.escape(data.task)}, "
                f"{data.n_outputs} output(s)). Change the dataset on tab 2.</p>"
            )
        else:
            self.n_in.disabled = False
            self.input_note.object = "<p>No dataset chosen yet (tab 2).</p>"
        self.apply_builder()
        self._builder_key = (id(self.state.design), id(data))

    def _current_or_none(self) -> NetworkSpec | None:
        try:
            return self.builder_spec()
        except ConfigError:
            return None

    def _update_messages(self) -> None:
        parts = []
        if self.design_error:
            parts.append(
                f"<p class='gn-error'>Impossible network: "
                f"{html.escape(self.design_error)}</p>"
            )
            if self.state.design is not None:
                parts.append("<p>The last possible network is kept for the run.</p>")
        else:
            parts.append("<p class='gn-ok'>The network is ready for the next run.</p>")
            parts.extend(
                f"<p class='gn-notice'>{html.escape(n)}</p>" for n in self._notices
            )
        if self._fit_note:
            parts.append(f"<p class='gn-notice'>{html.escape(self._fit_note)}</p>")
        if self._template_note:
            parts.append(f"<p>{html.escape(self._template_note)}</p>")
        self.messages.object = "".join(parts)
        spec = self.state.design
        self.counts.object = (
            "" if spec is None or self.design_error else _parameter_table(spec)
        )

    def _update_values_list(self) -> None:
        values = self.state.initial_values
        if not values:
            self.values_list.object = "<p>No starting values set by hand.</p>"
            self.clear_button.disabled = True
            return
        self.clear_button.disabled = False
        items = "".join(
            f"<li>{_key_label(key)} = {value:g}</li>"
            for key, value in sorted(values.items(), key=lambda kv: repr(kv[0]))
        )
        self.values_list.object = f"<p>Set by hand:</p><ul>{items}</ul>"
