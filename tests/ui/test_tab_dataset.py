"""Tab 2: built-in datasets, CSV import, and what the views show."""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np
import pytest

from sessions.datasets import load_dataset
from ui.state import AppState
from ui.tabs.dataset import DatasetTab, feature_stats

CASES = Path(__file__).resolve().parents[3] / "shared" / "cases"


@pytest.fixture
def tab() -> DatasetTab:
    """Return tab 2, visible, with no session open."""
    state = AppState()
    tab = DatasetTab(state=state)
    state.tab = tab.index
    return tab


def cells(table_html: str, row_label: str) -> list[str]:
    """Return the cells of the table row whose first cell is ``row_label``."""
    for row in re.findall(r"<tr>(.*?)</tr>", table_html):
        values = re.findall(r"<t[dh]>(.*?)</t[dh]>", row)
        if values and html.unescape(values[0]) == row_label:
            return values[1:]
    raise AssertionError(f"no row {row_label!r}")


def test_loads_a_built_in_set_with_its_options(tab: DatasetTab) -> None:
    tab.builtin.value = "circles"
    tab.n_samples.value = 120
    tab.noise.value = 0.2
    tab.seed.value = 3
    tab.test_fraction.value = 0.25
    assert tab.load_builtin()
    data = tab.state.data
    expected = load_dataset(
        "circles", n_samples=120, noise=0.2, seed=3, test_fraction=0.25
    )
    np.testing.assert_array_equal(data.X_train, expected.X_train)
    assert data.n_test == 30
    assert tab.state.data_source == {
        "kind": "builtin",
        "name": "circles",
        "options": {
            "test_fraction": 0.25,
            "standardize": True,
            "seed": 3,
            "n_samples": 120,
            "noise": 0.2,
        },
    }
    assert "90 training rows, 30 test rows" in tab.summary.object


def test_shipped_sets_take_no_size_or_noise(tab: DatasetTab) -> None:
    tab.builtin.value = "iris"
    assert tab.n_samples.disabled and tab.noise.disabled
    assert tab.load_builtin()
    assert tab.state.data.name == "iris"
    assert "n_samples" not in tab.state.data_source["options"]


def test_stats_are_numpys(tab: DatasetTab) -> None:
    tab.builtin.value = "wine"
    tab.standardize.value = False
    assert tab.load_builtin()
    data = tab.state.data
    X = data.X_train
    name = data.feature_names[3]
    row = cells(tab.stats.object, name)
    assert int(row[0]) == X.shape[0]
    for value, want in zip(
        row[1:5],
        (X[:, 3].mean(), X[:, 3].std(), X[:, 3].min(), X[:, 3].max()),
        strict=True,
    ):
        assert float(value) == pytest.approx(want, rel=1e-3)
    assert row[5] == "0"

    tab.split.value = "test"
    row = cells(tab.stats.object, name)
    assert float(row[1]) == pytest.approx(data.X_test[:, 3].mean(), rel=1e-3)
    counts = [int(cells(tab.balance.object, c)[0]) for c in data.class_names]
    assert counts == data.y_test.sum(axis=0).astype(int).tolist()


def test_feature_stats_count_missing_values() -> None:
    X = np.array([[1.0, np.nan], [3.0, 2.0], [np.nan, np.nan]])
    stats = feature_stats(X)
    assert stats["missing"].tolist() == [1, 2]
    assert stats["count"].tolist() == [2, 1]
    assert stats["mean"].tolist() == [2.0, 2.0]
    assert stats["std"][0] == 1.0


def test_plots_follow_the_chosen_features(tab: DatasetTab) -> None:
    tab.builtin.value = "iris"
    tab.load_builtin()
    data = tab.state.data
    tab.x_feature.value = data.feature_names[2]
    tab.y_feature.value = data.feature_names[3]
    assert tab.points.data["x"] == data.X_train[:, 2].tolist()
    assert tab.points.data["y"] == data.X_train[:, 3].tolist()
    assert len(set(tab.points.data["color"])) == 3
    tab.hist_feature.value = data.feature_names[1]
    assert sum(tab.hist_source.data["top"]) == data.n_train


