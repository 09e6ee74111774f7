"""Round trips: a known table, written the many ways real CSV files are, reads back.

``test_csv_import.py`` throws junk at the importer and checks that it either
gives a well-formed dataset or a `DatasetError`. These tests know the answer:
hypothesis draws a table of numbers and labels, writes it with any delimiter,
decimal mark, encoding, line ending, quoting, padding, missing-value marker and
stray blank lines, and the import must give back exactly that table (values,
column names, class coding, dropped rows with their numbers), or refuse it
with a `DatasetError` only where the file really is ambiguous.
"""

from __future__ import annotations

import codecs
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sessions.csv_import import MISSING_TOKENS, CsvOptions, import_csv
from sessions.errors import DatasetError

ROUNDTRIP = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

#: Column names: never a number, may hold spaces, accents, quotes and delimiters.
NAME = st.text(
    alphabet=st.sampled_from(list("abcxyzé ü_-.()'\";,|") + ["\u00a0", "\u4e2d"]),
    min_size=1,
    max_size=8,
).filter(lambda s: s.strip() and s.strip().lower() not in MISSING_TOKENS)

#: Class labels: words (one with a space), never numbers or missing markers.
LABELS = st.lists(
    st.sampled_from(["yes", "no", "Very Good", "Fair", "é", "\u4e2d", "a;b", 'q"t']),
    min_size=2,
    max_size=4,
    unique=True,
)

VALUE = st.one_of(
    st.integers(-10_000, 10_000).map(float),
    st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False),
    st.sampled_from([0.5, -0.25, 1e-7, 123456.789, -0.0]),
)


@dataclass
class Written:
    """A CSV file's bytes and what importing it must give."""

    raw: bytes
    names: list[str]
    X: np.ndarray  # features of the rows that are kept
    targets: list[Any]  # labels (classification) or numbers (regression)
    task: str
    delimiter: str
    decimal: str
    encoding: str
    blank_lines: list[int] = field(default_factory=list)
    numbers: list[str] = field(default_factory=list)  # numbers as written
    dropped_rows: list[int] = field(default_factory=list)


def _number(value: float, decimal: str, style: str) -> str:
    """Write a number as spreadsheets and scripts do; it must read back exactly.

    ``style`` is ``repr``, ``g`` or ``e``, or ``grouped:<separator>`` for
    thousands separated by a space, a no-break space or an apostrophe; ``minus``
    writes negative numbers with the minus sign U+2212.
    """
    value = float(value)
    if style.startswith("grouped:"):
        text = format(value, ",").replace(",", style.removeprefix("grouped:"))
    elif style == "minus":
        text = repr(value).replace("-", "\u2212")
    else:
        text = {"repr": repr(value), "g": f"{value:.17g}", "e": f"{value:.16e}"}[style]
    return text.replace(".", ",") if decimal == "," else text


def _quote(cell: str, delimiter: str, always: bool) -> str:
    if always or delimiter in cell or '"' in cell or cell != cell.strip():
        return '"' + cell.replace('"', '""') + '"'
    return cell


