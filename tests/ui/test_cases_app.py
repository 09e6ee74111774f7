"""Every case of shared/cases that the app can meet, driven through the tabs.

The engine and the CSV import have their own case tests
(``tests/engine/test_cases_engine.py``, ``tests/sessions/test_cases_csv.py``);
these check that the app gives the same right outcome where a user meets the
case: a CSV upload on tab 2, the network builder on tab 1, the settings and
Train on tab 5. A bad input must end in a message on the tab, never in a
traceback, a log of an unexpected exception, or a silent change, and it must
leave the dataset and network already chosen in place.
"""

from __future__ import annotations

import html
import json
import logging
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine import events as ev
from sessions.csv_import import DEFAULT_MAX_BYTES, CsvOptions, import_csv
from ui.state import AppState
from ui.tabs.dataset import DatasetTab
from ui.tabs.network import NetworkTab
from ui.tabs.training import TrainingTab

CASES = Path(__file__).resolve().parents[3] / "shared" / "cases"

#: Every case file and the test of this module that drives it through the app.
COVERED = {
    "case04.csv": "test_case04_learning_rate_1_diverges_with_advice_and_0_1_converges",
    "case04.json": "test_case04_learning_rate_1_diverges_with_advice_and_0_1_converges",
    "case06.csv": "test_good_csv_files_import_exactly_as_the_importer_reads_them",
    "case06.json": "test_case06_gradient_norms_per_layer_show_vanishing_gradients",
    "case07.json": "test_case07_zero_initialisation_is_named_and_units_stay_identical",
    "case07_and.csv": (
        "test_case07_zero_initialisation_is_named_and_units_stay_identical"
    ),
    "case07_xor.csv": "test_case19b_no_hidden_layer_on_xor_trains_to_one_half",
    "case08.csv": "test_good_csv_files_import_exactly_as_the_importer_reads_them",
    "case08.json": "test_case08_unscaled_features_are_named_on_tab_2",
    "case09a.json": "test_case09a_bce_with_a_linear_output_is_refused_on_tabs_1_and_5",
    "case09b.csv": "test_case09b_sigmoid_output_for_targets_2_to_10_gets_a_notice",
    "case09b.json": "test_case09b_sigmoid_output_for_targets_2_to_10_gets_a_notice",
    "case13.json": "test_case13_dropout_set_on_tab_5_is_recorded_with_its_masks",
    "case14.csv": "test_bad_csv_files_show_a_message_and_keep_the_dataset",
    "case15.csv": "test_good_csv_files_import_exactly_as_the_importer_reads_them",
    "case17.json": "test_case17_epochs_that_are_not_a_whole_number_above_0_are_refused",
    "case19a.json": "test_case19a_a_hidden_layer_of_0_units_is_refused_by_name",
    "case19b.json": "test_case19b_no_hidden_layer_on_xor_trains_to_one_half",
    "case20.csv": "test_case20_a_test_part_of_0_rows_is_refused_on_tab_2",
    "case20.json": "test_case20_a_test_part_of_0_rows_is_refused_on_tab_2",
    "case21.csv": "test_good_csv_files_import_exactly_as_the_importer_reads_them",
    "case22.csv": "test_good_csv_files_import_exactly_as_the_importer_reads_them",
    "case25.csv": "test_good_csv_files_import_exactly_as_the_importer_reads_them",
    "case27a.csv": "test_bad_csv_files_show_a_message_and_keep_the_dataset",
    "case27b.csv": "test_bad_csv_files_show_a_message_and_keep_the_dataset",
    "case29_make_large_csv.py": "test_case29_a_file_over_the_limit_is_refused_first",
    "case31.csv": "test_case31_gaps_are_listed_then_dropped_or_filled_on_request",
    "case32.csv": "test_good_csv_files_import_exactly_as_the_importer_reads_them",
    "case34.csv": "test_good_csv_files_import_exactly_as_the_importer_reads_them",
    "case35_make_wide_csv.py": (
        "test_case35_a_wide_file_loads_and_the_diagram_sums_it_up"
    ),
}

