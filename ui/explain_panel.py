"""Explain a number, and its operands in turn: a tree below the cursor.

"From the cursor" takes the number the cursor points at: the kind of its
operation (a weighted sum, an activation, the loss, a gradient, an update) and
the sample, layer and unit picked on the tabs.  Each operand of an
explanation has a button that explains it below, down to the inputs, the
initial weights and the learning rate (``sessions.provenance``).
"""

from __future__ import annotations

import html
import logging
from typing import Any

import panel as pn
import param

from engine import events as ev
from sessions import SessionError
from sessions.provenance import KINDS, Explanation, Ref, explain
from ui.state import AppState

__all__ = ["ExplainPanel", "ref_at_cursor"]

logger = logging.getLogger(__name__)

MAX_NODES = 40
"""Explanations kept open at once (each adds a few widgets)."""

_GRADIENT_KIND = {"dz": "dz", "dW": "dW", "db": "db", "da_prev": "da", "da": "dz"}


def ref_at_cursor(state: AppState) -> Ref | None:
    """Return the number the cursor points at, or None without one."""
    event = state.event
    if event is None:
        return None
    step, n, j = state.step, state.sample, state.neuron
    layer = event.layer if event.layer is not None else state.layer
    if isinstance(event, ev.WeightedSumComputed):
        return Ref("z", step, layer, (n, j))
    if isinstance(event, ev.ActivationComputed | ev.DropoutApplied):
        return Ref("a", step, layer, (n, j))
    if isinstance(event, ev.LossComputed):
        return Ref("loss", step, None, (n,))
    if isinstance(event, ev.GradientComputed) and event.name in _GRADIENT_KIND:
        kind = _GRADIENT_KIND[event.name]
        if kind == "da":  # da_prev of a layer is the gradient reaching the one before
            return Ref("da", step, layer - 1, (n, j))
        if kind == "dW":
            return Ref("dW", step, layer, (0, j))
        if kind == "db":
            return Ref("db", step, layer, (j,))
        return Ref("dz", step, layer, (n, j))
    if isinstance(event, ev.ParametersUpdated):
        index = (0, j) if event.name == "W" else (j,)
        return Ref(event.name, step + 1, layer, index)
    return Ref("z", step, state.layer, (n, j))