@st.composite
def written_tables(draw: st.DrawFn, with_gaps: bool = False) -> Written:
    """Draw a table and write it as a CSV file in one of many real-world styles."""
    n_features = draw(st.integers(1, 3))
    n_rows = draw(st.integers(2, 8))
    names = draw(
        st.lists(NAME, min_size=n_features + 1, max_size=n_features + 1).filter(
            lambda ns: len({n.strip() for n in ns}) == len(ns)
        )
    )
    names = [n.strip() for n in names]
    X = np.array(
        [[draw(VALUE) for _ in range(n_features)] for _ in range(n_rows)], dtype=float
    )
    task = draw(st.sampled_from(["classification", "regression"]))
    if task == "classification":
        labels = draw(LABELS)
        targets: list[Any] = [labels[k % len(labels)] for k in range(n_rows)]
        targets = draw(st.permutations(targets))
    else:
        targets = [draw(VALUE) for _ in range(n_rows)]

    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    decimal = "." if delimiter == "," else draw(st.sampled_from([".", ","]))
    style = draw(
        st.sampled_from(
            ["repr", "g", "e", "minus", "grouped: ", "grouped:\u00a0", "grouped:'"]
        )
    )
    quote_all = draw(st.booleans())
    pad = draw(st.sampled_from(["", " ", "  "]))
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    encoding = draw(
        st.sampled_from(
            ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "cp1252"]
        )
    )
    if encoding == "cp1252":
        style = style.replace("minus", "repr")
        names = [n.replace("\u4e2d", "z") for n in names]
        assume(len(set(names)) == len(names))
        targets = [
            t.replace("\u4e2d", "z") if isinstance(t, str) else t for t in targets
        ]

    def cell(text: str, numeric: bool) -> str:
        quoted = _quote(text, delimiter, quote_all and not numeric)
        # Spaces around a value, as hand-aligned files have; never outside
        # quotes (no CSV writer puts them there, and readers disagree on them).
        return quoted if quoted != text else f"{pad}{text}{pad}"

    lines = [delimiter.join(cell(n, False) for n in names)]
    gaps = np.zeros(X.shape, dtype=bool)
    if with_gaps:
        for i in range(n_rows):
            if draw(st.integers(0, 3)) == 0:
                gaps[i, draw(st.integers(0, n_features - 1))] = True
        assume(gaps.any() and not gaps.any(axis=1).all())
    missing = draw(st.sampled_from(["", "NA", "nan", "?", "NULL", "n/a"]))
    numbers = [_number(v, decimal, style) for v in X.ravel()]
    for i in range(n_rows):
        cells = [
            cell(missing if gaps[i, j] else numbers[i * n_features + j], True)
            for j in range(n_features)
        ]
        t = targets[i]
        cells.append(
            cell(t, False)
            if isinstance(t, str)
            else cell(_number(t, decimal, style), True)
        )
        lines.append(delimiter.join(cells))

    # Stray lines: empty, spaces only, delimiters only, anywhere after the header.
    blank_lines = []
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(1, len(lines) - 1))
        lines.insert(at, draw(st.sampled_from(["", "   ", delimiter * n_features])))
    for k, line in enumerate(lines):
        if not line.replace(delimiter, "").strip():
            blank_lines.append(k + 1)
    # A title or comment line above the table, as some exports write.
    title = draw(st.sampled_from(["", "# exported by a tool", "Sales report 2024"]))
    if title and n_features >= 1 and n_rows >= 2:
        lines.insert(0, title)
        blank_lines = [k + 1 for k in blank_lines]
    text = newline.join(lines) + draw(st.sampled_from(["", newline]))
    raw = text.encode(encoding)

    kept = ~gaps.any(axis=1)
    return Written(
        raw=raw,
        names=names,
        X=X[kept],
        targets=[t for t, k in zip(targets, kept, strict=True) if k],
        task=task,
        delimiter=delimiter,
        decimal=decimal,
        encoding=encoding,
        blank_lines=blank_lines,
        numbers=[t for t, gap in zip(numbers, gaps.ravel(), strict=True) if not gap],
        dropped_rows=[int(i) + 1 for i in np.flatnonzero(~kept)],
    )


def _import(w: Written, **options: Any) -> Any:
    opts = CsvOptions(test_fraction=0, standardize=False, task=w.task, **options)
    return import_csv(w.raw, opts)


def _check(w: Written, data: Any, report: Any) -> None:
    """Assert the import gave back the written table exactly."""
    assert report.columns == tuple(w.names)
    assert report.delimiter == w.delimiter
    if w.decimal == "," and any("," in t for t in w.numbers):
        assert report.decimal == ","
    assert codecs.lookup(report.encoding).name in {
        codecs.lookup(w.encoding).name,
        "utf-8",
        "utf-8-sig",
        "utf-16",
    }
    np.testing.assert_array_equal(data.X_train, w.X)
    assert np.signbit(data.X_train).tolist() == np.signbit(w.X).tolist()
    assert list(report.blank_lines) == w.blank_lines
    if w.task == "regression":
        np.testing.assert_array_equal(data.y_train[:, 0], np.array(w.targets, float))
    else:
        classes = sorted(set(w.targets))
        assert list(data.class_names) == classes
        index = (
            data.y_train[:, 0].astype(int)
            if data.task == "binary"
            else np.argmax(data.y_train, axis=1)
        )
        assert [classes[k] for k in index] == w.targets