#: Cases with no app path: the math happens inside the engine, with no setting
#: or input of the app that reaches it other than by training (their right
#: outcome is tested in tests/engine/test_cases_engine.py).
NO_APP_PATH = {
    "case01.json": "softmax of huge logits, inside the loss",
    "case02.json": "log(0) in cross-entropy, inside the loss",
    "case11.json": "the gradient checker has no control in the app",
    "case12.json": "autodiff of a node used twice, inside the backward pass",
}


def case(name: str) -> Path:
    """Return the path of one case file, failing loudly if it is missing."""
    path = CASES / name
    if not path.is_file():
        pytest.fail(f"Case file {path} is missing; the app case tests need it.")
    return path


def settings_of(name: str) -> dict[str, Any]:
    """Return the neutral settings of a case's JSON file."""
    return json.loads(case(name).read_text())


class App:
    """Tabs 1, 2 and 5 on one state, as the app builds them."""

    def __init__(self, sessions_dir: Path, opened: Path) -> None:
        self.state = AppState(sessions_dir=str(sessions_dir))
        self.network = NetworkTab(state=self.state)
        self.dataset = DatasetTab(state=self.state)
        self.training = TrainingTab(state=self.state)
        # The app always has a session open (the demo, Iris 4-16-3 softmax).
        assert self.state.open(opened)

    def show(self, tab: Any) -> Any:
        """Make ``tab`` the visible tab and refresh it; return it."""
        self.state.tab = tab.index
        tab.refresh()
        return tab

    def upload(self, name: str, raw: bytes | None = None, **widgets: Any) -> bool:
        """Upload a case CSV on tab 2 with the given widget values."""
        tab = self.show(self.dataset)
        tab.source.value = "CSV file"
        for key, value in widgets.items():
            getattr(tab, key).value = value
        return tab.import_bytes(case(name).read_bytes() if raw is None else raw, name)

    def layers(
        self, *units: int, hidden: str = "relu", init: str | None = None
    ) -> None:
        """Set tab 1's hidden layers to ``units`` (the output layer stays)."""
        tab = self.show(self.network)
        while len(tab._rows) > 1:
            tab._on_row_remove(tab._rows[0])
        for n in units:
            tab._on_add_button_click()
            row = tab._rows[-2]
            row.units.value = n
            row.activation.value = hidden
            if init is not None:
                row.initializer.value = init

    def train(self, **widgets: Any) -> Any:
        """Set tab 5's widgets, press Train and follow the run to its end."""
        tab = self.show(self.training)
        for key, value in widgets.items():
            getattr(tab, key).value = value
        assert tab.start_run(), html.unescape(tab.message.object)
        deadline = time.monotonic() + 120
        while tab._poll is not None:
            tab.poll()
            assert time.monotonic() < deadline, "the run did not end"
            time.sleep(0.01)
        return tab.job


@pytest.fixture
def app(tmp_path: Path, demo_dir: Path) -> App:
    return App(tmp_path / "runs", demo_dir / "demo.session")


@pytest.fixture(autouse=True)
def no_unexpected_exception(caplog: pytest.LogCaptureFixture) -> Any:
    """Fail a test whose app logged an exception it did not expect."""
    with caplog.at_level(logging.ERROR):
        yield
    logged = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not logged, [r.getMessage() for r in logged]


def text_of(pane: Any) -> str:
    return html.unescape(str(pane.object))


def test_every_case_is_driven_here_or_has_no_app_path() -> None:
    files = {
        p.name
        for p in CASES.iterdir()
        if p.suffix in (".csv", ".json") or p.name.endswith("_csv.py")
    }
    assert files, f"no case files in {CASES}"
    assert files <= set(COVERED) | set(NO_APP_PATH), sorted(
        files - set(COVERED) - set(NO_APP_PATH)
    )
    assert set(COVERED.values()) <= set(globals())


# -- tab 2: CSV files ------------------------------------------------------------------


