"""Tab 1: the open session's network and the builder of the next one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.network import LayerSpec, NetworkSpec
from sessions.datasets import load_dataset
from ui.state import AppState
from ui.tabs.network import NetworkTab


@pytest.fixture
def tab(demo_dir: Path) -> NetworkTab:
    """Return tab 1, visible, with the demo session (Iris, 4-16-3) open."""
    state = AppState()
    tab = NetworkTab(state=state)
    assert state.open(demo_dir / "demo.session")
    state.tab = tab.index
    tab.refresh()
    return tab


def test_opening_a_session_fills_design_and_data(tab: NetworkTab) -> None:
    state = tab.state
    assert state.design is not None and state.design.sizes == (4, 16, 3)
    assert state.data is state.session.dataset
    assert [row.units.value for row in tab._rows] == [16, 3]
    assert "ready for the next run" in tab.messages.object
    assert tab.session_view.visible
    table = tab.architecture.object
    assert "relu" in table and "softmax" in table and "<th>131</th>" in table
    assert "sepal length (cm)" in table


def test_session_diagram_follows_the_cursor(tab: NetworkTab) -> None:
    state = tab.state
    drawn = list(tab.session_diagram.edges.data["value"][:5])
    assert drawn == state.params()[0]["W"][0, :5].tolist()
    state.go_to(3)
    drawn = list(tab.session_diagram.edges.data["value"][:5])
    assert drawn == state.session.params_after(2)[0]["W"][0, :5].tolist()


def test_builder_writes_the_network_and_counts_parameters(tab: NetworkTab) -> None:
    tab._on_add_button_click()
    tab._rows[1].units.value = 5
    tab._rows[1].activation.value = "tanh"
    tab._rows[1].initializer.value = "zeros"
    spec = tab.state.design
    expected = NetworkSpec(
        4,
        (
            LayerSpec(16, "relu"),
            LayerSpec(5, "tanh", "zeros"),
            LayerSpec(3, "softmax"),
        ),
    )
    assert spec == expected
    assert spec.n_params == 4 * 16 + 16 + 16 * 5 + 5 + 5 * 3 + 3
    counts = tab.counts.object
    assert "16 × 5 + 5</td><td>85" in counts
    assert f"<th>{spec.n_params}</th>" in counts
    # Zero init of a hidden layer: the engine's symmetry notice is shown.
    assert "symmetry is never broken" in tab.messages.object


@pytest.mark.parametrize(
    ("change", "text"),
    [
        (lambda t: setattr(t._rows[0].units, "value", 0), "Hidden layer 1 has 0 units"),
        (lambda t: setattr(t._rows[-1].units, "value", 2), "set the last layer to 3"),
        (
            lambda t: setattr(t._rows[-1].activation, "value", "relu"),
            "categorical_cross_entropy needs outputs between 0 and 1",
        ),
    ],
)
def test_impossible_networks_are_refused_with_a_message(
    tab: NetworkTab, change, text: str
) -> None:
    before = tab.state.design
    change(tab)
    assert text in tab.design_error
    assert "Impossible network" in tab.messages.object
    assert tab.state.design == before
    assert tab.counts.object == ""


def test_softmax_on_one_unit_is_refused() -> None:
    state = AppState()
    state.data = load_dataset("moons", n_samples=40)
    tab = NetworkTab(state=state)
    tab.refresh()
    tab._rows[-1].activation.value = "softmax"
    assert "softmax with 1 unit" in tab.design_error


def test_templates_fit_the_dataset() -> None:
    state = AppState()
    state.data = load_dataset("blobs", n_samples=60)
    tab = NetworkTab(state=state)
    tab.refresh()
    tab.template.value = "multi-class classification"
    assert state.design.sizes == (2, 16, 3)
    assert state.design.layers[-1].activation == "softmax"
    assert "categorical_cross_entropy" in tab.messages.object
    state.data = load_dataset("sine", n_samples=60)
    tab.refresh()
    tab.use_template("regression")
    assert state.design.sizes == (1, 16, 1)
    assert state.design.layers[-1].activation == "identity"
    assert tab.design_error == ""


def test_hand_set_values_land_in_the_state_and_the_diagram(tab: NetworkTab) -> None:
    diagram = tab.design_diagram
    row = diagram.edges.data["layer"].index(1)
    diagram._on_edges_indices("indices", [], [row])
    key = (1, "W", (diagram.edges.data["i"][row], diagram.edges.data["j"][row]))
    assert tab._picked == key
    assert not tab.set_button.disabled
    tab.value_input.value = -2.5
    tab._on_set_button_click()
    assert tab.state.initial_values == {key: -2.5}
    assert diagram.edges.data["value"][row] == -2.5
    assert "W2[" in tab.values_list.object and "-2.5" in tab.values_list.object

    # A bias, by clicking a unit.
    nodes = diagram.nodes.data
    unit = list(zip(nodes["column"], nodes["unit"], strict=True)).index((2, 0))
    diagram._on_nodes_indices("indices", [], [unit])
    tab.value_input.value = 1.0
    tab._on_set_button_click()
    assert tab.state.initial_values[(1, "b", (0,))] == 1.0

    tab._on_clear_button_click()
    tab.refresh()
    assert tab.state.initial_values == {}
    assert "No starting values" in tab.values_list.object


def test_values_outside_a_smaller_network_are_dropped(tab: NetworkTab) -> None:
    tab.state.initial_values = {(0, "W", (0, 15)): 0.0, (0, "W", (0, 1)): 0.0}
    tab._rows[0].units.value = 8
    assert tab.state.initial_values == {(0, "W", (0, 1)): 0.0}


def test_edit_as_new_network_copies_the_session(tab: NetworkTab) -> None:
    tab._rows[0].units.value = 7
    assert tab.state.design.sizes == (4, 7, 3)
    tab._on_edit_button_click()
    assert tab.state.design.sizes == (4, 16, 3)
    assert np.array_equal([r.units.value for r in tab._rows], [16, 3])


def test_a_new_session_replaces_what_the_user_did_not_choose(
    demo_dir: Path, tmp_path: Path
) -> None:
    from engine.config import TrainingConfig
    from sessions import record

    data = load_dataset("moons", n_samples=40)
    spec = NetworkSpec(2, (LayerSpec(3, "tanh"), LayerSpec(1, "sigmoid")))
    config = TrainingConfig(loss="binary_cross_entropy", epochs=1)
    other = tmp_path / "moons.session"
    record(spec, config, data, other)

    state = AppState()
    tab = NetworkTab(state=state)
    state.tab = tab.index
    assert state.open(demo_dir / "demo.session")
    assert state.open(other)
    tab.refresh()
    assert state.design.sizes == (2, 3, 1)
    assert state.data.name == "moons"
    assert "ready for the next run" in tab.messages.object

    # Once the user builds a network, opening a session keeps its hidden
    # layers; inputs and output follow the session's dataset (Iris).
    tab._rows[0].units.value = 5
    assert state.open(demo_dir / "demo.session")
    tab.refresh()
    assert state.design.sizes == (4, 5, 3)
    assert state.design.layers[0].activation == "tanh"
    assert state.design.activations()[-1].name == "softmax"
    assert tab.design_error == ""
    assert "changed to fit the dataset iris" in tab.messages.object


@pytest.mark.parametrize(
    ("name", "options", "sizes", "output"),
    [
        ("moons", {}, (2, 16, 1), "sigmoid"),
        ("sine", {}, (1, 16, 1), "identity"),
    ],
)
def test_a_new_dataset_the_design_does_not_fit_reshapes_it(
    tab: NetworkTab, name: str, options: dict, sizes: tuple, output: str
) -> None:
    state = tab.state
    state.data_source = {"kind": "builtin", "name": name}
    state.data = load_dataset(name, **options)
    assert state.design.sizes == sizes
    assert state.design.activations()[-1].name == output
    assert state.design.layers[0].activation == "relu"  # hidden layers kept
    tab.refresh()
    assert [row.units.value for row in tab._rows] == list(sizes[1:])
    assert "changed to fit the dataset" in tab.messages.object
    # A dataset the design fits leaves it alone.
    design = state.design
    state.data = load_dataset(name, seed=3, **options)
    assert state.design is design
