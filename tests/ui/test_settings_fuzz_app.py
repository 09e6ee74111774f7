"""Generated values in the forms of tab 1 and tab 5: a network, or a message.

Whatever a user types into the builder (units, activations, initializers,
layers added and removed) or the training form (learning rate, epochs, batch
size, optimizer settings, dropout text, seed), the app either accepts a run
whose settings are the ones typed, or shows a message saying what is wrong.
It never raises, logs an exception, or changes what was typed into something
else. Values a widget itself refuses (param's type checks, as the browser
sends only what the widget holds) are left out.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from engine import ACTIVATIONS, INITIALIZERS, OPTIMIZERS, ConfigError, Trainer
from sessions.datasets import load_dataset
from ui.state import AppState
from ui.tabs.dataset import DatasetTab
from ui.tabs.network import NetworkTab
from ui.tabs.training import TrainingTab

FORMS = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

BAD_NUMBERS = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1.0, 1e-320, 1e308, -1.0, 0.999999, 1.0000001]),
)
BAD_WHOLE = st.one_of(st.none(), st.integers(-5, 0), st.sampled_from([2**31, 10**12]))


GOOD = {
    "lr": st.floats(1e-4, 1.0),
    "epochs": st.integers(1, 40),
    "batch_size": st.integers(1, 40),
    "seed": st.integers(0, 2**32),
    "l2": st.floats(0.0, 1.0),
    "momentum": st.floats(0.0, 0.99),
    "rho": st.floats(0.0, 0.99),
    "beta1": st.floats(0.0, 0.99),
    "beta2": st.floats(0.0, 0.9999),
    "eps": st.floats(1e-12, 1e-3),
    "dropout": st.sampled_from(["0", "0.1", "0.25", " 0.5 "]),
}
BAD = {
    **{key: BAD_NUMBERS for key in ("lr", "l2", "momentum", "rho", "beta1")},
    **{key: BAD_NUMBERS for key in ("beta2", "eps")},
    **{key: BAD_WHOLE for key in ("epochs", "batch_size", "seed")},
    "dropout": st.text(max_size=12)
    | st.sampled_from(["0.5, 0.5", "1", "-0.1", "nan", "inf", "0,2", ""]),
}


@st.composite
def forms(draw: st.DrawFn) -> dict[str, Any]:
    """Draw a training form: good values, with at most two spoiled."""
    form = {key: draw(good) for key, good in GOOD.items()}
    for key in draw(st.lists(st.sampled_from(sorted(BAD)), max_size=2)):
        form[key] = draw(BAD[key])
    form["full_batch"] = draw(st.booleans())
    form["optimizer"] = draw(st.sampled_from(sorted(OPTIMIZERS)))
    form["loss"] = draw(st.sampled_from(["mse", "binary_cross_entropy"]))
    return form


def _set(widget: Any, value: Any) -> bool:
    """Set a widget's value as the browser would; False if the widget refuses it."""
    try:
        widget.value = value
    except ValueError:
        return False
    return True


def fresh_tabs(tmp_path: Path) -> tuple[NetworkTab, TrainingTab]:
    """Return tabs 1 and 5 on a new state, with the moons data chosen.

    Made anew for every example: a fixture would carry one example's edits
    into the next.
    """
    state = AppState(sessions_dir=str(tmp_path / "runs"))
    network, training = NetworkTab(state=state), TrainingTab(state=state)
    state.data = load_dataset("moons", n_samples=40, seed=0)
    state.tab = network.index
    network.refresh()
    return network, training


EDIT_VALUES = {
    "units": st.integers(1, 40) | st.integers(-3, 0) | st.none(),
    "activation": st.sampled_from(sorted(ACTIVATIONS)),
    "initializer": st.sampled_from(sorted(INITIALIZERS)),
    "add": st.none(),
    "remove": st.none(),
}


@st.composite
def edits(draw: st.DrawFn) -> tuple[str, bool, int, Any]:
    """Draw one builder edit: what, on the output layer or not, which, value."""
    action = draw(st.sampled_from(sorted(EDIT_VALUES)))
    on_output = draw(st.integers(0, 4)) == 0
    return action, on_output, draw(st.integers(0, 3)), draw(EDIT_VALUES[action])