GOOD_CSV = {
    "case04.csv": ({}, ["task <b>regression</b>"]),
    "case06.csv": ({}, ["0 → 0, 1 → 1"]),
    "case07_and.csv": ({}, ["0 → 0, 1 → 1"]),
    "case07_xor.csv": ({}, ["0 → 0, 1 → 1"]),
    "case08.csv": (
        {},
        ["Feature scales differ by about 700x", "standardization is on"],
    ),
    "case09b.csv": ({}, ["task <b>regression</b>"]),
    "case15.csv": (
        {},
        ["Fair → 0, Good → 1, Ideal → 2, Premium → 3, Very Good → 4"],
    ),
    "case21.csv": (
        {"target": "country", "test_fraction": 0.0},
        ["Target <b>country</b>", "byte-order mark"],
    ),
    "case22.csv": ({}, ["delimiter <b>';'</b>", "decimal mark ','"]),
    "case25.csv": ({}, ["4 blank lines ignored (lines 3, 5, 7, 8)"]),
    "case32.csv": ({}, ["protocol_icmp, protocol_tcp, protocol_udp", "3 → 5 features"]),
    "case34.csv": (
        {},
        ["3 exact duplicate rows, 1 pair with the same features but different labels"],
    ),
}


@pytest.mark.parametrize("name", sorted(GOOD_CSV))
def test_good_csv_files_import_exactly_as_the_importer_reads_them(
    app: App, name: str
) -> None:
    options, words = GOOD_CSV[name]
    tab = app.dataset
    widgets = {k: v for k, v in options.items() if k != "target"}
    assert app.upload(name, **widgets) or "target" in options, text_of(tab.error_pane)
    if "target" in options:
        tab.target.value = options["target"]
        assert tab.import_csv_again(), text_of(tab.error_pane)
    assert tab.error_pane.object == ""
    report = text_of(tab.report_pane)
    for word in words:
        assert word in report, f"{word!r} not in the report of {name}"
    # What the app uses is exactly what the importer reads: nothing dropped,
    # reordered or changed on the way.
    expected, csv_report = import_csv(case(name), CsvOptions(**options), name=name)
    data = app.state.data
    for key in ("X_train", "y_train", "X_test", "y_test"):
        np.testing.assert_array_equal(getattr(data, key), getattr(expected, key))
    assert data.feature_names == expected.feature_names
    assert data.class_names == expected.class_names
    assert "imported from " + name in text_of(tab.summary)
    # The builder on tab 1 follows the data at once.
    app.show(app.network)
    assert app.state.design.n_in == data.n_features
    assert app.state.design.layers[-1].n_out == data.n_outputs
    assert app.network.design_error == ""


BAD_CSV = {
    "case14.csv": (
        "The label column 'label' has only one value ('yes'). A classifier needs at "
        "least two classes — check the file or pick another target column."
    ),
    "case27a.csv": "The file is empty.",
    "case27b.csv": "The file has column names (x1, x2, y) but no data rows.",
}


@pytest.mark.parametrize("name", sorted(BAD_CSV))
def test_bad_csv_files_show_a_message_and_keep_the_dataset(app: App, name: str) -> None:
    assert app.upload("case06.csv")
    before, design = app.state.data, app.state.design
    assert not app.upload(name)
    shown = text_of(app.dataset.error_pane)
    assert BAD_CSV[name] in shown
    assert "Traceback" not in shown and "could not be read as CSV" not in shown
    assert app.state.data is before and app.state.design is design


def test_case20_a_test_part_of_0_rows_is_refused_on_tab_2(app: App) -> None:
    settings = settings_of("case20.json")
    assert app.upload("case06.csv")
    before = app.state.data
    fraction = settings["validation_fraction"]
    assert not app.upload("case20.csv", test_fraction=fraction, task="regression")
    shown = text_of(app.dataset.error_pane)
    assert "A test fraction of 10% of 2 rows is 0 rows" in shown
    assert "set the test fraction to 0" in shown
    assert app.state.data is before
    # Without a test part the 2 rows load; the constant target is named.
    app.dataset.test_fraction.value = 0.0
    assert app.dataset.import_csv_again(), text_of(app.dataset.error_pane)
    assert app.state.data.n_train == 2 and app.state.data.n_test == 0
    assert "same value (1) in every row" in text_of(app.dataset.report_pane)