def test_imports_a_csv_from_bytes(tab: DatasetTab) -> None:
    raw = b"size;colour;label\n1,5;red;a\n2,5;blue;b\n3,0;red;a\n4,0;blue;b\n"
    assert tab.import_bytes(raw, "shop.csv")
    data = tab.state.data
    assert data.task == "binary"
    assert data.n_train + data.n_test == 4
    report = tab.report_pane.object
    assert "delimiter <b>&#x27;;&#x27;</b>" in report
    assert "header <b>yes</b>" in report
    assert "a → 0, b → 1" in report
    assert tab.state.data_source["kind"] == "csv"
    assert tab.state.data_source["file"] == "shop.csv"
    assert tab.target.options == ["(last column)", "size", "colour", "label"]

    # Override: colour is the target now.
    tab.target.value = "colour"
    assert tab.import_csv_again()
    assert tab.state.data.target_name == "colour"
    assert tab.state.data_source["options"]["target"] == "colour"


def test_csv_text_is_escaped(tab: DatasetTab) -> None:
    raw = b"<b>x</b>,y\n1,<i>a</i>\n2,b\n3,<i>a</i>\n4,b\n"
    assert tab.import_bytes(raw, "<script>.csv")
    tab.refresh()
    shown = tab.preview.object + tab.report_pane.object + tab.summary.object
    assert "<b>x</b>" not in shown and "&lt;b&gt;x&lt;/b&gt;" in shown
    assert "<i>a</i>" not in shown and "<script>" not in shown


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("case14.csv", "has only one value ('yes')"),
        ("case27a.csv", "The file is empty."),
        ("case27b.csv", "no data rows"),
        ("case31.csv", "x1: 2 missing (rows 2, 4); x2: 2 infinite (rows 3, 5)"),
    ],
)
def test_bad_csv_files_show_their_message(
    tab: DatasetTab, name: str, text: str
) -> None:
    before = tab.state.data
    assert not tab.import_bytes((CASES / name).read_bytes(), name)
    assert text in html.unescape(tab.error_pane.object)
    assert tab.state.data is before


def test_missing_values_can_be_filled_or_dropped(tab: DatasetTab) -> None:
    raw = (CASES / "case31.csv").read_bytes()
    assert not tab.import_bytes(raw, "case31.csv")
    tab.missing.value = "impute_mean"
    assert tab.import_csv_again()
    assert tab.error_pane.object == ""
    assert tab.state.data.n_train + tab.state.data.n_test == 5
    # Dropping the 4 bad rows leaves one class: the engine's message is shown.
    tab.missing.value = "drop"
    assert not tab.import_csv_again()
    assert "After dropping 4 row(s)" in tab.error_pane.object


def test_not_a_csv_file_is_a_message(tab: DatasetTab) -> None:
    assert not tab.import_bytes(b"\x89PNG\r\n\x1a\n\x00\x00", "picture.csv")
    assert "PNG" in tab.error_pane.object


def test_shows_the_open_sessions_dataset(demo_dir: Path, tab: DatasetTab) -> None:
    state = tab.state
    assert state.open(demo_dir / "demo.session")
    tab.refresh()
    assert state.data is state.session.dataset
    assert "the open session" in tab.summary.object
    assert not tab.session_button.visible
    tab.builtin.value = "xor"
    tab.load_builtin()
    assert tab.session_button.visible
    tab._on_session_button_click()
    assert state.data is state.session.dataset


def test_the_upload_widget_imports_the_file(tab: DatasetTab) -> None:
    tab.source.value = "CSV file"
    assert tab.csv_box.visible and not tab.builtin_box.visible
    raw = (CASES / "case22.csv").read_bytes()
    tab.file_input.param.update(filename="case22.csv", value=raw)
    assert tab.state.data is not None and tab.state.data.name == "case22.csv"
    assert "delimiter <b>&#x27;;&#x27;</b>" in tab.report_pane.object
    tab.file_input.param.update(filename="case27a.csv", value=b"")
    assert "The file is empty." in tab.error_pane.object
    assert tab.state.data.name == "case22.csv"


def test_delimiter_and_header_can_be_overridden(tab: DatasetTab) -> None:
    raw = b"1;2;0\n2;3;1\n3;4;0\n4;5;1\n5;6;0\n6;7;1\n"
    assert tab.import_bytes(raw, "plain.csv")
    assert "header <b>no</b>" in tab.report_pane.object
    assert tab.state.data.n_train + tab.state.data.n_test == 6

    tab.header.value = "first row is column names"
    assert tab.import_csv_again()
    assert "header <b>yes</b>" in tab.report_pane.object
    assert tab.state.data.n_train + tab.state.data.n_test == 5

    tab.delimiter.value = ", (comma)"
    assert not tab.import_csv_again()
    assert "only one column" in tab.error_pane.object