@FORMS
@given(st.lists(edits(), min_size=1, max_size=8))
def test_any_builder_edit_gives_a_network_or_a_message(
    tmp_path: Path, changes: list[tuple[str, bool, int, Any]]
) -> None:
    tab = fresh_tabs(tmp_path)[0]
    for action, on_output, index, value in changes:
        rows = tab._rows
        hidden = rows[:-1]
        row = rows[-1] if on_output or not hidden else hidden[index % len(hidden)]
        if action == "add":
            tab._on_add_button_click()
        elif action == "remove":
            tab._on_row_remove(row)
        else:
            _set(getattr(row, action), value)
    tab.refresh()
    shown = html.unescape(tab.messages.object)
    assert "Traceback" not in shown
    event("refused" if tab.design_error else "accepted")
    if tab.design_error:
        assert "Impossible network" in shown and tab.design_error in shown
        return
    # Accepted: the design is exactly what the rows say.
    spec = tab.state.design
    assert [layer.n_out for layer in spec.layers] == [r.units.value for r in tab._rows]
    assert [layer.activation for layer in spec.layers] == [
        r.activation.value for r in tab._rows
    ]
    assert all(n >= 1 for n in spec.sizes)


@FORMS
@given(forms())
def test_any_training_form_gives_a_run_or_a_message(
    tmp_path: Path, form: dict[str, Any]
) -> None:
    tab = fresh_tabs(tmp_path)[1]
    tab.state.tab = tab.index
    tab.refresh()
    for key in ("optimizer", "full_batch", "loss"):
        getattr(tab, key).value = form.pop(key)
    assume(all(_set(getattr(tab, key), value) for key, value in form.items()))
    try:
        spec, config, data = tab.build_run()
    except ConfigError as err:
        assert len(str(err)) > 15, str(err)
        event("refused")
        return
    event("accepted")
    # Accepted: every setting is the one typed, and makes sense.
    assert config.lr == tab.lr.value and math.isfinite(config.lr) and config.lr > 0
    assert config.epochs == tab.epochs.value >= 1
    assert config.seed == tab.seed.value >= 0
    assert config.l2 == tab.l2.value >= 0
    if tab.full_batch.value:
        assert config.batch_size is None
    else:
        assert config.batch_size == tab.batch_size.value >= 1
    for layer in spec.layers[:-1]:
        assert 0.0 <= layer.dropout < 1.0
    assert spec.n_in == data.n_features
    # Train goes on to the trainer's own checks (of network, loss and data
    # together); those refuse only with ConfigError, which it shows.
    try:
        Trainer(spec, config, data)
    except ConfigError as err:
        assert len(str(err)) > 15, str(err)
        return
    assert config.batch_size is None or config.batch_size <= data.n_train


@st.composite
def uploads(draw: st.DrawFn) -> bytes:
    """Draw an uploaded file: a small table with junk, in some encoding, or bytes."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.binary(max_size=200))
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    junk = ["", "NA", "1,5", "1 000", "\u22121", "inf", "yes", '"', "a b"]
    numbers = st.integers(-50, 50).map(str)
    cell = st.one_of(
        numbers,
        st.sampled_from(junk),
        st.text(alphabet="abcXYZ .-_éü", max_size=3),
    )
    if draw(st.booleans()):
        cell = numbers  # a clean file, but for its labels
    width = st.just(3) if draw(st.integers(0, 4)) else st.integers(1, 4)
    rows = draw(
        st.lists(width.flatmap(lambda n: st.lists(cell, min_size=n, max_size=n)),
                 min_size=5, max_size=10)
    )  # fmt: skip
    text = "\n".join(delimiter.join(r) for r in [["x", "y", "z"][:3], *rows])
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252"]))
    return text.encode(encoding, errors="replace")


@FORMS
@given(uploads())
def test_any_uploaded_file_gives_a_dataset_or_a_message(
    tmp_path: Path, raw: bytes
) -> None:
    state = AppState(sessions_dir=str(tmp_path / "runs"))
    tab = DatasetTab(state=state)
    state.tab = tab.index
    tab.source.value = "CSV file"
    before = load_dataset("moons", n_samples=40, seed=0)
    state.data = before
    if tab.import_bytes(raw, "drawn.csv"):
        event("imported")
        data = state.data
        assert data is not before and data.name == "drawn.csv"
        for arr in (data.X_train, data.y_train, data.X_test, data.y_test):
            assert np.isfinite(arr).all()
        return
    event("refused")
    shown = html.unescape(tab.error_pane.object)
    # A refusal of glassnet's own, not the app's catch-all for a crash.
    assert "Could not use this data: " in shown
    assert "could not be read as CSV" not in shown, shown
    assert state.data is before