def test_case29_a_file_over_the_limit_is_refused_first(
    app: App, tmp_path: Path
) -> None:
    # The browser refuses it before sending (LimitedFileInput); a file that
    # arrives all the same is refused by size before it is parsed.
    assert app.dataset.file_input.max_bytes == DEFAULT_MAX_BYTES
    script = case("case29_make_large_csv.py")
    subprocess.run([sys.executable, str(script), "25"], cwd=tmp_path, check=True)
    raw = (tmp_path / "case29_large.csv").read_bytes()
    assert app.upload("case06.csv")
    before = app.state.data
    assert not app.upload("case29_large.csv", raw=raw)
    shown = text_of(app.dataset.error_pane)
    size = len(raw) / 2**20
    assert f"This file is {size:.1f} MB; the limit is 20.0 MB" in shown
    assert app.state.data is before


def test_case31_gaps_are_listed_then_dropped_or_filled_on_request(app: App) -> None:
    assert app.upload("case06.csv")
    before = app.state.data
    assert not app.upload("case31.csv")
    shown = text_of(app.dataset.error_pane)
    assert "x1: 2 missing (rows 2, 4); x2: 2 infinite (rows 3, 5)" in shown
    assert 'Missing values "drop"' in shown
    assert app.state.data is before
    # Filled with the mean: nothing non-finite reaches training.
    app.dataset.test_fraction.value = 0.0
    app.dataset.missing.value = "impute_mean"
    app.dataset.task.value = "regression"
    assert app.dataset.import_csv_again(), text_of(app.dataset.error_pane)
    data = app.state.data
    assert data.n_train + data.n_test == 5
    assert np.isfinite(data.X_train).all() and np.isfinite(data.X_test).all()
    assert "filled with the mean of the training rows" in text_of(app.dataset.summary)
    # Dropped: the 4 rows are named, by row and line.
    app.dataset.missing.value = "drop"
    assert app.dataset.import_csv_again(), text_of(app.dataset.error_pane)
    report = text_of(app.dataset.report_pane)
    for row, line in ((2, 3), (3, 4), (4, 5), (5, 6)):
        assert f"Row {row} (line {line}) dropped" in report
    assert app.state.data.n_train + app.state.data.n_test == 1


def test_case35_a_wide_file_loads_and_the_diagram_sums_it_up(
    app: App, tmp_path: Path
) -> None:
    script = case("case35_make_wide_csv.py")
    subprocess.run([sys.executable, str(script)], cwd=tmp_path, check=True)
    raw = (tmp_path / "case35_wide.csv").read_bytes()
    assert app.upload("case35_wide.csv", raw=raw), text_of(app.dataset.error_pane)
    assert app.state.data.n_features == 5000
    summary = text_of(app.dataset.summary)
    assert "5000 features for 20 rows — the network will overfit" in summary
    app.show(app.network)
    assert app.state.design.n_in == 5000
    # The diagram does not draw 5000 input nodes and 5000 x h edges.
    diagram = app.network.design_diagram
    assert len(diagram.nodes.data["column"]) < 200
    assert len(diagram.edges.data["value"]) < 5000


# -- tabs 1 and 5: network and settings ------------------------------------------


