"""Tab 3 without a browser: the sample, every layer's values and the expansions."""

from __future__ import annotations

import base64
import dataclasses
import html
import re
import struct
from pathlib import Path

import numpy as np
import pytest
from tiny_runs import record_run

from engine import events as ev
from ui import explain
from ui.state import AppState
from ui.tabs.forward import ForwardTab, heat_grid


@pytest.fixture
def tab(demo_dir: Path) -> ForwardTab:
    state = AppState(sessions_dir=str(demo_dir))
    assert state.open(demo_dir / "demo.session")
    tab = ForwardTab(state=state)
    state.tab = tab.index
    return tab


def _event(state: AppState, kind: type, layer: int) -> ev.Event:
    return next(e for e in state.events_of(kind) if e.layer == layer)


def _numbers(text: str) -> list[str]:
    return re.findall(r"title=\"\d+: ([^\"]+)\"", text)


def test_tab_shows_help_and_the_sample_with_its_row_features_and_label(
    tab: ForwardTab,
) -> None:
    state = tab.state
    state.go_to(4)
    state.sample = 3
    assert tab.help in html.unescape(tab.help_pane.object)
    batch = state.events_of(ev.BatchSampled)[0]
    text = tab.sample_pane.object
    assert f"training row {int(batch.indices[3])}" in text
    assert "petal width (cm)" in text
    for v in batch.X[3]:
        assert f"<td>{explain.fmt(v, 6)}</td>" in text
    label = state.session.dataset.class_names[int(np.argmax(batch.y[3]))]
    assert f"Target: {label}" in text


def test_expansion_reproduces_the_recorded_z_and_a_of_the_chosen_unit(
    tab: ForwardTab,
) -> None:
    state = tab.state
    state.go_to(7)
    state.sample, state.layer, state.neuron = 5, 1, 2
    w = _event(state, ev.WeightedSumComputed, 1)
    act = _event(state, ev.ActivationComputed, 1)
    text = html.unescape(tab.expansion_pane.object)
    z = w.z[5, 2]
    # Unit 3 on screen is index 2 (units are counted from 1).
    expected = explain.weighted_sum(w.a_prev[5], w.W[:, 2], w.b[2], z, unit=3)
    assert expected.text in text
    assert np.sum(expected.terms) == pytest.approx(z, abs=1e-12)
    assert f"= {explain.fmt(z, 6)}" in text
    assert "Layer 2, unit 3, sample 5" in text
    assert expected.text.startswith("z_3 = ") and "b_3" in expected.formula
    assert "a_3 = e^" in text  # softmax with every term
    assert f"= {explain.fmt(act.a[5, 2], 6)}" in text
    # The table of every term holds each product.
    for i in range(w.W.shape[0]):
        assert f"<td>{explain.fmt(w.a_prev[5, i] * w.W[i, 2], 6)}</td>" in text


def test_every_layer_shows_a_prev_z_and_a_of_the_sample(tab: ForwardTab) -> None:
    state = tab.state
    state.go_to(2)
    state.sample = 1
    shown = _numbers(tab.values_pane.object)
    expected = []
    for layer in range(2):
        w = _event(state, ev.WeightedSumComputed, layer)
        a = _event(state, ev.ActivationComputed, layer)
        for row in (w.a_prev[1], w.z[1], a.a[1], *w.W, w.b):
            expected.extend(explain.fmt(v, 6) for v in row)
    assert shown == expected


def test_moving_the_cursor_changes_the_values_shown(tab: ForwardTab) -> None:
    state = tab.state
    state.layer, state.neuron = 0, 4
    state.go_to(0)
    before = tab.expansion_pane.object
    state.go_to(60)
    after = tab.expansion_pane.object
    assert before != after
    w = _event(state, ev.WeightedSumComputed, 0)
    assert f"= {explain.fmt(w.z[0, 4], 6)}" in html.unescape(after)


def test_current_operation_is_highlighted_in_the_layer_list(tab: ForwardTab) -> None:
    state = tab.state
    state.go_to(3)
    ops = [e.kind for e in state.events]
    state.op = ops.index("activation_computed")  # layer 1's activation
    rows = tab.layers_pane.object.split("<tr")
    assert 'class="gn-now">a = relu(z)' in rows[2]
    assert "gn-now" not in rows[3]
    state.op = len(ops) - 1
    assert "gn-now" not in tab.layers_pane.object


