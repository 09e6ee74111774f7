"""Explaining numbers in the app: from the cursor, operands expanded in turn."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from conftest import serve
from test_tab_training import _tiny

from engine import events as ev
from ui.explain_panel import ExplainPanel, ref_at_cursor
from ui.state import AppState


@pytest.fixture
def state(tmp_path: Path) -> AppState:
    state = AppState()
    assert state.open(_tiny(tmp_path / "run.session"))
    return state


def _op(state: AppState, cls: type, **match: object) -> int:
    return next(
        i
        for i, e in enumerate(state.events)
        if isinstance(e, cls) and all(getattr(e, k) == v for k, v in match.items())
    )


def test_the_cursor_names_the_number_it_points_at(state: AppState) -> None:
    state.go_to(2)
    state.sample, state.neuron = 1, 2
    state.op = _op(state, ev.WeightedSumComputed, layer=0)
    assert ref_at_cursor(state).kind == "z"  # type: ignore[union-attr]
    state.op = _op(state, ev.LossComputed)
    assert ref_at_cursor(state).index == (1,)  # type: ignore[union-attr]
    state.op = _op(state, ev.GradientComputed, name="da_prev", layer=1)
    ref = ref_at_cursor(state)
    assert ref is not None and (ref.kind, ref.layer) == ("da", 0)
    state.op = _op(state, ev.ParametersUpdated, name="b", layer=0)
    ref = ref_at_cursor(state)
    assert ref is not None and (ref.kind, ref.step, ref.index) == ("b", 3, (2,))


def test_operands_expand_below_and_the_tree_is_bounded(state: AppState) -> None:
    panel = ExplainPanel(state=state)
    state.go_to(3)
    state.sample, state.neuron = 0, 0
    state.op = _op(state, ev.LossComputed)
    node = panel.from_cursor()
    assert node is not None and node.agrees and len(panel.tree) == 1
    assert panel.kind.value == "loss" and panel.entry.value == "1"
    # Expand the first operand (y_hat, an activation) by its button.
    first = panel.tree[0][1][0]
    first.clicks += 1
    assert len(panel.tree) == 2 and panel.nodes[1].ref.kind == "a"
    html = panel.tree[1][0].object
    assert "agrees with" in html
    panel.kind.value, panel.step.value, panel.layer.value = "z", 1, 2
    panel.entry.value = "99, 1"
    assert panel.explain_form() is None
    assert "outside" in state.message
    panel.entry.value = "1, x"
    assert panel.explain_form() is None and "not whole numbers" in state.message


@pytest.mark.ui
def test_explaining_in_the_browser(page: Any, tmp_path: Path, open_app: Any) -> None:
    folder = tmp_path / "runs"
    folder.mkdir()
    _tiny(folder / "run.session")
    server = serve(folder)
    try:
        open_app(page, f"{server.url}?session=run.session&step=2&op=1&tab=3")
        page.get_by_text("Explain a number").first.click()
        page.get_by_role("button", name="From the cursor").click()
        node = page.locator(".glassnet-explain-node").first
        node.wait_for(timeout=20_000)
        assert "agrees with" in node.inner_text()
        # Expand an operand: a second explanation appears below.
        page.get_by_role("button", name=re.compile(r"^W\[1, 1\] = ")).first.click()
        page.locator(".glassnet-explain-node").nth(1).wait_for(timeout=20_000)
        assert (
            "used at step 2"
            in page.locator(".glassnet-explain-node").nth(1).inner_text()
        )
    finally:
        server.stop()


def test_an_open_card_follows_the_cursor(state: AppState) -> None:
    panel = ExplainPanel(state=state)
    state.go_to(1)
    assert not panel.nodes  # closed: nothing is computed on cursor moves
    panel._layout.collapsed = False
    state.op = _op(state, ev.WeightedSumComputed, layer=0)
    assert panel.nodes and panel.nodes[0].ref.kind == "z"
    state.neuron = 2  # picking another unit (a click on the diagram) explains it
    assert panel.nodes[0].ref.index == (0, 2)
    panel.follow.value = False
    state.neuron = 1
    assert panel.nodes[0].ref.index == (0, 2)


def test_opening_the_card_explains_the_number_at_the_cursor(state: AppState) -> None:
    panel = ExplainPanel(state=state)
    state.go_to(2)
    state.op = _op(state, ev.LossComputed)
    panel._layout.collapsed = False
    assert panel.nodes and panel.nodes[0].ref.kind == "loss"
    assert panel.kind.value == "loss" and panel.step.value == 2