def test_case04_learning_rate_1_diverges_with_advice_and_0_1_converges(
    app: App,
) -> None:
    settings = settings_of("case04.json")
    assert app.upload("case04.csv", test_fraction=0.0, standardize=False)
    app.layers()  # no hidden layer: one linear unit with a bias
    output = app.network._rows[-1]
    output.activation.value = "identity"
    assert app.state.design.sizes == (1, 1)
    assert app.network.set_initial_value((0, "W", (0, 0)), 0.0)
    assert app.network.set_initial_value((0, "b", (0,)), 0.0)
    job = app.train(
        optimizer="gd",
        full_batch=True,
        lr=settings["learning_rate"],
        epochs=settings["epochs"],
    )
    assert job.status == "diverged"
    shown = text_of(app.training.message)
    assert "Training diverged" in shown and "smaller learning rate" in shown
    session = app.state.session
    assert session.status == "diverged"
    # Every step up to the last finite loss is kept, and the settings too.
    assert np.isfinite(session.series().loss[:-1]).all()
    assert app.training.lr.value == settings["learning_rate"]
    job = app.train(lr=settings["compare_learning_rate"])
    assert job.status == "completed"
    params = app.state.session.params_after(app.state.session.n_steps - 1)
    assert params[0]["W"][0, 0] == pytest.approx(2.0, abs=1e-3)
    assert params[0]["b"][0] == pytest.approx(0.0, abs=1e-2)


def _first_step_ratio(app: App) -> float:
    """Return |dW| of layer 1 over |dW| of the last layer at step 0."""
    app.state.go_to(0)
    norms = {
        e.layer: float(np.linalg.norm(e.value))
        for e in app.state.events_of(ev.GradientComputed)
        if e.name == "dW"
    }
    return norms[0] / norms[max(norms)]


def test_case06_gradient_norms_per_layer_show_vanishing_gradients(app: App) -> None:
    settings = settings_of("case06.json")
    assert app.upload("case06.csv", test_fraction=0.0)
    hidden = settings["layers"][1:-1]
    ratios = {}
    for run, init in zip(
        settings["runs"], ("normal", "xavier_uniform", "he_normal"), strict=True
    ):
        app.layers(*hidden, hidden=run["hidden_activation"], init=init)
        assert app.state.design.sizes == tuple(settings["layers"])
        app.train(epochs=1, optimizer="gd", full_batch=True)
        ratios[run["hidden_activation"], init] = _first_step_ratio(app)
        shown = app.training.gradients.object
        assert "<h4>Layer 1 (W 2 x 8)" in shown and "<h4>Layer 7 (W 8 x 1)" in shown
    sigmoid_small, sigmoid_xavier, relu_he = ratios.values()
    assert sigmoid_small < 1e-6 < relu_he
    assert sigmoid_small < sigmoid_xavier < relu_he


def test_case07_zero_initialisation_is_named_and_units_stay_identical(
    app: App,
) -> None:
    settings = settings_of("case07.json")
    assert app.upload("case07_and.csv", test_fraction=0.0, standardize=False)
    app.layers(*settings["layers"][1:-1], hidden="sigmoid", init="zeros")
    app.network._rows[-1].initializer.value = "zeros"
    assert "symmetry is never broken" in text_of(app.network.messages)
    app.train(optimizer="gd", full_batch=True, lr=settings["learning_rate"], epochs=50)
    W = app.state.session.params_after(app.state.session.n_steps - 1)[0]["W"]
    assert np.all(W == W[:, :1]) and np.any(W != 0.0)


def test_case08_unscaled_features_are_named_on_tab_2(app: App) -> None:
    settings = settings_of("case08.json")
    assert app.upload("case08.csv", standardize=settings["standardize"])
    report = text_of(app.dataset.report_pane)
    assert "Feature scales differ by about 700x" in report
    assert "standardization is off; turn it on" in report


def test_case09a_bce_with_a_linear_output_is_refused_on_tabs_1_and_5(
    app: App,
) -> None:
    settings = settings_of("case09a.json")
    assert app.upload("case07_xor.csv", test_fraction=0.0)
    app.layers(*settings["layers"][1:-1], hidden=settings["hidden_activation"])
    design = app.state.design
    app.network._rows[-1].activation.value = "identity"
    words = "binary_cross_entropy needs outputs between 0 and 1"
    assert words in app.network.design_error
    assert "Impossible network" in text_of(app.network.messages)
    assert app.state.design == design  # the last possible network is kept
    # A network set without tab 1 is refused by Train, before anything runs.
    app.state.design = design.__class__(
        design.n_in,
        (*design.layers[:-1], design.layers[-1].__class__(1, "identity")),
    )
    tab = app.show(app.training)
    tab.loss.value = "binary_cross_entropy"
    assert not tab.start_run()
    assert words in text_of(tab.message) and tab.job is None


