"""The network diagram: weights at the cursor, clicks, design mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine import events as ev
from engine.network import LayerSpec, NetworkSpec
from ui.diagram import MAX_EDGES_PER_LAYER, MAX_UNITS_DRAWN, NetworkDiagram
from ui.state import AppState


@pytest.fixture
def state(demo_dir: Path) -> AppState:
    """Return a state with the demo session (Iris, 4-16-3) open."""
    s = AppState()
    assert s.open(demo_dir / "demo.session")
    return s


def edge_matrix(diagram: NetworkDiagram, layer: int) -> np.ndarray:
    """Rebuild layer ``layer``'s weight matrix from the drawn lines."""
    data = diagram.edges.data
    rows = [k for k, la in enumerate(data["layer"]) if la == layer]
    n_in = max(data["i"][k] for k in rows) + 1
    n_out = max(data["j"][k] for k in rows) + 1
    W = np.full((n_in, n_out), np.nan)
    for k in rows:
        W[data["i"][k], data["j"][k]] = data["value"][k]
    return W


def test_edges_are_the_recorded_weights_and_follow_the_step(state: AppState) -> None:
    diagram = NetworkDiagram(state=state)
    diagram.update()
    recorded = state.session.params_after(0)  # parameters after step 0's update
    used = state.params()
    for layer in range(2):
        np.testing.assert_array_equal(edge_matrix(diagram, layer), used[layer]["W"])
    assert len(diagram.edges.data["value"]) == 4 * 16 + 16 * 3
    assert len(diagram.nodes.data["x"]) == 4 + 16 + 3

    state.go_to(1)
    diagram.update()
    np.testing.assert_array_equal(edge_matrix(diagram, 0), recorded[0]["W"])
    assert not np.array_equal(edge_matrix(diagram, 0), used[0]["W"])
    values = np.asarray(diagram.edges.data["value"])
    np.testing.assert_array_equal(diagram.edges.data["sign"], np.sign(values))


def test_a_step_move_sends_only_the_changing_columns(state: AppState) -> None:
    diagram = NetworkDiagram(state=state)
    diagram.update()
    x0, label = diagram.edges.data["x0"], diagram.edges.data["label_edge"]
    state.go_to(7)
    diagram.update()
    assert diagram.edges.data["x0"] is x0
    assert diagram.edges.data["label_edge"] is label
    np.testing.assert_array_equal(
        edge_matrix(diagram, 1), state.session.params_after(6)[1]["W"]
    )


def test_clicking_a_unit_selects_it(state: AppState) -> None:
    diagram = NetworkDiagram(state=state)
    diagram.update()
    data = diagram.nodes.data
    row = next(
        k
        for k in range(len(data["x"]))
        if data["column"][k] == 2 and data["unit"][k] == 1
    )
    diagram._on_nodes_indices("indices", [], [row])
    assert (state.layer, state.neuron) == (1, 1)
    assert diagram.picked == (1, "b", (1,))
    lines = diagram.nodes.data["line_width"]
    assert lines[row] == 3.0 and sorted(lines)[-2] == 1.0

    diagram._on_edges_indices("indices", [], [5])
    edges = diagram.edges.data
    assert diagram.picked == (edges["layer"][5], "W", (edges["i"][5], edges["j"][5]))


def test_highlight_marks_the_layer_of_the_operation(state: AppState) -> None:
    diagram = NetworkDiagram(state=state, highlight=True)
    diagram.update()
    for op, event in enumerate(state.events):
        state.op = op
        diagram.update()
        if isinstance(event, ev.WeightedSumComputed):
            assert diagram.box.left == pytest.approx(event.layer + 1 - 0.35)
        if isinstance(event, ev.LossComputed):
            assert diagram.highlight_column() == 2
            assert diagram.box.fill_alpha > 0


def test_design_mode_shows_hand_set_values() -> None:
    state = AppState()
    state.design = NetworkSpec(2, (LayerSpec(3, "tanh"), LayerSpec(1, "sigmoid")))
    diagram = NetworkDiagram(state=state, mode="design")
    diagram.update()
    before = edge_matrix(diagram, 0)
    assert np.isfinite(before).all() and np.any(before != 0)
    state.initial_values = {(0, "W", (1, 2)): 0.0, (1, "b", (0,)): 0.5}
    diagram.update()
    after = edge_matrix(diagram, 0)
    assert after[1, 2] == 0.0
    assert after[0, 0] == before[0, 0]
    assert diagram.nodes.data["bias"][-1] == 0.5


def test_large_layers_are_drawn_in_part() -> None:
    state = AppState()
    state.design = NetworkSpec(100, (LayerSpec(64, "relu"), LayerSpec(10, "softmax")))
    diagram = NetworkDiagram(state=state, mode="design")
    diagram.update()
    layers = diagram.edges.data["layer"]
    assert layers.count(0) == MAX_EDGES_PER_LAYER
    assert layers.count(1) == 640
    assert diagram.nodes.data["column"].count(0) == MAX_UNITS_DRAWN
    assert "first 64 of 100 units" in diagram.note.object
    assert f"{MAX_EDGES_PER_LAYER} of 6400 weights" in diagram.note.object


def test_no_session_says_so() -> None:
    diagram = NetworkDiagram(state=AppState())
    diagram.update()
    assert diagram.edges.data["value"] == []
    assert "Open a session" in diagram.note.object


def test_design_weights_are_the_ones_a_run_draws(state: AppState) -> None:
    from ui.diagram import design_params

    session = state.session
    drawn = design_params(session.spec, {}, seed=session.config.seed)
    for layer, used in enumerate(state.params()):  # step 0 uses the initial values
        np.testing.assert_array_equal(drawn[layer]["W"], used["W"])
        np.testing.assert_array_equal(drawn[layer]["b"], used["b"])


def test_input_units_are_named_after_the_features(state: AppState) -> None:
    diagram = NetworkDiagram(state=state)
    diagram.update()
    labels = diagram.nodes.data["label"]
    assert labels[0] == "input sepal length (cm)"
    assert labels[4] == "layer 1, unit 1"
