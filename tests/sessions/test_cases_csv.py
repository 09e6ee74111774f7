"""One test per CSV case in shared/cases: a real bad input and its right outcome."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sessions.csv_import import CsvOptions, import_csv
from sessions.errors import DatasetError

#: Every CSV file (or CSV-making script) of shared/cases and the test that covers it.
COVERED = {
    "case04.csv": "test_case04_linear_regression_data_loads_unchanged",
    "case06.csv": "test_case06_quadrant_classes_load_as_binary",
    "case07_and.csv": "test_case07_and_and_xor_tables_load_as_binary",
    "case07_xor.csv": "test_case07_and_and_xor_tables_load_as_binary",
    "case08.csv": "test_case08_feature_scale_notice",
    "case09b.csv": "test_case09b_target_range_loads_as_regression",
    "case14.csv": "test_case14_single_class_is_refused",
    "case15.csv": "test_case15_string_classes_sorted_with_spaces_kept",
    "case20.csv": "test_case20_split_too_small_is_refused",
    "case21.csv": "test_case21_byte_order_mark_is_stripped",
    "case22.csv": "test_case22_semicolon_and_decimal_comma",
    "case25.csv": "test_case25_blank_lines_skipped_and_counted",
    "case27a.csv": "test_case27a_empty_file",
    "case27b.csv": "test_case27b_header_without_rows",
    "case29_make_large_csv.py": "test_case29_file_above_the_limit_is_refused",
    "case31.csv": "test_case31_missing_and_infinite_values_reported_per_column",
    "case32.csv": "test_case32_text_feature_is_one_hot_encoded",
    "case34.csv": "test_case34_duplicates_reported_and_kept_on_one_side",
    "case35_make_wide_csv.py": "test_case35_wide_file_loads_fast_with_overfit_notice",
}


def cases_dir() -> Path:
    """Return shared/cases beside the repository; fail (never skip) if it is missing."""
    path = Path(__file__).resolve().parents[3] / "shared" / "cases"
    if not path.is_dir():
        pytest.fail(
            f"The cases folder {path} is missing. The CSV case tests need a copy of "
            "shared/ beside the repository clone (shared/cases/*.csv)."
        )
    return path


def case(name: str) -> Path:
    """Return the path of one case file, failing loudly if it is missing."""
    path = cases_dir() / name
    if not path.is_file():
        pytest.fail(f"Case file {path} is missing from shared/cases.")
    return path


def whole(**kwargs: Any) -> CsvOptions:
    """Return options that keep every row in training and the values unscaled."""
    return CsvOptions(test_fraction=0, standardize=False, **kwargs)


def test_cases_every_csv_case_has_a_test() -> None:
    files = {
        p.name
        for p in cases_dir().iterdir()
        if p.suffix == ".csv" or p.name.endswith("_csv.py")
    }
    assert files <= set(COVERED), f"no test for {sorted(files - set(COVERED))}"
    defined = set(globals())
    assert set(COVERED.values()) <= defined


def test_case04_linear_regression_data_loads_unchanged() -> None:
    data, report = import_csv(case("case04.csv"), whole())
    assert data.task == "regression"
    np.testing.assert_array_equal(data.X_train, [[1.0], [2.0], [3.0]])
    np.testing.assert_array_equal(data.y_train, [[2.0], [4.0], [6.0]])
    assert report.feature_names == ("x",) and report.target == "y"

    split, _ = import_csv(case("case04.csv"))
    assert (split.n_train, split.n_test) == (2, 1)


def test_case06_quadrant_classes_load_as_binary() -> None:
    data, report = import_csv(case("case06.csv"), whole())
    assert data.task == "binary" and data.X_train.shape == (8, 2)
    np.testing.assert_array_equal(data.y_train[:, 0], [1, 0, 1, 0, 1, 0, 1, 0])
    assert report.class_mapping == {"0": 0, "1": 1}

    split, _ = import_csv(case("case06.csv"))
    assert split.n_test == 2
    assert sorted(split.y_test[:, 0]) == [0.0, 1.0]  # stratified: one of each


@pytest.mark.parametrize(
    ("name", "labels"),
    [("case07_and.csv", [0, 0, 0, 1]), ("case07_xor.csv", [0, 1, 1, 0])],
)
def test_case07_and_and_xor_tables_load_as_binary(name: str, labels: list[int]) -> None:
    data, _ = import_csv(case(name), whole())
    assert data.task == "binary"
    np.testing.assert_array_equal(data.X_train, [[0, 0], [0, 1], [1, 0], [1, 1]])
    np.testing.assert_array_equal(data.y_train[:, 0], labels)


def test_case08_feature_scale_notice() -> None:
    data, report = import_csv(case("case08.csv"), CsvOptions(target="cost"))
    assert data.task == "regression" and data.feature_names == (
        "bedrooms",
        "bathrooms",
        "sqft",
    )
    scale = [n for n in report.notices if n.startswith("Feature scales")]
    assert scale == [
        "Feature scales differ by about 700x (sqft std 470 vs bathrooms std 0.7); "
        "standardization is on."
    ]
    # Statistics come from the training rows only and are kept for display.
    stats = data.info["standardization"]
    assert stats["applied"] and stats["columns"] == list(data.feature_names)
    np.testing.assert_allclose(data.X_train.mean(axis=0), 0.0, atol=1e-12)

    _, raw = import_csv(case("case08.csv"), whole(target="cost"))
    assert any("standardization is off; turn it on" in n for n in raw.notices)


def test_case09b_target_range_loads_as_regression() -> None:
    data, _ = import_csv(case("case09b.csv"), whole())
    assert data.task == "regression"
    np.testing.assert_array_equal(data.y_train[:, 0], [2, 4, 6, 8, 10])


def test_case14_single_class_is_refused() -> None:
    expected = (
        "The label column 'label' has only one value ('yes'). A classifier needs at "
        "least two classes — check the file or pick another target column."
    )
    with pytest.raises(DatasetError) as err:
        import_csv(case("case14.csv"))
    assert str(err.value) == expected


def test_case15_string_classes_sorted_with_spaces_kept() -> None:
    data, report = import_csv(case("case15.csv"), whole())
    assert data.task == "multiclass"
    assert report.class_mapping == {
        "Fair": 0,
        "Good": 1,
        "Ideal": 2,
        "Premium": 3,
        "Very Good": 4,
    }
    assert data.class_names == ("Fair", "Good", "Ideal", "Premium", "Very Good")
    assert data.y_train.shape == (9, 5)
    # Row 6 is "Very Good": its one-hot column is index 4.
    assert data.class_names[int(np.argmax(data.y_train[5]))] == "Very Good"
    assert data.info["csv"]["class_mapping"]["Very Good"] == 4


def test_case20_split_too_small_is_refused() -> None:
    options = CsvOptions(task="regression", test_fraction=0.1)
    message = (
        "A test fraction of 10% of 2 rows is 0 rows. Use a larger fraction or more "
        "data, or set the test fraction to 0."
    )
    with pytest.raises(DatasetError) as err:
        import_csv(case("case20.csv"), options)
    assert str(err.value) == message

    data, report = import_csv(case("case20.csv"), whole(task="regression"))
    assert (data.n_train, data.n_test) == (2, 0)
    assert "same value (1) in every row" in report.task_reason


def test_case21_byte_order_mark_is_stripped() -> None:
    path = case("case21.csv")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    data, report = import_csv(path, whole(target="country"))
    assert report.columns == ("country", "score")
    assert report.encoding == "utf-8-sig"
    assert data.class_names == ("A", "B", "C") and data.feature_names == ("score",)


def test_case22_semicolon_and_decimal_comma() -> None:
    data, report = import_csv(case("case22.csv"), whole())
    assert (report.delimiter, report.decimal) == (";", ",")
    assert report.columns == ("A", "B", "C", "D")
    np.testing.assert_allclose(
        data.X_train, [[1.1, 2.2, 3.3], [1.5, 2.6, 3.7], [1.9, 2.0, 3.1]]
    )
    np.testing.assert_allclose(data.y_train[:, 0], [4.1, 4.8, 4.2])
    # The user can override what was detected.
    with pytest.raises(DatasetError, match=r"do not have 1 field like the header"):
        import_csv(case("case22.csv"), whole(delimiter=","))


def test_case25_blank_lines_skipped_and_counted() -> None:
    data, report = import_csv(case("case25.csv"), whole())
    np.testing.assert_array_equal(data.X_train, [[1, 2], [3, 4], [5, 6]])
    assert report.rows_read == 3 and report.rows_used == 3
    # Lines 3 (empty), 5 (",,"), 7 (spaces) and 8 (empty, at the end).
    assert report.blank_lines == (3, 5, 7, 8)
    assert any(
        n.startswith("4 blank lines ignored (lines 3, 5, 7, 8)") for n in report.notices
    )
    assert np.isfinite(data.X_train).all()


def test_case27a_empty_file() -> None:
    with pytest.raises(DatasetError) as err:
        import_csv(case("case27a.csv"))
    assert str(err.value) == "The file is empty."


def test_case27b_header_without_rows() -> None:
    with pytest.raises(DatasetError) as err:
        import_csv(case("case27b.csv"))
    assert str(err.value) == "The file has column names (x1, x2, y) but no data rows."


def test_case29_file_above_the_limit_is_refused(tmp_path: Path) -> None:
    script = case("case29_make_large_csv.py")
    subprocess.run([sys.executable, str(script), "1"], cwd=tmp_path, check=True)
    path = tmp_path / "case29_large.csv"
    with pytest.raises(
        DatasetError, match=r"This file is 1\.0 MB; the limit is 0\.5 MB"
    ):
        import_csv(path, CsvOptions(max_bytes=512 * 1024))
    with pytest.raises(DatasetError, match=r"the limit is 0\.5 MB"):
        import_csv(path.read_bytes(), CsvOptions(max_bytes=512 * 1024))
    data, _ = import_csv(path)
    assert data.n_features == 9 and data.task == "binary"


def test_case31_missing_and_infinite_values_reported_per_column() -> None:
    path = case("case31.csv")
    with pytest.raises(
        DatasetError, match=r"x1: 2 missing \(rows 2, 4\); x2: 2 infinite \(rows 3, 5\)"
    ) as err:
        import_csv(path)
    assert "missing='drop'" in str(err.value) and "header is not counted" in str(
        err.value
    )

    data, report = import_csv(path, whole(missing="drop", task="regression"))
    assert [(d.row, d.line, d.reason) for d in report.rows_dropped] == [
        (2, 3, "x1 missing"),
        (3, 4, "x2 infinite"),
        (4, 5, "x1 missing"),
        (5, 6, "x2 infinite"),
    ]
    np.testing.assert_array_equal(data.X_train, [[1.0, 2.0]])

    # As a classification task, dropping leaves one class: say so.
    with pytest.raises(
        DatasetError, match=r"After dropping 4 row\(s\).*only one value"
    ):
        import_csv(path, whole(missing="drop"))

    data, report = import_csv(path, whole(missing="impute_mean"))
    expected = [[1, 2], [11 / 3, 3], [4, 10 / 3], [11 / 3, 5], [6, 10 / 3]]
    np.testing.assert_allclose(data.X_train, expected)
    assert np.isfinite(data.X_train).all()
    assert any("filled with the mean of the training rows" in n for n in report.notices)


def test_case32_text_feature_is_one_hot_encoded() -> None:
    data, report = import_csv(case("case32.csv"), whole())
    assert report.one_hot == {
        "protocol": ("protocol_icmp", "protocol_tcp", "protocol_udp")
    }
    assert data.feature_names == (
        "duration",
        "protocol_icmp",
        "protocol_tcp",
        "protocol_udp",
        "bytes",
    )
    np.testing.assert_array_equal(data.X_train[:, 1:4].sum(axis=1), 1.0)
    np.testing.assert_array_equal(data.X_train[0], [0, 0, 1, 0, 181])
    assert any("3 → 5 features" in n for n in report.notices)
    assert report.columns == ("duration", "protocol", "bytes", "label")  # raw kept

    with pytest.raises(
        DatasetError, match=r"Column 'protocol' holds text such as 'tcp'"
    ):
        import_csv(case("case32.csv"), CsvOptions(categorical="error"))


def test_case34_duplicates_reported_and_kept_on_one_side() -> None:
    path = case("case34.csv")
    _, report = import_csv(path, whole())
    assert report.exact_duplicates == (5, 6, 7)
    assert report.conflicting_rows == ((4, 8),)
    assert any(
        n.startswith(
            "3 exact duplicate rows, 1 pair with the same features but different labels"
        )
        for n in report.notices
    )

    for seed in range(20):
        data, _ = import_csv(path, CsvOptions(seed=seed, standardize=False))
        train = {tuple(r) for r in data.X_train}
        test = {tuple(r) for r in data.X_test}
        assert data.n_test > 0 and not train & test

    data, report = import_csv(path, whole(drop_duplicates=True))
    assert data.n_train == 5
    assert [(d.row, d.reason) for d in report.rows_dropped] == [
        (5, "exact duplicate of row 1"),
        (6, "exact duplicate of row 2"),
        (7, "exact duplicate of row 3"),
    ]


def test_case35_wide_file_loads_fast_with_overfit_notice(tmp_path: Path) -> None:
    script = case("case35_make_wide_csv.py")
    subprocess.run([sys.executable, str(script)], cwd=tmp_path, check=True)
    start = time.perf_counter()
    data, report = import_csv(tmp_path / "case35_wide.csv")
    elapsed = time.perf_counter() - start
    assert elapsed < 10.0, f"a 20 x 5000 file took {elapsed:.1f} s"
    assert data.n_features == 5000 and data.n_train + data.n_test == 20
    assert any(
        n.startswith("5000 features for 20 rows — the network will overfit")
        for n in report.notices
    )