def test_case09b_sigmoid_output_for_targets_2_to_10_gets_a_notice(app: App) -> None:
    settings = settings_of("case09b.json")
    assert app.upload("case09b.csv", test_fraction=0.0, standardize=False)
    app.layers(*settings["layers"][1:-1], hidden=settings["hidden_activation"])
    app.network._rows[-1].activation.value = settings["output_activation"]
    shown = text_of(app.network.messages)
    assert "The targets range from 2 to 10, but a sigmoid output" in shown
    assert "Use a linear (identity) output or scale the targets" in shown
    assert app.network.design_error == ""
    job = app.train(epochs=20, optimizer="adam", full_batch=True)
    assert job.status == "completed"
    # The best a (0, 1) output can do on targets 2..10 is a loss of 33.
    assert app.state.session.series().loss[-1] > 33.0


def test_case13_dropout_set_on_tab_5_is_recorded_with_its_masks(app: App) -> None:
    settings = settings_of("case13.json")
    assert app.upload("case06.csv", test_fraction=0.0)
    app.layers(8, hidden="relu")
    rate = 1 - settings["keep_probability"]
    job = app.train(dropout=f"{rate:g}", epochs=2, optimizer="sgd", full_batch=True)
    assert job.status == "completed"
    session = app.state.session
    assert session.spec.layers[0].dropout == pytest.approx(rate)
    app.state.go_to(1)
    masks = [e for e in app.state.events if isinstance(e, ev.DropoutApplied)]
    assert masks, "the dropout mask of the step is not recorded"
    drop = masks[0]
    assert drop.keep_prob == pytest.approx(settings["keep_probability"])
    assert set(np.unique(drop.mask).tolist()) <= {0.0, 1.0}
    # Scaled once, by 1 / keep_prob, where kept.
    np.testing.assert_allclose(drop.a, drop.a_before * drop.mask / drop.keep_prob)


@pytest.mark.parametrize("epochs", [0, -1])
def test_case17_epochs_that_are_not_a_whole_number_above_0_are_refused(
    app: App, epochs: int
) -> None:
    settings = settings_of("case17.json")
    assert app.upload("case04.csv", test_fraction=0.0)
    app.layers(*settings["layers"][1:-1])
    tab = app.show(app.training)
    tab.epochs.value = epochs
    tab.lr.value = settings["learning_rate"]
    assert not tab.start_run()
    assert f"Epochs must be a whole number >= 1; got {epochs}" in text_of(tab.message)
    assert tab.job is None


def test_case19a_a_hidden_layer_of_0_units_is_refused_by_name(app: App) -> None:
    settings = settings_of("case19a.json")
    assert app.upload("case07_xor.csv", test_fraction=0.0)
    app.layers(5, 3, 7, hidden=settings["hidden_activation"])
    design = app.state.design
    app.network._rows[1].units.value = 0
    assert (
        "Hidden layer 2 has 0 units. Remove the layer or give it at least 1 unit."
        in app.network.design_error
    )
    assert app.state.design == design  # never dropped or merged silently
    assert design.sizes == (2, 5, 3, 7, 1)


def test_case19b_no_hidden_layer_on_xor_trains_to_one_half(app: App) -> None:
    settings = settings_of("case19b.json")
    assert app.upload("case07_xor.csv", test_fraction=0.0, standardize=False)
    app.layers()
    assert app.state.design.sizes == tuple(settings["layers"])
    assert app.network.design_error == ""
    job = app.train(
        optimizer="gd", full_batch=True, lr=settings["learning_rate"], epochs=1500
    )
    assert job.status == "completed"
    assert app.state.session.series().loss[-1] == pytest.approx(math.log(2), abs=1e-3)