def test_selection_widgets_set_the_shared_cursor_and_are_clipped(
    tab: ForwardTab,
) -> None:
    state = tab.state
    tab.layer_select.value = 1
    tab.neuron_input.value = 3  # unit 3 on screen, index 2 in the state
    tab.sample_input.value = 7
    assert (state.layer, state.neuron, state.sample) == (1, 2, 7)
    state.neuron = 99  # more than layer 2's 3 units
    assert tab.selection()[2] == 2
    assert tab.neuron_input.value == 3
    assert tab.neuron_input.start == 1 and tab.neuron_input.end == 3


def test_hidden_tab_waits_until_shown(tab: ForwardTab) -> None:
    state = tab.state
    state.tab = 0
    old = tab.expansion_pane.object
    state.go_to(50)
    assert tab.expansion_pane.object == old
    state.tab = tab.index
    assert tab.expansion_pane.object != old


def test_dropout_tanh_sigmoid_and_leaky_relu_runs(tmp_path: Path) -> None:
    for name, needles in {
        "mse_dropout_l2": ["tanh(", "a = a_before × mask / keep_prob", "1 / (1 + e^-"],
        "bce": ["alpha", "1 / (1 + e^-"],
        "cce": ["a_1 = z_1 =", "e^"],
    }.items():
        state = AppState()
        assert state.open(record_run(name, tmp_path))
        tab = ForwardTab(state=state)
        state.tab = tab.index
        text = ""
        for layer in range(len(state.session.spec.layers)):
            state.layer = layer
            text += html.unescape(tab.expansion_pane.object)
            for lv_event in state.events_of(ev.WeightedSumComputed):
                if lv_event.layer == layer:
                    z = lv_event.z[0, 0]
                    assert f"= {explain.fmt(z, 6)}" in text
        for needle in needles:
            assert needle in text, (name, needle)
        if name == "mse_dropout_l2":
            assert "keep p = 0.7" in tab.layers_pane.object


def test_user_text_is_escaped(tab: ForwardTab) -> None:
    state = tab.state
    data = state.session.dataset
    evil = dataclasses.replace(data, feature_names=("<b>x</b>", "b", "c", "d"))
    state.session._dataset = evil
    state.go_to(1)
    assert "&lt;b&gt;x&lt;/b&gt;" in tab.sample_pane.object
    assert "<b>x</b>" not in tab.sample_pane.object


def test_without_session_the_tab_says_what_to_do() -> None:
    tab = ForwardTab(state=AppState())
    tab.refresh()
    assert "Open a session" in tab.status.object


def test_large_weight_matrices_are_drawn_as_a_small_image() -> None:
    W = np.random.default_rng(0).normal(size=(64, 32))
    W[3, 4] = np.nan
    out = heat_grid(W, np.zeros(32), selected=5, highlight=False)
    assert out.startswith('<img src="data:image/png;base64,')
    png = base64.b64decode(out.split("base64,")[1].split('"')[0])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    px = 480 // 64
    assert (width, height) == (32 * px, 65 * px)
    assert len(out) < 40_000
    small = heat_grid(W[:4, :3], np.zeros(3), selected=None, highlight=False)
    assert "<table>" in small and explain.fmt(W[0, 0], 3) in small


def test_next_step_from_the_last_operation_of_a_longer_step(tab: ForwardTab) -> None:
    state = tab.state
    epochs = state.session.epochs()
    state.go_to(int(epochs.step[0]))  # ends an epoch: one event more than the next
    state.op = len(state.events) - 1
    state.next_op()
    assert (state.step, state.op) == (int(epochs.step[0]) + 1, 0)
    assert "operation 0: batch sampled" in tab.status.object


def test_diagram_marks_the_operation_and_a_click_expands_that_unit(
    tab: ForwardTab,
) -> None:
    state = tab.state
    state.go_to(6)
    kinds = [(e.kind, e.layer) for e in state.events]
    state.op = kinds.index(("weighted_sum_computed", 1))
    assert tab.diagram.highlight_column() == 2
    assert tab.diagram.box.left == pytest.approx(2 - 0.35)
    nodes = tab.diagram.nodes.data
    row = next(
        r
        for r in range(len(nodes["column"]))
        if (nodes["column"][r], nodes["unit"][r]) == (1, 7)
    )
    # Index 7 is unit 8 everywhere a user reads it: the tooltip and tab 3.
    assert nodes["label"][row] == "layer 1, unit 8"
    tab.diagram.tap_node(row)
    assert (state.layer, state.neuron) == (0, 7)
    w = _event(state, ev.WeightedSumComputed, 0)
    text = html.unescape(tab.expansion_pane.object)
    assert "Layer 1, unit 8" in text
    assert "z_8 = " in text and "a_8 = " in text
    assert f"= {explain.fmt(w.z[state.sample, 7], 6)}" in text
    assert tab.layer_select.value == 0 and tab.neuron_input.value == 8