class ExplainPanel(pn.viewable.Viewer):
    """Pick a number (or take the cursor's) and expand how it was computed."""

    state = param.ClassSelector(class_=AppState, doc="The cursor shared by the tabs.")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.kind = pn.widgets.Select(label="Number", options=list(KINDS), width=90)
        self.layer = pn.widgets.IntInput(label="Layer", value=1, start=1, width=80)
        self.entry = pn.widgets.TextInput(
            label="Entry (from 1, e.g. sample, unit)", value="1, 1", width=210
        )
        self.step = pn.widgets.IntInput(label="Step", value=0, start=0, width=100)
        self.cursor_button = pn.widgets.Button(label="From the cursor", width=140)
        self.explain_button = pn.widgets.Button(label="Explain", width=90)
        self.clear_button = pn.widgets.Button(label="Clear", width=70)
        self.follow = pn.widgets.Checkbox(
            label="Follow the cursor (explain whatever you click or pick)", value=True
        )
        self.tree = pn.Column(sizing_mode="stretch_width")
        self.nodes: list[Explanation] = []
        self.cursor_button.on_click(lambda _: self.from_cursor())
        self.explain_button.on_click(lambda _: self.explain_form())
        self.clear_button.on_click(lambda _: self.clear())
        self.state.param.watch(lambda *_: self.clear(), "session")
        self.state.param.watch(
            self._on_cursor, ["step", "op", "sample", "layer", "neuron"]
        )
        self._layout = pn.Card(
            pn.pane.HTML(
                "<p>Explain any recorded number: its formula with the actual "
                "operands, each of which you can explain in turn, back to the "
                "inputs, the initial weights and the learning rate.</p>",
                sizing_mode="stretch_width",
            ),
            pn.Row(
                self.kind,
                self.step,
                self.layer,
                self.entry,
                self.cursor_button,
                self.explain_button,
                self.clear_button,
            ),
            self.follow,
            self.tree,
            title="Explain a number",
            collapsed=True,
            sizing_mode="stretch_width",
        )
        self._layout.param.watch(self._on_open, "collapsed")

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout

    def _on_open(self, event: param.parameterized.Event) -> None:
        # Opening the card shows the number at the cursor (when following it).
        if not event.new and self.follow.value and not self.nodes:
            self.from_cursor()

    def _on_cursor(self, *_: Any) -> None:
        # Only while the card is open: a closed card costs nothing per move.
        if self.follow.value and not self._layout.collapsed:
            self.from_cursor()

    def from_cursor(self) -> Explanation | None:
        """Explain the number at the cursor (and fill the form with it)."""
        ref = ref_at_cursor(self.state)
        if ref is None:
            self.state.message = "Open a session first: there is no number to explain."
            return None
        self.kind.value = ref.kind
        self.step.value = ref.step
        self.layer.value = (ref.layer or 0) + 1
        self.entry.value = ", ".join(str(i + 1) for i in ref.index)
        self.clear()
        return self.expand(ref)

    def explain_form(self) -> Explanation | None:
        """Explain the number the form names."""
        try:
            index = tuple(
                int(p) - 1 for p in self.entry.value.replace(",", " ").split() if p
            )
        except ValueError:
            self.state.message = (
                f"The entry {self.entry.value!r} is not whole numbers; type them "
                "from 1, separated by commas."
            )
            return None
        layer = None if self.kind.value in ("x", "y", "loss") else self.layer.value - 1
        self.clear()
        return self.expand(
            Ref(self.kind.value, int(self.step.value or 0), layer, index)
        )

    def expand(self, ref: Ref, depth: int = 0) -> Explanation | None:
        """Explain ``ref`` and add it to the tree (indented by ``depth``)."""
        session = self.state.session
        if session is None:
            return None
        if len(self.nodes) >= MAX_NODES:
            self.state.message = (
                f"At most {MAX_NODES} explanations are open; press Clear to start over."
            )
            return None
        try:
            node = explain(session, ref)
        except (SessionError, IndexError, ValueError) as err:
            self.state.message = f"Cannot explain {ref.kind}: {err}"
            return None
        self.nodes.append(node)
        self.tree.append(self._node_view(node, depth))
        return node

    def clear(self) -> None:
        """Close every explanation."""
        self.nodes = []
        self.tree.objects = []

    def _node_view(self, node: Explanation, depth: int) -> pn.viewable.Viewable:
        esc = html.escape
        check = ""
        if node.recomputed is not None:
            same = "agrees with" if node.agrees else "DIFFERS from"
            check = (
                f"<br><small>recomputed from the operands: {node.recomputed!r}, which "
                f"{same} the recorded {node.value!r}</small>"
            )
        more = f" (and {node.more_terms} more terms)" if node.more_terms else ""
        text = pn.pane.HTML(
            f"<div class='glassnet-explain-node'><b>{esc(node.label)}</b><br>"
            f"<code>{esc(node.formula)}</code>{check}</div>",
            sizing_mode="stretch_width",
        )
        buttons = []
        for op in node.operands:
            if op.ref is None:
                buttons.append(
                    pn.pane.HTML(
                        f"<small>{esc(op.name)} = {op.value:.6g} (leaf)</small>"
                    )
                )
                continue
            button = pn.widgets.Button(
                label=f"{op.name} = {op.value:.6g}", color="light", height=30
            )
            button.on_click(lambda _, r=op.ref: self.expand(r, depth + 1))
            buttons.append(button)
        if more:
            buttons.append(pn.pane.HTML(f"<small>{esc(more)}</small>"))
        return pn.Column(
            text,
            pn.FlexBox(*buttons),
            margin=(5, 5, 5, 10 + 25 * min(depth, 8)),
            styles={"border-left": "2px solid #ccc"},
            sizing_mode="stretch_width",
        )
