"""Forking from tab 5: the form's settings continue the open run from the cursor."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import serve
from test_tab_training import _tiny, follow

from sessions import Session, verify
from ui.state import AppState
from ui.tabs.training import TrainingTab


@pytest.fixture
def tab(tmp_path: Path) -> TrainingTab:
    state = AppState(sessions_dir=str(tmp_path / "runs"))
    assert state.open(_tiny(tmp_path / "open.session"))
    tab = TrainingTab(state=state)
    state.tab = tab.index
    return tab


def _loss(path: Path) -> np.ndarray:
    with Session(path) as s:
        return s.series().loss


def test_a_fork_with_the_form_unchanged_repeats_the_open_run(tab: TrainingTab) -> None:
    parent = tab.state.session.path
    tab.state.go_to(3)
    assert tab.fork_changes() == ({}, None, {})
    assert tab.fork_run()
    follow(tab)
    child = tab.state.session
    assert child.path != parent and "-fork" in child.path.name
    assert child.fork_of["file"] == "open.session"  # type: ignore[index]
    assert child.meta["fork_step"] == 3
    np.testing.assert_array_equal(_loss(child.path), _loss(parent)[3:])
    assert verify(child.path).ok


def test_a_fork_takes_the_new_rate_and_the_picked_parameter(tab: TrainingTab) -> None:
    tab.state.go_to(2)
    tab.lr.value = 0.5
    tab.pick_layer.value, tab.pick_param.value = 1, "W"
    tab.pick_i.value, tab.pick_j.value = 2, 3
    tab.fork_value.value = -1.25
    changes, dropout, edits = tab.fork_changes()
    assert changes == {"lr": 0.5} and dropout is None
    assert edits == {(0, "W", (1, 2)): -1.25}
    assert tab.fork_run()
    follow(tab)
    child = tab.state.session
    assert child.config.lr == 0.5
    assert child.state_before(0).params[0]["W"][1, 2] == -1.25
    assert child.meta["fork_edits"][0]["value"] == -1.25


def test_a_fork_that_cannot_be_made_says_why(tab: TrainingTab) -> None:
    tab.state.go_to(1)
    tab.dropout.value = "0.5, 0.2"  # two rates for one hidden layer
    assert not tab.fork_run()
    assert "dropout" in tab.message.object.lower()
    empty = TrainingTab(state=AppState())
    assert not empty.fork_run()
    assert "Open a session first" in empty.message.object


@pytest.mark.ui
def test_forking_in_the_browser_opens_the_fork(
    page: Any, tmp_path: Path, open_app: Any
) -> None:
    folder = tmp_path / "runs"
    folder.mkdir()
    _tiny(folder / "open.session")
    server = serve(folder)
    try:
        open_app(page, f"{server.url}?session=open.session&step=4&tab=5")
        button = page.get_by_role("button", name="Fork from this step")
        button.wait_for(timeout=20_000)
        button.click()
        page.wait_for_url(re.compile(r"[?&]session=open-fork-[^&]+"), timeout=30_000)
        page.get_by_text("fork at step 4").first.wait_for(timeout=20_000)
    finally:
        server.stop()
    forks = sorted(folder.glob("open-fork-*.session"))
    assert len(forks) == 1
    with Session(forks[0]) as child:
        assert child.meta["fork_step"] == 4
    np.testing.assert_array_equal(_loss(forks[0]), _loss(folder / "open.session")[4:])


def test_the_family_lists_parent_and_forks_and_opens_them(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    state = AppState(sessions_dir=str(runs))
    parent = _tiny(runs / "open.session")
    assert state.open(parent)
    tab = TrainingTab(state=state)
    state.tab = tab.index
    for step in (2, 5):
        tab.state.go_to(step)
        assert tab.fork_run()
        follow(tab)
        tab.state.open(parent)
        tab.refresh()
    options = list(tab.family.options)
    assert tab.family.visible and len(options) == 3
    assert options[0].startswith("this run:")
    assert all(o.startswith("fork:") for o in options[1:])
    # Open one fork: now the first run is its parent, the other its sibling.
    tab.family.value = tab.family.options[options[1]]
    tab.family_open.clicks += 1
    assert tab.state.session.path != parent
    tab.refresh()
    hows = [o.split(":")[0] for o in tab.family.options]
    assert hows == ["parent", "this run", "sibling"]