@ROUNDTRIP
@given(written_tables())
def test_any_well_formed_file_reads_back_exactly(w: Written) -> None:
    data, report = _import(w)
    _check(w, data, report)


@ROUNDTRIP
@given(written_tables(with_gaps=True))
def test_gaps_are_dropped_by_row_number_and_the_rest_reads_back(w: Written) -> None:
    with pytest.raises(DatasetError, match="missing") as err:
        _import(w)
    for row in w.dropped_rows[:10]:
        assert str(row) in str(err.value)
    try:
        data, report = _import(w, missing="drop")
    except DatasetError as err2:
        # Dropping may leave one class only: the message must say so.
        assert "only one value" in str(err2) and w.task == "classification"
        return
    _check(w, data, report)
    assert [d.row for d in report.rows_dropped] == w.dropped_rows


@ROUNDTRIP
@given(
    st.lists(st.integers(-3, 12), min_size=4, max_size=10),
    st.sampled_from(["{:d}", "{:.1f}", " {:d} ", '"{:d}"', "{:+d}", "{:.2e}"]),
)
def test_numeric_class_labels_are_coded_by_value_however_written(
    labels: list[int], style: str
) -> None:
    assume(len(set(labels)) >= 2)
    rows = "".join(f"{k},{style.format(v)}\n" for k, v in enumerate(labels))
    raw = f"x,label\n{rows}".encode()
    data, report = import_csv(
        raw, CsvOptions(task="classification", test_fraction=0, standardize=False)
    )
    classes = sorted(set(labels))
    assert report.class_mapping == {str(c): k for k, c in enumerate(classes)}
    if data.task == "binary":
        index = data.y_train[:, 0].astype(int)
    else:
        index = np.argmax(data.y_train, axis=1)
    assert [classes[k] for k in index] == labels


@pytest.mark.parametrize(
    ("raw", "X", "decimal"),
    [
        # A decimal comma before an exponent was text, so the column was refused.
        (b"a;y\n1,5e-3;1,0\n2,0E+01;2,5\n", [[0.0015], [20.0]], ","),
        # Thousands separators, both conventions, with a notice.
        (b"a;y\n1.234,5;1\n2.000.000;2\n", [[1234.5], [2000000.0]], ","),
        (b'a,y\n"1,234.5",1\n"2,000,000",2\n', [[1234.5], [2000000.0]], "."),
    ],
)
def test_found_by_round_trips_decimal_marks(
    raw: bytes, X: list[list[float]], decimal: str
) -> None:
    data, report = import_csv(
        raw, CsvOptions(task="regression", test_fraction=0, standardize=False)
    )
    np.testing.assert_array_equal(data.X_train, X)
    assert report.decimal == decimal
    if b"2,000,000" in raw or b"2.000.000" in raw:
        assert any("thousands separators" in n for n in report.notices)


def test_one_group_of_thousands_stays_ambiguous_and_is_refused_with_a_decimal() -> None:
    # "1.234" next to "2,5": 1.234 or 1234? Neither is guessed silently.
    with pytest.raises(DatasetError, match=r"'2,5' \(row 2\)"):
        import_csv(b"a;y\n1.234;0\n2,5;1\n3;0\n")


