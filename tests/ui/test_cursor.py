"""Cursor controls without a browser: steps, operations, typed steps, URL, keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from ui.cursor import SPEEDS, CursorControls, Moment, resolve_session_name
from ui.state import AppState, describe_operation


@pytest.fixture
def cursor(demo_dir: Path) -> CursorControls:
    state = AppState(sessions_dir=str(demo_dir))
    assert state.open(demo_dir / "demo.session")
    return CursorControls(state=state)


def test_slider_and_step_box_cover_the_whole_run(cursor: CursorControls) -> None:
    n = cursor.state.n_steps
    assert n == 120
    assert (cursor.slider.start, cursor.slider.end) == (0, n - 1)
    assert (cursor.player.start, cursor.player.end) == (0, n - 1)
    cursor.step_box.value = 42  # typing an exact step
    assert cursor.state.step == 42
    assert cursor.slider.value == 42
    assert cursor.player.value == 42


def test_step_buttons_and_keys_move_one_step_and_stop_at_the_ends(
    cursor: CursorControls,
) -> None:
    state = cursor.state
    cursor.next_step_button.clicks += 1
    assert state.step == 1
    cursor.keyboard._handle_msg("next_step")
    assert state.step == 2
    cursor.keyboard._handle_msg("previous_step")
    cursor.previous_step_button.clicks += 1
    cursor.previous_step_button.clicks += 1
    assert state.step == 0
    state.step = state.n_steps - 1
    cursor.do("next_step")
    assert state.step == state.n_steps - 1
    cursor.keyboard._handle_msg("<script>")  # unknown messages are ignored
    assert state.step == state.n_steps - 1


def test_next_operation_crosses_into_the_next_step(cursor: CursorControls) -> None:
    state = cursor.state
    state.go_to(5, 0)
    last = len(state.events) - 1
    state.op = last
    assert cursor.op_select.value == last
    cursor.next_op_button.clicks += 1
    assert (state.step, state.op) == (6, 0)
    assert "step 6): batch sampled" in cursor.op_label.object
    cursor.keyboard._handle_msg("previous_op")
    assert (state.step, state.op) == (5, last)
    assert describe_operation(state.event) in cursor.op_label.object


def test_operation_label_and_select_follow_the_cursor(cursor: CursorControls) -> None:
    state = cursor.state
    state.go_to(3, 0)
    labels = state.operations()
    assert list(cursor.op_select.options.values()) == list(range(len(labels)))
    loss = labels.index("loss")
    cursor.op_select.value = loss
    assert state.op == loss
    assert "loss" in cursor.op_label.object
    cursor.previous_op_button.clicks += 1
    assert state.op == loss - 1
    assert "softmax" in cursor.op_label.object
    cursor.keyboard._handle_msg("next_op")
    cursor.keyboard._handle_msg("next_op")
    assert labels[state.op] == "gradient dy_hat"


def test_speed_sets_the_player_interval(cursor: CursorControls) -> None:
    cursor.speed.value = "20 steps/s"
    assert cursor.player.interval == SPEEDS["20 steps/s"] == 50


def test_moment_opens_the_named_step_op_and_tab(cursor: CursorControls) -> None:
    state = cursor.state
    cursor.moment.param.update(session="demo.session", step=7, op=3, tab=3)
    assert (state.step, state.op, state.tab) == (7, 3, 2)
    assert state.message == ""
    state.step = 9  # the cursor writes itself back into the moment (the URL)
    assert cursor.moment.step == 9
    assert cursor.moment.session == "demo.session"
    assert cursor.moment.tab == 3


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"step": "abc"}, "step='abc' in the link is not a whole number"),
        ({"step": 5000}, "Step 5000 is outside this run (0 to 119)"),
        ({"tab": 9}, "tab=9 is not a tab: use 1 to 7"),
        ({"op": 999}, "Operation 999 is not in step"),
        ({"session": "../../etc/passwd"}, "is not a session file name"),
        ({"session": "missing.session"}, "no session 'missing.session' in the"),
    ],
)
def test_bad_link_values_give_a_message_and_keep_the_rest(
    cursor: CursorControls, values: dict, message: str
) -> None:
    problems = cursor.apply_moment(**values)
    assert any(message in p for p in problems)
    assert message in cursor.state.message
    assert cursor.state.session is not None


def test_link_values_are_applied_even_next_to_a_bad_one(cursor: CursorControls) -> None:
    cursor.apply_moment(step="12", op=2.0, tab="nope")
    assert (cursor.state.step, cursor.state.op) == (12, 2)
    assert "tab='nope'" in cursor.state.message


def test_resolve_session_name_refuses_links(demo_dir: Path, tmp_path: Path) -> None:
    assert resolve_session_name(demo_dir, "demo.session") == demo_dir / "demo.session"
    link = demo_dir / "alias.session"
    link.symlink_to(demo_dir / "demo.session")
    try:
        with pytest.raises(Exception, match="There is no session 'alias.session'"):
            resolve_session_name(demo_dir, "alias.session")
    finally:
        link.unlink()


def test_moment_defaults_to_nothing() -> None:
    assert Moment().param.values() | {"name": None} == {
        "name": None,
        "session": None,
        "step": None,
        "op": None,
        "tab": None,
    }


def test_the_url_waits_while_playing(cursor: CursorControls) -> None:
    cursor.player.direction = 1  # the browser's player is playing
    cursor.state.step = 10
    assert cursor.moment.step == 0
    cursor.player.direction = 0  # paused: the moment reaches the URL
    assert cursor.moment.step == 10


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        (None, "Type a step from 0 to 119 in 'Go to step'."),
        (-3, "Step -3 is outside this run (0 to 119)."),
        (500, "Step 500 is outside this run (0 to 119)."),
    ],
)
def test_a_cleared_or_outside_step_box_gives_a_message_and_snaps_back(
    cursor: CursorControls, typed: int | None, message: str
) -> None:
    cursor.state.go_to(7, 2)
    cursor.step_box.value = typed
    assert cursor.state.message == message
    assert cursor.step_box.value == 7
    assert (cursor.state.step, cursor.state.op) == (7, 2)
    cursor.next_step_button.clicks += 1
    assert cursor.step_box.value == 8


def test_operation_label_counts_like_the_operation_list(
    cursor: CursorControls,
) -> None:
    state = cursor.state
    state.go_to(3, 0)
    last = len(state.operations()) - 1
    state.op = last
    text = cursor.op_label.object
    assert f"Operation {last}</b> (0 to {last}, step 3)" in text
    assert list(cursor.op_select.options)[-1].startswith(f"{last}. ")
