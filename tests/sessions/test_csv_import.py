"""Test CSV import: detection, every kind of malformed input, and the report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.data import Dataset
from sessions.csv_import import CsvOptions, CsvReport, import_csv
from sessions.errors import DatasetError


def load(text: str | bytes, **options: Any) -> tuple[Dataset, CsvReport]:
    """Import CSV text; all rows in training, unscaled, unless options say otherwise."""
    options.setdefault("test_fraction", 0)
    options.setdefault("standardize", False)
    raw = text.encode() if isinstance(text, str) else text
    return import_csv(raw, CsvOptions(**options))


# -- sources ----------------------------------------------------------------


def test_import_csv_reads_paths_and_bytes_alike(tmp_path: Path) -> None:
    text = "a,b,y\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n"
    path = tmp_path / "small.csv"
    path.write_text(text)
    from_path, report = import_csv(path, CsvOptions(test_fraction=0))
    from_bytes, _ = import_csv(text.encode(), CsvOptions(test_fraction=0))
    assert from_path.content_hash() != ""
    np.testing.assert_array_equal(from_path.X_train, from_bytes.X_train)
    assert report.source == "small.csv" and from_path.name == "small.csv"
    assert import_csv(str(path))[1].rows_read == 4


def test_import_csv_missing_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"There is no file at .*nope\.csv"):
        import_csv(tmp_path / "nope.csv")
    with pytest.raises(DatasetError, match=r"pass its bytes"):
        import_csv("x,y\n1,2\n")
    with pytest.raises(DatasetError, match="is a folder"):
        import_csv(tmp_path)


def test_import_csv_rejects_a_source_of_the_wrong_type() -> None:
    with pytest.raises(DatasetError, match="file path or the file's bytes; got int"):
        import_csv(42)  # type: ignore[arg-type]


def test_import_csv_file_above_max_bytes_gives_size_and_limit() -> None:
    raw = b"x,y\n" + b"1,0\n" * 400_000  # 1.5 MB
    with pytest.raises(
        DatasetError, match=r"This file is 1\.5 MB; the limit is 1\.0 MB"
    ):
        import_csv(raw, CsvOptions(max_bytes=1024 * 1024))


# -- not text, encodings -----------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"PK\x03\x04\x14\x00\x06\x00" + bytes(200), "Excel .xlsx"),
        (b"\x89PNG\r\n\x1a\n" + bytes(100), "PNG image"),
        (b"%PDF-1.7\n", "PDF document"),
        (b"\x1f\x8b\x08\x00" + bytes(50), "gzip"),
        (bytes(range(256)) * 4, "NUL bytes"),
        (b"\x01\x02\x03\x04\x05\x06x,y\n1,2\n", "control characters"),
    ],
)
def test_import_csv_refuses_files_that_are_not_text(raw: bytes, words: str) -> None:
    with pytest.raises(DatasetError, match="This file is not text") as err:
        import_csv(raw)
    assert words in str(err.value)


def test_import_csv_falls_back_to_cp1252_and_says_so() -> None:
    raw = "city,y\nSão Paulo,1\nZürich,0\nSão Paulo,1\nZürich,0\n".encode("cp1252")
    data, report = load(raw, target="city")
    assert report.encoding == "cp1252"
    assert data.class_names == ("São Paulo", "Zürich")
    assert any("not valid UTF-8" in n and "cp1252" in n for n in report.notices)


def test_import_csv_reads_utf16_with_byte_order_mark() -> None:
    raw = "x,y\n1,0\n2,1\n3,0\n4,1\n".encode("utf-16")
    data, report = load(raw)
    assert report.encoding == "utf-16" and data.X_train.shape == (4, 1)


def test_import_csv_wrong_encoding_override_names_the_byte() -> None:
    raw = "x,name\n1,é\n".encode()
    with pytest.raises(DatasetError, match=r"cannot be read as 'ascii': byte 0xc3"):
        load(raw, encoding="ascii")


# -- delimiters, decimals, header --------------------------------------------


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_import_csv_detects_the_delimiter(delimiter: str) -> None:
    rows = ["a,b,label", "1.5,2,x", "3,4.25,y", "5,6,x", "7,8,y"]
    text = "\n".join(r.replace(",", delimiter) for r in rows) + "\n"
    data, report = load(text)
    assert report.delimiter == delimiter and report.decimal == "."
    np.testing.assert_allclose(data.X_train[:, 0], [1.5, 3, 5, 7])


def test_import_csv_delimiter_inside_quotes_stays_in_the_value() -> None:
    text = 'name,x,y\n"Smith, J",1,0\n"Lee, K",2,1\n"Smith, J",3,0\n"Lee, K",4,1\n'
    data, report = load(text)
    assert report.one_hot == {"name": ("name_Lee, K", "name_Smith, J")}
    assert data.X_train.shape == (4, 3)


def test_import_csv_excel_sep_hint_line_sets_the_delimiter() -> None:
    data, report = load("sep=;\nx;y\n1;0\n2;1\n3;0\n4;1\n")
    assert report.delimiter == ";" and report.columns == ("x", "y")
    assert any("spreadsheet hint" in n for n in report.notices)


def test_import_csv_without_header_names_the_columns() -> None:
    data, report = load("1,2,0\n3,4,1\n5,6,0\n7,8,1\n")
    assert not report.header
    assert report.columns == ("column_1", "column_2", "column_3")
    assert data.n_train == 4
    assert any("No header row was found" in n for n in report.notices)


def test_import_csv_header_override_reads_the_first_row_as_data() -> None:
    data, report = load("a,b,y\nc,d,z\ne,f,z\n", header=False)
    assert report.rows_read == 3 and report.columns[0] == "column_1"


def test_import_csv_cleans_empty_duplicate_and_padded_column_names() -> None:
    _, report = load(" x ,x,,y\n1,2,3,0\n4,5,6,1\n7,8,9,0\n1,1,1,1\n")
    assert report.columns == ("x", "x_2", "column_3", "y")
    notice = next(n for n in report.notices if n.startswith("Column names"))
    assert "spaces around 'x'" in notice and "column 3 has no name" in notice


def test_import_csv_ignores_a_trailing_delimiter_on_every_line() -> None:
    data, report = load("x,y,\n1,0,\n2,1,\n3,0,\n4,1,\n")
    assert report.columns == ("x", "y")
    assert data.feature_names == ("x",) and data.target_name == "y"
    assert any("no value in any row were ignored" in n for n in report.notices)


def test_import_csv_extra_empty_fields_at_line_ends_are_trimmed() -> None:
    data, report = load("x,y\n1,0,,\n2,1\n3,0,\n4,1\n")
    assert data.n_train == 4
    assert any("extra empty fields" in n for n in report.notices)


def test_import_csv_decimal_comma_is_only_guessed_without_a_comma_delimiter() -> None:
    data, report = load("x;y\n1,5;0\n2,5;1\n3,5;0\n4,5;1\n")
    assert report.decimal == ","
    np.testing.assert_allclose(data.X_train[:, 0], [1.5, 2.5, 3.5, 4.5])
    with pytest.raises(DatasetError, match="must differ"):
        CsvOptions(delimiter=",", decimal=",")


# -- malformed rows and cells -------------------------------------------------


def test_import_csv_ragged_rows_are_named_with_row_and_line() -> None:
    text = "x1,x2,y\n1,2,0\n\n3,4,5,1\n6,7\n"
    with pytest.raises(DatasetError) as err:
        load(text)
    message = str(err.value)
    assert "2 row(s) do not have 3 fields like the header (x1, x2, y)" in message
    assert "row 2 (line 4) has 4" in message and "row 3 (line 5) has 2" in message
    assert "decimal comma" in message


def test_import_csv_unclosed_quote_is_a_clear_error() -> None:
    with pytest.raises(DatasetError, match="fields like the header"):
        load('x,y\n1,0\n"2,1\n3,0\n')


def test_import_csv_unclosed_quote_runs_to_the_end_of_the_file() -> None:
    with pytest.raises(DatasetError, match=r"row 2 \(line 3\) has 1\."):
        load('x,y\n1,0\n"2,1\n3,0\n')


def test_import_csv_quoted_line_breaks_keep_row_and_line_numbers() -> None:
    text = 'note,x,y\n"two\nlines, with a comma",1,0\n"b",2,1\n\n"c",,0\n"d",4,1\n'
    data, report = load(text, missing="drop")
    assert report.blank_lines == (5,)
    assert [(d.row, d.line, d.reason) for d in report.rows_dropped] == [
        (3, 6, "x missing")
    ]
    assert "note_two\nlines, with a comma" in data.feature_names


def test_import_csv_header_with_a_quoted_line_break_keeps_every_column() -> None:
    _, report = load('a,"b\nc",y\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n')
    assert report.columns == ("a", "b\nc", "y")


def test_import_csv_ragged_row_after_a_quoted_line_break_names_its_line() -> None:
    with pytest.raises(DatasetError, match=r"row 2 \(line 5\) has 3\."):
        load('x,y\n"1\n\n",0\n2,1,5\n')


def test_import_csv_reads_a_cell_longer_than_the_csv_module_limit() -> None:
    long = "x" * 200_000
    data, report = load(f'note,y\n"{long}",1\nb,0\n{long},1\nb,0\n')
    assert report.columns == ("note", "y") and data.n_train == 4
    assert report.one_hot == {"note": ("note_b", f"note_{long}")}


def test_import_csv_keeps_the_sign_of_negative_zero() -> None:
    data, _ = load("x,y\n-0,1\n0,0\n-0,1\n0,0\n")
    assert np.signbit(data.X_train[:, 0]).tolist() == [True, False, True, False]


def test_import_csv_numeric_column_with_junk_names_the_cells() -> None:
    text = "x,y\n1,0\n2,1\nabc,0\n4,1\n1.2.3,0\n6,1\n"
    with pytest.raises(DatasetError) as err:
        load(text)
    message = str(err.value)
    assert "Column 'x' holds numbers, but 2 cell(s) are not numbers" in message
    assert "'abc' (row 3)" in message and "'1.2.3' (row 5)" in message


def test_import_csv_id_like_text_column_is_not_one_hot_encoded() -> None:
    rows = "".join(f"user{i},{i % 2},{i % 2}\n" for i in range(30))
    with pytest.raises(DatasetError, match=r"Column 'id' holds text with 30 different"):
        load("id,x,y\n" + rows)


def test_import_csv_single_column_is_refused() -> None:
    with pytest.raises(DatasetError, match=r"only one column \('y'\)"):
        load("y\n1\n2\n3\n")


def test_import_csv_only_blank_lines_is_an_empty_file() -> None:
    with pytest.raises(DatasetError, match="The file is empty"):
        load("\n  \n\n")
    with pytest.raises(DatasetError, match="The file is empty: its 2 lines hold"):
        load(",,\n,,\n")


# -- target -------------------------------------------------------------------


def test_import_csv_unknown_target_lists_the_columns() -> None:
    with pytest.raises(DatasetError) as err:
        load("a,b,c\n1,2,3\n", target="price")
    assert str(err.value) == (
        "There is no column 'price'. The columns are: a, b, c. Pick one of them as "
        "the target."
    )


def test_import_csv_target_with_missing_values_is_refused_or_dropped() -> None:
    text = "x,y\n1,a\n2,\n3,b\n4,a\n5,NA\n6,b\n"
    with pytest.raises(
        DatasetError, match=r"target column 'y' has 2 missing value\(s\) \(rows 2, 5\)"
    ):
        load(text)
    with pytest.raises(DatasetError, match="missing"):
        load(text, missing="impute_mean")
    data, report = load(text, missing="drop")
    assert data.n_train == 4
    assert [(d.row, d.reason) for d in report.rows_dropped] == [
        (2, "target 'y' missing"),
        (5, "target 'y' missing"),
    ]


@pytest.mark.parametrize(
    ("column", "task", "mapping"),
    [
        ("0,1,0,1", "binary", {"0": 0, "1": 1}),
        ("yes,no,no,yes", "binary", {"no": 0, "yes": 1}),
        ("1,2,3,1,2,3", "multiclass", {"1": 0, "2": 1, "3": 2}),
        ("10,2,10,2", "binary", {"2": 0, "10": 1}),
        ("1.5,2.5,3.5,4.5", "regression", {}),
        ("1,2,3,4", "regression", {}),
        ("1,2,3,4,5,6,7,8,9,10,11,1,2,3,4,5,6,7,8,9,10,11", "regression", {}),
    ],
)
def test_import_csv_infers_the_task_from_the_target(
    column: str, task: str, mapping: dict[str, int]
) -> None:
    values = column.split(",")
    text = "x,t\n" + "".join(f"{i},{v}\n" for i, v in enumerate(values))
    data, report = load(text)
    assert (data.task, report.task) == (task, task)
    assert report.class_mapping == mapping
    assert report.task_reason.startswith("Task:")


def test_import_csv_task_option_overrides_the_inference() -> None:
    text = "x,t\n0,1\n1,2\n2,3\n3,4\n"
    data, _ = load(text, task="multiclass")
    assert data.task == "multiclass" and data.y_train.shape == (4, 4)
    data, _ = load("x,t\n0,0\n1,1\n2,0\n3,1\n", task="regression")
    assert data.task == "regression"
    data, _ = load("x,t\n0,a\n1,b\n2,a\n3,b\n", task="multiclass")
    assert data.task == "multiclass" and data.y_train.shape == (4, 2)


def test_import_csv_binary_task_with_three_classes_is_refused() -> None:
    with pytest.raises(DatasetError, match=r"Task binary needs exactly 2 classes"):
        load("x,t\n0,a\n1,b\n2,c\n", task="binary")


def test_import_csv_regression_on_text_target_is_refused() -> None:
    with pytest.raises(DatasetError, match=r"holds text such as 'a' \(row 1\)"):
        load("x,t\n0,a\n1,b\n", task="regression")


# -- split, report ---------------------------------------------------------------


def test_import_csv_split_is_stratified_and_seeded() -> None:
    rows = "".join(f"{i},{i * 2},{'abc'[i % 3]}\n" for i in range(30))
    data, _ = import_csv(f"x1,x2,y\n{rows}".encode())
    assert (data.n_train, data.n_test) == (24, 6)
    np.testing.assert_array_equal(data.y_test.sum(axis=0), [2, 2, 2])
    again, _ = import_csv(f"x1,x2,y\n{rows}".encode())
    assert again.content_hash() == data.content_hash()
    other, _ = import_csv(f"x1,x2,y\n{rows}".encode(), CsvOptions(seed=1))
    assert other.content_hash() != data.content_hash()


def test_import_csv_report_is_json_ready_and_kept_in_the_dataset() -> None:
    data, report = load("x,kind\n1,a\n2,b\n,a\n4,b\n4,b\n", missing="drop")
    as_dict = report.to_dict()
    json.dumps(as_dict)
    json.dumps(data.describe())
    assert data.info["csv"] == as_dict
    assert as_dict["rows_dropped"] == [{"row": 3, "line": 4, "reason": "x missing"}]
    assert data.info["source"] == "Imported from the CSV file 'uploaded file'."


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"task": "clustering"}, "task must be one of"),
        ({"missing": "ignore"}, "missing must be one of"),
        ({"categorical": "label"}, "categorical must be one of"),
        ({"decimal": ";"}, "decimal must be one of"),
        ({"delimiter": ",,"}, "delimiter must be one character"),
        ({"header": "yes"}, "header must be one of"),
        ({"encoding": "klingon"}, "Unknown encoding 'klingon'"),
        ({"max_bytes": 0}, "max_bytes must be a whole number"),
        ({"standardize": "no"}, "standardize must be True or False"),
        ({"target": 3}, "target must be a column name"),
        ({"seed": -1}, "seed must be a whole number >= 0"),
        ({"test_fraction": 1.0}, "test fraction must be a number from 0"),
    ],
)
def test_csv_options_reject_bad_values(options: dict[str, Any], words: str) -> None:
    with pytest.raises(DatasetError, match=words):
        CsvOptions(**options)


def test_import_csv_test_fraction_out_of_range_is_refused() -> None:
    with pytest.raises(DatasetError, match=r"test fraction must be a number from 0"):
        load("x,y\n1,0\n2,1\n", test_fraction=1.0)


# -- properties -------------------------------------------------------------------

JUNK = ["", " ", "NaN", "inf", "-inf", "abc", "1,5", '"', "1e400", "?", "1_0", "١"]
cell = st.one_of(
    st.integers(-1000, 1000).map(str),
    st.floats(-1e6, 1e6, allow_nan=False).map(lambda v: f"{v:.4g}"),
    st.sampled_from(JUNK),
    st.text(alphabet="ab ;,|\t\"'x\r\n", max_size=4),
)


@st.composite
def csv_texts(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """Draw a small CSV text (random table, delimiter, junk) and import options."""
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    n_cols = draw(st.integers(1, 4))
    n_rows = draw(st.integers(0, 8))
    header = [f"c{j}" for j in range(n_cols)] if draw(st.booleans()) else []
    rows = [[draw(cell) for _ in range(n_cols)] for _ in range(n_rows)]
    lines = [delimiter.join(r) for r in ([header] if header else []) + rows]
    text = draw(st.sampled_from(["\n", "\r\n"])).join(lines)
    options = {
        "test_fraction": draw(st.sampled_from([0, 0.2, 0.5])),
        "missing": draw(st.sampled_from(["error", "drop", "impute_mean"])),
        "drop_duplicates": draw(st.booleans()),
        "task": draw(st.sampled_from([None, None, "regression", "classification"])),
    }
    return text, options


def check_valid(data: Dataset, report: CsvReport) -> None:
    """Assert that an import gave finite arrays with consistent shapes."""
    for arr in (data.X_train, data.y_train, data.X_test, data.y_test):
        assert np.isfinite(arr).all()
    assert data.X_train.shape[0] == data.y_train.shape[0] >= 1
    assert data.X_test.shape[0] == data.y_test.shape[0]
    assert data.X_train.shape[1] == data.X_test.shape[1] == len(data.feature_names)
    assert report.rows_used == data.n_train + data.n_test
    assert report.rows_used + len(report.rows_dropped) == report.rows_read
    json.dumps(report.to_dict())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(csv_texts())
def test_import_csv_gives_a_valid_dataset_or_a_dataset_error(
    drawn: tuple[str, dict[str, Any]],
) -> None:
    text, options = drawn
    try:
        data, report = import_csv(text.encode(), CsvOptions(**options))
    except DatasetError as err:
        assert str(err)
        return
    check_valid(data, report)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_import_csv_survives_arbitrary_bytes(raw: bytes) -> None:
    try:
        data, report = import_csv(raw)
    except DatasetError as err:
        assert str(err)
        return
    check_valid(data, report)


# -- advice every reader can follow: the app control and the CLI flag ---------


def _refusal(text: str, **options: Any) -> str:
    with pytest.raises(DatasetError) as err:
        load(text, **options)
    return str(err.value)


def _notes(text: str, **options: Any) -> str:
    return " ".join(load(text, **options)[1].notices)


@pytest.mark.parametrize(
    ("text", "options", "words"),
    [
        ("a,y\n1,0\n2,\n3,1\n4,0\n", {}, ["Missing values", "--missing drop"]),
        (
            "a,b,y\n1,,0\n2,3,1\n4,5,0\n6,7,1\n",
            {},
            ["Missing values", "--missing drop", "--missing impute_mean"],
        ),
        (
            "a,b,y\n1,,0\n,2,1\n",
            {"missing": "drop"},
            ["Missing values", "--missing impute_mean"],
        ),
        ("x,t\n0,a\n1,b\n2,c\n", {"task": "binary"}, ["Task", "--task multiclass"]),
        (
            "x,t\n0,a\n1,b\n",
            {"task": "regression"},
            ["Task", "--task classification"],
        ),
        ("x,t\n0,1\n1,1\n2,1\n3,1\n", {}, ["Task", "--task regression"]),
        (
            "x,t\n" + "".join(f"{i},id{i}\n" for i in range(101)),
            {},
            ["Task", "--task regression"],
        ),
    ],
    ids=lambda v: v[:12] if isinstance(v, str) else None,
)
def test_refusals_name_the_app_control_and_the_cli_flag(
    text: str, options: dict[str, Any], words: list[str]
) -> None:
    message = _refusal(text, **options)
    for word in words:
        assert word in message, (word, message)
    # The Python argument alone is not advice a CLI or app user can follow.
    assert "import with missing=" not in message
    assert "set task=" not in message.lower()


def test_notes_name_the_app_control_and_the_cli_flag() -> None:
    header = _notes("a,b,y\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n")
    assert "Header" in header and "--no-header" in header, header
    assert "Set header=False" not in header
    no_header = _notes("1,2,0\n3,4,1\n5,6,0\n7,8,1\n")
    assert "Header" in no_header and "--header" in no_header, no_header
    assert "Set header=True" not in no_header
    rows = "".join(f"{i},{i % 4}\n" for i in range(40))
    whole = _notes("x,t\n" + rows)
    assert "--task regression" in whole and "Task" in whole, whole
    many = _notes("x,t\n" + "".join(f"{i},{i * 7 % 13}\n" for i in range(14)))
    assert "--task multiclass" in many and "Task" in many, many
    assert "set task=" not in (whole + many).lower()


def test_one_hot_note_gives_advice_without_a_hidden_option() -> None:
    notes = _notes("c,y\nred,0\nblue,1\nred,0\nblue,1\n")
    assert "one-hot" in notes
    assert "Set categorical='error'" not in notes
    assert "remove the column" in notes


def test_counts_of_one_are_singular() -> None:
    notes = _notes("c,y\nred,0\nred,1\nred,0\nred,1\n")
    assert "1 → 1 features" not in notes