@pytest.mark.parametrize(
    ("raw", "columns"),
    [
        # Both delimiters split every line in two; only ';' leaves no malformed
        # quotes, no empty names and no delimiter inside a text cell.
        (b'";";,\n0,0;yes\n0,0;no\n', (";", ",")),
        (b'";";",;"\n0,0;yes\n0,0;no\n', (";", ",;")),
        (b";\t,;\n0,0\tyes\n0,0\tno\n", (";", ",;")),
        (b";|,;\n0,0|yes\n0,0|no\n", (";", ",;")),
        (b"a,b;c\n0,0;yes\n0,0;no\n", ("a,b", "c")),
    ],
)
def test_found_by_round_trips_ambiguous_delimiters(
    raw: bytes, columns: tuple[str, ...]
) -> None:
    _, report = import_csv(raw, CsvOptions(test_fraction=0, standardize=False))
    assert report.columns == columns


@pytest.mark.parametrize(
    ("raw", "X", "words"),
    [
        # Encoding: UTF-16 without a byte-order mark was "not text: NUL bytes".
        ("a,y\n1,0\n2,1\n".encode("utf-16-le"), [[1.0], [2.0]], "UTF-16-LE"),
        ("a,y\n1,0\n2,1\n".encode("utf-16-be"), [[1.0], [2.0]], "UTF-16-BE"),
        # Number formats: thousands spaces and apostrophes, the minus sign −.
        ("a;y\n1\u00a0000,5;0\n2 000;1\n".encode(), [[1000.5], [2000.0]], "1000.5"),
        ("a,y\n1'000.25,0\n\u22122,1\n".encode(), [[1000.25], [-2.0]], "1000.25"),
        # Stray lines: a title or comment above the header is skipped and named.
        (b"# exported by a tool\na,y\n1,0\n2,1\n", [[1.0], [2.0]], "line 1"),
        (b"Report\nMade today\na;y\n1;0\n2;1\n", [[1.0], [2.0]], "2 lines above"),
    ],
    ids=["utf16le", "utf16be", "spaces", "apostrophe-minus", "comment", "titles"],
)
def test_found_by_probing_encodings_number_formats_and_stray_lines(
    raw: bytes, X: list[list[float]], words: str
) -> None:
    data, report = import_csv(
        raw, CsvOptions(task="regression", test_fraction=0, standardize=False)
    )
    np.testing.assert_array_equal(data.X_train, X)
    assert report.columns == ("a", "y")
    assert any(words in n for n in report.notices), report.notices


def test_a_title_line_above_a_table_without_header_is_not_taken_for_one() -> None:
    # The row after it holds numbers: it is data, so the short line is an
    # error of the table (as with a wrongly chosen delimiter), not a title.
    with pytest.raises(DatasetError, match=r"do not have 1 field"):
        import_csv(
            b"A;B;C\n1,1;2,2;3\n1,5;2,6;3\n1,9;2,0;3\n", CsvOptions(delimiter=",")
        )


def test_labels_that_differ_only_in_case_are_kept_and_named() -> None:
    data, report = import_csv(
        b"a,y\n1,Yes\n2,yes\n3,no\n4,No\n", CsvOptions(test_fraction=0)
    )
    assert data.class_names == ("No", "Yes", "no", "yes")
    assert any(
        "differ only in upper and lower case ('No' and 'no'; 'Yes' and 'yes')" in n
        for n in report.notices
    )


@pytest.mark.parametrize(
    "column", [[1e308, -1e308, 1.0, 2.0], [1.7e308, -1.7e308, -1.7e308, 2.0]]
)
def test_values_near_the_float_limit_are_standardized_not_zeroed(
    column: list[float],
) -> None:
    # The sums of squares overflowed: std became inf and every value 0.0.
    raw = "a,y\n" + "".join(f"{v!r},{k % 2}\n" for k, v in enumerate(column))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data, _ = import_csv(raw.encode(), CsvOptions(test_fraction=0))
    x = data.X_train[:, 0]
    assert np.isfinite(x).all()
    assert x.mean() == pytest.approx(0.0, abs=1e-12)
    assert x.std() == pytest.approx(1.0)
    assert np.argsort(x).tolist() == np.argsort(column).tolist()
