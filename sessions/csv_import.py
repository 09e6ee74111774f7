"""Import a CSV file as a `Dataset`, detecting its format and reporting every change.

Row numbers in messages and reports count data rows from 1: row 1 is the first row
after the header; the header line and skipped blank lines are not counted. Where a
line of the file is meant, the text says "line" (1-based, counting every line).
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import math
import os
import re
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from engine._types import Array
from engine.data import Dataset
from sessions.datasets import (
    _plural,
    check_test_fraction,
    duplicate_groups,
    prepare_dataset,
)
from sessions.errors import DatasetError

__all__ = ["CsvOptions", "CsvReport", "DroppedRow", "import_csv"]

logger = logging.getLogger(__name__)

#: Delimiters tried, in order of preference when several fit equally well.
DELIMITERS = (",", ";", "\t", "|")

#: Cells read as missing values (compared after stripping, case-insensitively).
MISSING_TOKENS = frozenset(
    {"", "na", "n/a", "nan", "null", "none", "?", "#n/a", "missing"}
)

#: A numeric target with at most this many distinct whole numbers can be classes.
MAX_INTEGER_CLASSES = 10

#: A text feature with more distinct values than this is not one-hot encoded.
MAX_CATEGORIES = 50

DEFAULT_MAX_BYTES = 20 * 1024 * 1024

#: Warn about feature scales when the largest std is this many times the smallest.
SCALE_RATIO_NOTICE = 100.0

TASKS = ("binary", "multiclass", "regression", "classification")
MISSING_POLICIES = ("error", "drop", "impute_mean")
CATEGORICAL_POLICIES = ("one_hot", "error")

_EXPONENT = r"(?:[eE][+-]?[0-9]+)?"
#: Spaces (plain, no-break, narrow no-break) or an apostrophe between groups of
#: three digits are thousands separators whatever the decimal mark: "1 000,5".
_SPACES = " \u00a0\u202f'"
# A decimal comma, also after thousands points or spaces ("1.234,5", "1 234,5")
# or before an exponent; the same for a decimal point.
_DECIMAL_COMMA = re.compile(
    rf"[+-]?(?:[0-9]+|[0-9]{{1,3}}(?:[.{_SPACES}][0-9]{{3}})+),[0-9]+" + _EXPONENT
)
_DECIMAL_POINT = re.compile(
    rf"[+-]?(?:[0-9]*|[0-9]{{1,3}}(?:[,{_SPACES}][0-9]{{3}})+)\.[0-9]+" + _EXPONENT
)
#: Numbers written with thousands separators, by decimal mark: "1,234.5" and
#: "1,234,567" with a decimal point, "1.234,5" and "1.234.567" with a decimal
#: comma. One group without decimals ("1,234", "1.234") is ambiguous: not these.
_GROUPED = {
    ".": re.compile(
        r"[+-]?[0-9]{1,3}(?:(?:,[0-9]{3})+\.[0-9]+|(?:,[0-9]{3}){2,})" + _EXPONENT
    ),
    ",": re.compile(
        r"[+-]?[0-9]{1,3}(?:(?:\.[0-9]{3})+,[0-9]+|(?:\.[0-9]{3}){2,})" + _EXPONENT
    ),
}
_SPACED = {
    mark: re.compile(
        rf"[+-]?[0-9]{{1,3}}(?:[{_SPACES}][0-9]{{3}})+(?:\{mark}[0-9]+)?" + _EXPONENT
    )
    for mark in ".,"
}
_SEP_HINT = re.compile(r"sep=(.)", re.IGNORECASE)

_SIGNATURES = (
    (b"PK\x03\x04", "a ZIP archive (an Excel .xlsx workbook is one)"),
    (b"\xd0\xcf\x11\xe0", "an old Office file such as an Excel .xls workbook"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x1f\x8b", "a gzip-compressed file"),
)


@dataclass(frozen=True)
class CsvOptions:
    """Choose how a CSV file is read; every None means "detect it".

    Parameters
    ----------
    target : str or None, default None
        Name of the target column; None takes the last column.
    task : {None, "binary", "multiclass", "regression", "classification"}
        None infers the task from the target column: text labels are classes;
        numbers are classes when they are whole numbers with at most 10 distinct
        values that repeat (each value appears on average at least twice, or the
        values are 0 and 1), otherwise regression. "classification" picks binary
        or multiclass from the number of classes.
    delimiter : str or None
        One character; None tries ``,`` ``;`` tab and ``|`` and keeps the one
        that splits every line into the same number of fields.
    decimal : {None, ".", ","}
        None detects a decimal comma when the delimiter is not a comma and the
        numbers look like ``1,5``.
    header : bool or None
        None takes the first row as column names when none of its cells is a
        number.
    encoding : str or None
        None reads UTF-8 (with or without byte-order mark), then falls back to
        cp1252 and latin-1, and reports which one was used.
    test_fraction : float, default 0.2
        Share of rows in the test part; 0 means no test part.
    standardize : bool, default True
        Scale features with the training part's mean and std.
    seed : int, default 0
        Seed of the train/test split.
    missing : {"error", "drop", "impute_mean"}, default "error"
        What to do with missing or infinite feature values: stop with a message
        that lists them, drop those rows, or fill them with the column mean of
        the training rows (text columns: the most frequent value). A missing
        target value can only be dropped.
    categorical : {"one_hot", "error"}, default "one_hot"
        What to do with a text feature column: one-hot encode it (one 0/1 column
        per value, in sorted order) or stop with a message.
    drop_duplicates : bool, default False
        Drop rows that exactly repeat an earlier row (features and target).
    max_bytes : int, default 20 MiB
        Largest file accepted.
    """

    target: str | None = None
    task: str | None = None
    delimiter: str | None = None
    decimal: str | None = None
    header: bool | None = None
    encoding: str | None = None
    test_fraction: float = 0.2
    standardize: bool = True
    seed: int = 0
    missing: str = "error"
    categorical: str = "one_hot"
    drop_duplicates: bool = False
    max_bytes: int = DEFAULT_MAX_BYTES

    def __post_init__(self) -> None:
        _check_choice("task", self.task, (None, *TASKS))
        _check_choice("decimal", self.decimal, (None, ".", ","))
        _check_choice("header", self.header, (None, True, False))
        _check_choice("missing", self.missing, MISSING_POLICIES)
        _check_choice("categorical", self.categorical, CATEGORICAL_POLICIES)
        if self.target is not None and not isinstance(self.target, str):
            msg = f"target must be a column name (str) or None; got {self.target!r}."
            raise DatasetError(msg)
        if self.delimiter is not None and (
            not isinstance(self.delimiter, str)
            or len(self.delimiter) != 1
            or self.delimiter in "\r\n\"' "
        ):
            msg = (
                "delimiter must be one character other than a quote, a space or a "
                f"line break (e.g. ',' ';' '\\t' '|'); got {self.delimiter!r}."
            )
            raise DatasetError(msg)
        if self.delimiter is not None and self.delimiter == self.decimal:
            msg = (
                f"The delimiter and the decimal mark are both {self.delimiter!r}; "
                "they must differ. A file with decimal commas uses ';' as delimiter."
            )
            raise DatasetError(msg)
        if self.encoding is not None:
            try:
                codecs.lookup(self.encoding)
            except (LookupError, TypeError) as err:
                msg = (
                    f"Unknown encoding {self.encoding!r}. Leave it unset to detect "
                    "it, or use a name such as 'utf-8', 'cp1252' or 'latin-1'."
                )
                raise DatasetError(msg) from err
        for key in ("standardize", "drop_duplicates"):
            if not isinstance(getattr(self, key), bool):
                msg = f"{key} must be True or False; got {getattr(self, key)!r}."
                raise DatasetError(msg)
        if (
            isinstance(self.max_bytes, bool)
            or not isinstance(self.max_bytes, int)
            or self.max_bytes < 1
        ):
            msg = f"max_bytes must be a whole number >= 1; got {self.max_bytes!r}."
            raise DatasetError(msg)
        if (
            isinstance(self.seed, bool)
            or not isinstance(self.seed, int)
            or self.seed < 0
        ):
            msg = f"seed must be a whole number >= 0; got {self.seed!r}."
            raise DatasetError(msg)
        check_test_fraction(self.test_fraction)


@dataclass(frozen=True)
class DroppedRow:
    """Name one data row left out of the dataset and say why.

    Parameters
    ----------
    row : int
        Data row number: 1 is the first row after the header (blank lines and the
        header are not counted).
    line : int
        Line of the file where the row starts, 1-based, counting every line.
    reason : str
        Plain words, e.g. ``"x1 missing"`` or ``"exact duplicate of row 2"``.
    """

    row: int
    line: int
    reason: str


@dataclass(frozen=True)
class CsvReport:
    """Hold what `import_csv` detected and did, to show the user.

    Parameters
    ----------
    source : str
        File name (or ``"uploaded file"``).
    size_bytes : int
    encoding : str
        Encoding used to read the text, e.g. ``"utf-8"``, ``"utf-8-sig"`` (with
        the byte-order mark removed) or ``"cp1252"``.
    delimiter : str
    decimal : str
        ``"."`` or ``","``.
    header : bool
        Whether the first row held column names.
    columns : tuple of str
        Column names of the file, in order (generated names ``column_1`` ... when
        there is no header).
    target : str
        Name of the target column.
    task : {"binary", "multiclass", "regression"}
    task_reason : str
        Why this task was chosen, in one sentence.
    feature_names : tuple of str
        Names of the network's input columns, after one-hot encoding.
    class_mapping : dict of str to int
        Class label (as written in the file) to class index. Labels are sorted:
        text labels in character order, numeric labels by value. Empty for
        regression.
    one_hot : dict of str to tuple of str
        Each one-hot encoded column and the new columns made from it.
    rows_read : int
        Data rows in the file (not counting the header and blank lines).
    rows_used : int
        Rows in the dataset (training plus test).
    blank_lines : tuple of int
        Lines (1-based) skipped because they were empty, only spaces, or only
        delimiters.
    rows_dropped : tuple of DroppedRow
        Every data row left out, with the reason.
    exact_duplicates : tuple of int
        Rows that repeat an earlier row exactly (features and target).
    conflicting_rows : tuple of tuple of int
        Groups of rows with the same features but different targets.
    notices : tuple of str
        Plain sentences about the file and what was done, in order.
    """

    source: str
    size_bytes: int
    encoding: str
    delimiter: str
    decimal: str
    header: bool
    columns: tuple[str, ...]
    target: str
    task: str
    task_reason: str
    feature_names: tuple[str, ...]
    class_mapping: dict[str, int] = field(default_factory=dict)
    one_hot: dict[str, tuple[str, ...]] = field(default_factory=dict)
    rows_read: int = 0
    rows_used: int = 0
    blank_lines: tuple[int, ...] = ()
    rows_dropped: tuple[DroppedRow, ...] = ()
    exact_duplicates: tuple[int, ...] = ()
    conflicting_rows: tuple[tuple[int, ...], ...] = ()
    notices: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-ready dicts, lists and scalars."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = [list(v) if isinstance(v, tuple) else v for v in value]
        out["one_hot"] = {k: list(v) for k, v in self.one_hot.items()}
        return out


def import_csv(
    source: str | os.PathLike[str] | bytes | bytearray | memoryview,
    options: CsvOptions | None = None,
    *,
    name: str | None = None,
) -> tuple[Dataset, CsvReport]:
    """Read a CSV file into a split, standardized `Dataset` and a report.

    Parameters
    ----------
    source : path or bytes
        A file path, or the raw bytes of an uploaded file.
    options : CsvOptions, optional
        Overrides of the detection and preparation; default ``CsvOptions()``.
    name : str, optional
        Name shown for the dataset; default the file name, or ``"uploaded file"``
        for bytes.

    Returns
    -------
    dataset : Dataset
        Features of shape (n_rows, n_features) after one-hot encoding; targets
        of shape (n_rows, 1) for binary and regression, one-hot for multiclass.
        ``info["csv"]`` holds the report as a dict.
    report : CsvReport
        What was detected and done.

    Raises
    ------
    DatasetError
        For anything that stops a clean import: an empty, binary or too large
        file, ragged rows, a missing target column, a single class, missing
        values with ``missing="error"``, and so on. The message says what is
        wrong, where (column names, row numbers) and how to fix it.

    Examples
    --------
    >>> data, report = import_csv(b"x1,x2,y\\n0,0,0\\n0,1,1\\n1,0,1\\n1,1,0\\n",
    ...                           CsvOptions(test_fraction=0))
    >>> data.task, data.X_train.shape, report.class_mapping
    ('binary', (4, 2), {'0': 0, '1': 1})
    """
    opts = options if options is not None else CsvOptions()
    raw, label = _read_source(source, opts.max_bytes, name)
    text, encoding, notes = _decode(raw, opts.encoding)
    table = _parse(text, opts)
    notes.extend(table.notes)
    if len(table.names) < 2:
        only = table.names[0] if table.names else ""
        msg = (
            f"The file has only one column ({only!r}), so there is nothing to learn "
            "from: a dataset needs at least one feature column and a target column. "
            "If the file does have several columns, its delimiter was not "
            f"recognised; {_DELIMITER_ADVICE}."
        )
        raise DatasetError(msg)
    target = opts.target if opts.target is not None else table.names[-1]
    if target not in table.names:
        msg = (
            f"There is no column {target!r}. The columns are: "
            f"{_names_text(table.names, 40)}. Pick one of them as the target."
        )
        raise DatasetError(msg)

    built = _build(table, target, opts, notes, label)
    report = CsvReport(
        source=label,
        size_bytes=len(raw),
        encoding=encoding,
        delimiter=table.delimiter,
        decimal=table.decimal,
        header=table.header,
        columns=tuple(table.names),
        target=target,
        task=built.task,
        task_reason=built.task_reason,
        feature_names=tuple(built.feature_names),
        class_mapping={c: k for k, c in enumerate(built.class_names)},
        one_hot=built.one_hot,
        rows_read=len(table.cells),
        rows_used=built.dataset.n_train + built.dataset.n_test,
        blank_lines=tuple(table.blank_lines),
        rows_dropped=tuple(built.dropped),
        exact_duplicates=tuple(built.duplicates),
        conflicting_rows=tuple(built.conflicts),
        notices=tuple(built.dataset.info.get("notices", [])),
    )
    info = dict(built.dataset.info)
    info["csv"] = report.to_dict()
    logger.info(
        "Imported %s: %d rows, %d features, task %s",
        label,
        report.rows_used,
        len(report.feature_names),
        report.task,
    )
    return replace(built.dataset, info=info), report


# ---------------------------------------------------------------------------
# Private helpers: reading and decoding
# ---------------------------------------------------------------------------


_DELIMITER_ADVICE = (
    "choose it with Delimiter in the app, --delimiter on the command line, "
    "or delimiter=... in Python"
)
"""How to set the delimiter, for every reader."""

_IMPUTE_ADVICE = (
    'choose Missing values "impute_mean" in the app, --missing impute_mean on the '
    "command line, or missing='impute_mean' in Python"
)
"""How to fill gaps with the column mean, for every reader."""


def _cap(text: str) -> str:
    """Return ``text`` with its first letter in upper case (the rest unchanged)."""
    return text[:1].upper() + text[1:]


def _choose(control: str, value: str, flag: str, python: str) -> str:
    """Say how to pick one import setting in the app, on the command line and in Python.

    ``control`` is the label of the app's control on tab 2, ``flag`` the
    ``glassnet record`` flag and ``python`` the `CsvOptions` value.
    """
    name = {"Header": "header", "Missing values": "missing", "Task": "task"}[control]
    given = python if python in ("True", "False") else repr(python)
    return (
        f'choose {control} "{value}" in the app, {flag} on the command line, '
        f"or {name}={given} in Python"
    )


def _check_choice(key: str, value: Any, allowed: Sequence[Any]) -> None:
    """Raise if an option is not one of the allowed values."""
    if not any(value is a or (type(value) is type(a) and value == a) for a in allowed):
        shown = ", ".join(repr(a) for a in allowed)
        msg = f"{key} must be one of {shown}; got {value!r}."
        raise DatasetError(msg)


def _megabytes(n_bytes: int) -> str:
    """Format a size in MB (1 MB = 1024 * 1024 bytes) with one decimal."""
    return f"{n_bytes / (1024 * 1024):.1f} MB"


def _read_source(source: Any, max_bytes: int, name: str | None) -> tuple[bytes, str]:
    """Return the file's bytes and a name to show, checking the size first."""
    if isinstance(source, bytes | bytearray | memoryview):
        raw = bytes(source)
        label = name or "uploaded file"
        size = len(raw)
    elif isinstance(source, str | os.PathLike):
        path = Path(source)
        label = name or path.name
        try:
            size = path.stat().st_size
            is_file = path.is_file()
        except (OSError, ValueError) as err:
            hint = (
                " To import CSV text, pass its bytes (text.encode()) instead."
                if isinstance(source, str) and ("\n" in source or "," in source)
                else ""
            )
            msg = f"There is no file at {str(source)[:200]!r}.{hint}"
            raise DatasetError(msg) from err
        if not is_file:
            msg = f"{str(source)!r} is a folder, not a file. Choose a CSV file."
            raise DatasetError(msg)
        raw = b""
    else:
        msg = (
            "source must be a file path or the file's bytes; got "
            f"{type(source).__name__}."
        )
        raise DatasetError(msg)
    if size > max_bytes:
        msg = (
            f"This file is {_megabytes(size)}; the limit is {_megabytes(max_bytes)}. "
            "Use a smaller file (fewer rows or columns) or raise max_bytes."
        )
        raise DatasetError(msg)
    if not raw and size:
        try:
            raw = Path(source).read_bytes()
        except OSError as err:
            msg = f"The file {label!r} cannot be read: {err.strerror or err}."
            raise DatasetError(msg) from err
    return raw, label


def _decode(raw: bytes, encoding: str | None) -> tuple[str, str, list[str]]:
    """Return the text, the encoding used and notices about the decoding."""
    notes: list[str] = []
    if not raw.strip():
        msg = (
            "The file is empty."
            if not raw
            else "The file is empty: it has only blank lines."
        )
        raise DatasetError(msg)
    if encoding is not None:
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError as err:
            msg = (
                f"The file cannot be read as {encoding!r}: byte "
                f"0x{raw[err.start]:02x} at position {err.start} is not valid there. "
                "Leave the encoding unset to detect it, or choose the right one."
            )
            raise DatasetError(msg) from err
        used = encoding
    elif raw.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        text, used = _decode_strict(raw, "utf-32"), "utf-32"
    elif raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        text, used = _decode_strict(raw, "utf-16"), "utf-16"
    elif _utf16_without_bom(raw):
        used = _utf16_without_bom(raw)
        text = _decode_strict(raw, used)
        notes.append(
            f"The file is {used.upper()} text without a byte-order mark (every "
            "other byte is 0); it was read as such."
        )
    else:
        _reject_binary(raw)
        if raw.startswith(codecs.BOM_UTF8):
            text, used = _decode_strict(raw, "utf-8-sig"), "utf-8-sig"
            notes.append(
                "The file starts with a UTF-8 byte-order mark; it was removed."
            )
        else:
            text, used = _decode_fallback(raw, notes)
    text = text.lstrip("\ufeff")
    if "\x00" in text:
        msg = (
            f"The file contains a NUL character (position {text.index(chr(0))}), so "
            "it is not a plain text CSV. Export the data again as CSV."
        )
        raise DatasetError(msg)
    controls = sum(1 for ch in text[:20000] if ord(ch) < 32 and ch not in "\t\n\r\f\v")
    if controls > 0.01 * min(len(text), 20000):
        msg = (
            "This file is not text: it holds many control characters. Choose a CSV "
            "file (in a spreadsheet program use Save As, CSV)."
        )
        raise DatasetError(msg)
    return text, used, notes


def _utf16_without_bom(raw: bytes) -> str:
    """Return "utf-16-le" or "utf-16-be" for UTF-16 text without a BOM, else "".

    Text in Latin script saved as UTF-16 has a 0 byte in every character: the
    second byte of each pair (little-endian) or the first (big-endian).
    """
    sample = raw[:8192]
    if len(sample) < 4 or len(sample) % 2:
        return ""
    odd, even = sample[1::2], sample[0::2]
    half = len(odd)
    for zeros, others, name in ((odd, even, "utf-16-le"), (even, odd, "utf-16-be")):
        if zeros.count(0) >= 0.9 * half and others.count(0) <= 0.1 * half:
            return name
    return ""


def _reject_binary(raw: bytes) -> None:
    """Raise for bytes that are clearly not a text file."""
    for signature, kind in _SIGNATURES:
        if raw.startswith(signature):
            msg = (
                f"This file is not text: it looks like {kind}. Save or export the "
                "data as CSV (in Excel: File, Save As, CSV UTF-8) and import that."
            )
            raise DatasetError(msg)
    if b"\x00" in raw[:8192]:
        msg = (
            "This file is not text: it contains NUL bytes, as binary files do. "
            "Choose a CSV file (in a spreadsheet program use Save As, CSV)."
        )
        raise DatasetError(msg)


def _decode_strict(raw: bytes, encoding: str) -> str:
    """Decode with one encoding, or raise a `DatasetError` naming the position."""
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as err:
        msg = (
            f"The file looks like {encoding} (from its first bytes) but byte "
            f"position {err.start} is not valid {encoding}. Save it again as UTF-8 "
            "(in Python you can also pass encoding=...)."
        )
        raise DatasetError(msg) from err


def _decode_fallback(raw: bytes, notes: list[str]) -> tuple[str, str]:
    """Decode as UTF-8, else cp1252, else latin-1, with a notice for a fallback."""
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as err:
        first_bad = err.start
    for encoding, label in (
        ("cp1252", "cp1252 (Windows Western European)"),
        ("latin-1", "latin-1 (ISO-8859-1)"),
    ):
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        notes.append(
            f"The file is not valid UTF-8 (first at byte {first_bad}); it was read "
            f"as {label}. Check that accented letters look right; if they do not, "
            "save the file again as UTF-8 (in Python you can also pass "
            "encoding=...)."
        )
        return text, encoding
    raise AssertionError("latin-1 decodes every byte")  # pragma: no cover


# ---------------------------------------------------------------------------
# Private helpers: parsing
# ---------------------------------------------------------------------------


@dataclass
class _Table:
    """Hold the stripped text cells of a CSV file's data rows (internal, mutable)."""

    names: list[str]
    cells: NDArray[np.object_]  # shape (n_rows, n_columns)
    lines: list[int]
    blank_lines: list[int]
    delimiter: str
    decimal: str
    header: bool
    notes: list[str]


def _classify(
    cells: NDArray[np.object_], decimal: str
) -> tuple[Array, NDArray[np.bool_], NDArray[np.bool_]]:
    """Read stripped cells with pandas; return their numbers and missing/text masks.

    A cell is missing when it is one of `MISSING_TOKENS` (in any case), a number
    when `pd.to_numeric` reads it once a decimal comma became a point ("inf",
    "-Infinity" and "1e400" are infinite numbers), and text otherwise. All three
    arrays have the shape of `cells`; values are NaN where there is no number.
    """
    flat = pd.Series(cells.ravel(), dtype=object)
    if flat.str.contains("\u2212", regex=False).any():
        flat = flat.str.replace("\u2212", "-", regex=False)  # the minus sign −
    grouped = _grouped(flat, decimal)
    separators = "[" + ("," if decimal == "." else ".") + _SPACES + "]"
    points = flat.where(~grouped, flat.str.replace(separators, "", regex=True))
    if decimal == ",":
        points = points.str.replace(",", ".", regex=False)
    numbers = pd.to_numeric(points, errors="coerce")
    values = numbers.to_numpy(dtype=np.float64)
    if numbers.dtype.kind in "iu":
        # NOTE: pandas reads whole numbers as integers, which turns "-0" into 0.
        values = np.copysign(values, np.where(flat.str.startswith("-"), -1.0, 1.0))
    text = np.isnan(values)
    missing = np.zeros(len(flat), dtype=bool)
    missing[text] = flat[text].str.lower().isin(MISSING_TOKENS)
    text &= ~missing
    return (
        values.reshape(cells.shape),
        missing.reshape(cells.shape),
        text.reshape(cells.shape),
    )


def _grouped(flat: pd.Series, decimal: str) -> NDArray[np.bool_]:
    """Return which cells are numbers written with thousands separators."""
    group = "," if decimal == "." else "."
    marks = "[" + re.escape(group) + _SPACES + "]"
    if not flat.str.contains(marks, regex=True).any():
        return np.zeros(len(flat), dtype=bool)
    grouped = flat.str.fullmatch(_GROUPED[decimal].pattern)
    spaced = flat.str.fullmatch(_SPACED[decimal].pattern)
    return (grouped.fillna(False) | spaced.fillna(False)).to_numpy(bool)


def _split_line(line: str, delimiter: str) -> list[str]:
    """Split one line into fields with the csv module's quoting rules."""
    try:
        return next(csv.reader([line], delimiter=delimiter, strict=False), [])
    except csv.Error:  # a field longer than the csv module's limit (128 KiB)
        return line.split(delimiter)


def _malformed(line: str, delimiter: str) -> bool:
    """Return True when a quoted field of the line has text after its closing quote."""
    try:
        next(csv.reader([line], delimiter=delimiter, strict=True), None)
    except csv.Error:
        return True
    return False


def _sample_lines(text: str, limit: int = 100) -> list[str]:
    """Return up to `limit` non-blank physical lines from the start of the text."""
    sample = []
    for line in io.StringIO(text, newline=None):
        if line.strip():
            sample.append(line.rstrip("\r\n"))
            if len(sample) >= limit:
                break
    return sample


def _detect_delimiter(lines: list[str]) -> str:
    """Pick the delimiter that splits the sample lines most consistently.

    For each candidate, the field count of each line is taken; the candidate
    whose most common count (at least 2) holds for the largest share of lines
    wins, ties broken by the number of lines whose quotes it leaves malformed
    (text after a closing quote), the share of numeric cells, then by the
    share of empty cells (a wrong delimiter splits off empty fields), then by
    the number of cells other than numbers that hold another of the delimiters
    (a file split on the wrong one leaves the right one inside its cells),
    then by the order of `DELIMITERS`.
    """
    best: tuple[float, int, float, float, int, int] | None = None
    chosen = ","
    for rank, delimiter in enumerate(DELIMITERS):
        rows = [_split_line(line, delimiter) for line in lines]
        counts = Counter(len(r) for r in rows)
        mode, hits = counts.most_common(1)[0]
        if mode < 2:
            continue
        every = np.array([c.strip() for r in rows for c in r], dtype=object)
        _, missing, text = _classify(every, "," if delimiter != "," else ".")
        data = slice(len(rows[0]), None)  # the cells after the first line
        cells = every[data]
        numeric = int((~missing[data] & ~text[data]).sum())
        others = [d for d in DELIMITERS if d != delimiter]
        stray = sum(any(d in c for d in others) for c in every[text].tolist())
        empty = sum(not c.strip() for r in rows for c in r) / max(len(cells), 1)
        malformed = sum(_malformed(line, delimiter) for line in lines if '"' in line)
        share = numeric / max(len(cells), 1)
        score = (hits / len(rows), -malformed, share, -empty, -stray, -rank)
        if best is None or score > best:
            best, chosen = score, delimiter
    return chosen


def _detect_decimal(lines: list[str], delimiter: str) -> str:
    """Return ',' when numbers in the sample look like 1,5 and none like 1.5."""
    if delimiter == ",":
        return "."
    commas = points = 0
    for line in lines[1:]:
        for cell in _split_line(line, delimiter):
            value = cell.strip().replace("\u2212", "-")  # the minus sign −
            commas += bool(_DECIMAL_COMMA.fullmatch(value))
            points += bool(_DECIMAL_POINT.fullmatch(value))
    return "," if commas and not points else "."


def _parse(text: str, opts: CsvOptions) -> _Table:
    """Split the text into a header and rows of cells, skipping blank lines."""
    notes: list[str] = []
    sample = _sample_lines(text)
    hint = _SEP_HINT.fullmatch(sample[0].strip()) if sample else None
    if hint:
        sample = sample[1:]
    delimiter = opts.delimiter
    if delimiter is None and hint:
        delimiter = hint.group(1)
    if hint:
        notes.append(
            f"The first line {hint.group(0)!r} is a spreadsheet hint naming the "
            "delimiter; it was skipped."
        )
    if delimiter is None:
        delimiter = _detect_delimiter(sample) if sample else ","
    decimal = opts.decimal or _detect_decimal(sample, delimiter)
    if decimal == delimiter:
        msg = (
            f"The delimiter and the decimal mark are both {delimiter!r}; they must "
            "differ. Choose another delimiter (e.g. ';': Delimiter in the app, "
            "--delimiter ';' on the command line), or in Python set decimal=..."
        )
        raise DatasetError(msg)

    # Records that are empty, only spaces or only delimiters are blank lines.
    raw, starts, n_fields = _read_records(text, delimiter)
    cells = pd.Series(raw.ravel(), dtype=object).str.strip().to_numpy(dtype=object)
    cells = cells.reshape(raw.shape)
    blank = ~(cells != "").any(axis=1)
    blank_lines = starts[blank].tolist()
    records = np.flatnonzero(~blank)[1 if hint else 0 :]
    if not records.size:
        n = len(blank_lines)
        msg = f"The file is empty: its {n} line{'s' if n != 1 else ''} hold no values."
        raise DatasetError(msg)
    if opts.header is not False:
        records = _skip_title_lines(records, n_fields, cells, starts, decimal, notes)

    # The first record holds column names unless one of its cells is a number.
    first, width = records[0], n_fields[records[0]]
    has_header = opts.header
    if has_header is None:
        _, missing, text_cells = _classify(cells[first, :width], decimal)
        has_header = bool((missing | text_cells).all())
    if has_header:
        names = _column_names(raw[first, :width].tolist(), notes)
        rows = records[1:]
    else:
        names = [f"column_{j + 1}" for j in range(width)]
        rows = records
        notes.append(
            "No header row was found (the first row holds numbers), so the columns "
            f"are named column_1 ... column_{width}. If the first row holds names, "
            f"{_choose('Header', 'first row is column names', '--header', 'True')}."
        )
    if has_header and opts.header is None:
        notes.append(
            f"The first row was read as column names ({_names_text(names)}). If it "
            f"is data, {_choose('Header', 'no header', '--no-header', 'False')}."
        )
    if not rows.size:
        n_blank = len(blank_lines)
        blank_text = (
            f" ({n_blank} blank line{'s' if n_blank != 1 else ''} skipped)"
            if n_blank
            else ""
        )
        msg = (
            f"The file has column names ({_names_text(names)}) but no data "
            f"rows{blank_text}."
        )
        raise DatasetError(msg)
    like = "the header" if has_header else "the first row"
    _check_row_lengths(names, like, n_fields[rows], cells[rows], starts[rows], notes)
    names, table = _drop_blank_columns(names, cells[rows, : len(names)], notes)
    if blank_lines:
        shown = _list_numbers(blank_lines)
        notes.append(
            f"{len(blank_lines)} blank line{'s' if len(blank_lines) != 1 else ''} "
            f"ignored (line{'s' if len(blank_lines) != 1 else ''} {shown}): lines "
            "that are empty, only spaces or only delimiters are skipped."
        )
    if opts.delimiter is None and not hint:
        spoken = {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe"}
        if delimiter != ",":
            notes.append(
                f"Delimiter detected: {spoken.get(delimiter, repr(delimiter))}."
            )
    if opts.decimal is None and decimal == ",":
        notes.append("Decimal comma detected: numbers like 1,5 were read as 1.5.")
    return _Table(
        names=names,
        cells=table,
        lines=starts[rows].tolist(),
        blank_lines=blank_lines,
        delimiter=delimiter,
        decimal=decimal,
        header=bool(has_header),
        notes=notes,
    )


#: Lines above the table that a title or comment may take, at most.
MAX_TITLE_LINES = 5


def _skip_title_lines(
    records: NDArray[np.intp],
    n_fields: NDArray[np.intp],
    cells: NDArray[np.object_],
    starts: NDArray[np.intp],
    decimal: str,
    notes: list[str],
) -> NDArray[np.intp]:
    """Drop title or comment lines above the table, with a notice naming them.

    A line counts as one when it has fewer fields than the table, the next
    line is a header (no cell is a number) and every record after it (at
    least two) has the table's width: exports often start with a line such as
    "# exported by ..." or "Sales report 2024".
    """
    widths = n_fields[records]
    for k in range(1, min(MAX_TITLE_LINES, len(records) - 2) + 1):
        width = widths[k]
        if width >= 2 and (widths[:k] < width).all() and (widths[k:] == width).all():
            _, missing, text = _classify(cells[records[k], :width], decimal)
            if not (missing | text).all():
                return records  # a row of numbers: the table has no header
            shown = "; ".join(
                f"line {starts[r]}: "
                + repr(" ".join(c for c in cells[r, : n_fields[r]] if c)[:60])
                for r in records[:k]
            )
            notes.append(
                f"{k} line{'s' if k != 1 else ''} above the table "
                f"{'were' if k != 1 else 'was'} skipped, having fewer fields than "
                f"its {width} columns ({shown})."
            )
            return records[k:]
    return records


def _read_records(
    text: str, delimiter: str
) -> tuple[NDArray[np.object_], NDArray[np.intp], NDArray[np.intp]]:
    """Parse every record with pandas; return its cells, first line and field count.

    Blank lines stay records (``skip_blank_lines=False``) so they can be counted.
    A record's first line (1-based) follows from the line breaks inside quoted
    cells. Pandas pads short records with empty cells, so the field count is
    worked out from the delimiters on the record's lines minus those in its cells;
    a record wider than the columns given to pandas has the table read again.
    """
    lines = io.StringIO(text, newline="")
    per_line = np.array([line.count(delimiter) for line in lines], dtype=np.intp)
    width = int(per_line.max(initial=0)) + 1
    while True:
        raw = _read_frame(text, delimiter, width).to_numpy(dtype=object)
        if not len(raw):
            return raw, np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
        breaks = inner = np.zeros(len(raw), dtype=np.intp)
        if '"' in text:  # only quoted cells hold line breaks and delimiters
            flat = pd.Series(raw.ravel(), dtype=object)
            breaks = flat.str.count(r"\r\n|\r|\n").to_numpy().reshape(raw.shape)
            inner = flat.str.count(re.escape(delimiter)).to_numpy().reshape(raw.shape)
            breaks, inner = breaks.sum(axis=1), inner.sum(axis=1)
        starts = np.concatenate([[0], np.cumsum(1 + breaks)[:-1]]).astype(np.intp)
        n_fields = 1 + np.add.reduceat(per_line, starts) - inner
        if n_fields.max() <= raw.shape[1]:
            return raw, starts + 1, n_fields
        width = int(n_fields.max())


def _read_frame(text: str, delimiter: str, width: int) -> pd.DataFrame:
    """Read the text with `pandas.read_csv` into `width` columns of raw text cells.

    A later record wider than `width` is read again at the width pandas reports
    (a too wide first record is cut with a warning, left to the caller); an
    unclosed quote runs to the end of the file, as in Python's csv module.
    """
    closed = False
    while True:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", pd.errors.ParserWarning)
                return pd.read_csv(
                    io.StringIO(text),
                    sep=delimiter,
                    header=None,
                    names=range(width),
                    index_col=False,
                    dtype=object,
                    keep_default_na=False,
                    skip_blank_lines=False,
                )
        except pd.errors.ParserError as err:
            wider = re.search(r"saw (\d+)", str(err))
            if "EOF inside string" in str(err) and not closed:
                text, closed = text + '"', True
            elif wider:
                width = max(width + 1, int(wider.group(1)))
            else:
                msg = (
                    f"The file cannot be read as CSV: {err}. Check for an unclosed "
                    'quote (") on or before that line.'
                )
                raise DatasetError(msg) from err


def _column_names(first: list[str], notes: list[str]) -> list[str]:
    """Return clean, unique column names from the header cells."""
    names = []
    seen: Counter[str] = Counter()
    renamed = []
    for j, cell in enumerate(first):
        name = cell.strip() or f"column_{j + 1}"
        if not cell.strip():
            renamed.append(f"column {j + 1} has no name and is called {name!r}")
        elif cell != name:
            renamed.append(f"spaces around {name!r} were removed")
        seen[name] += 1
        if seen[name] > 1:
            new = f"{name}_{seen[name]}"
            while new in first:
                new += "_"
            renamed.append(f"the name {name!r} appears again and is called {new!r}")
            name = new
        names.append(name)
    if renamed:
        notes.append("Column names: " + "; ".join(renamed) + ".")
    return names


def _drop_blank_columns(
    names: list[str], cells: NDArray[np.object_], notes: list[str]
) -> tuple[list[str], NDArray[np.object_]]:
    """Remove columns whose cells are all empty (e.g. from a trailing delimiter)."""
    blank = ~(cells != "").any(axis=0)
    if not blank.any() or blank.all():
        return names, cells
    notes.append(
        f"Column(s) with no value in any row were ignored: "
        f"{_names_text([n for n, b in zip(names, blank, strict=True) if b])}."
    )
    return [n for n, b in zip(names, blank, strict=True) if not b], cells[:, ~blank]


def _check_row_lengths(
    names: list[str],
    like: str,
    counts: NDArray[np.intp],
    cells: NDArray[np.object_],
    lines: NDArray[np.intp],
    notes: list[str],
) -> None:
    """Check every row has one field per column; ignore empty trailing fields."""
    n_cols = len(names)
    trimmed = (counts > n_cols) & ~(cells[:, n_cols:] != "").any(axis=1)
    if trimmed.any():
        notes.append(
            f"{int(trimmed.sum())} row(s) ended with extra empty fields (a delimiter "
            "at the end of the line); the empty fields were ignored."
        )
    bad = np.flatnonzero((counts != n_cols) & ~trimmed)
    if bad.size:
        shown = ", ".join(
            f"row {i + 1} (line {lines[i]}) has {counts[i]}" for i in bad[:5]
        )
        more = f", and {len(bad) - 5} more" if len(bad) > 5 else ""
        msg = (
            f"{len(bad)} row(s) do not have {n_cols} field{'s' if n_cols != 1 else ''} "
            f"like {like} "
            f"({_names_text(names)}): {shown}{more}. A value may contain the "
            "delimiter without quotes (e.g. a decimal comma in a comma-separated "
            "file), or a field is missing. Fix those lines, or if the delimiter was "
            f"detected wrongly, {_DELIMITER_ADVICE}."
        )
        raise DatasetError(msg)


# ---------------------------------------------------------------------------
# Private helpers: columns
# ---------------------------------------------------------------------------


@dataclass
class _Column:
    """Hold one column read as numbers or as text (internal)."""

    name: str
    kind: str  # "numeric" or "text"
    values: Array  # numbers, NaN for missing and text cells
    cells: NDArray[np.object_]  # stripped cells
    missing: NDArray[np.bool_]
    infinite: NDArray[np.bool_]
    first_text: int = -1  # index of the first cell that is not a number


def _read_columns(
    names: list[str], cells: NDArray[np.object_], decimal: str, notes: list[str]
) -> dict[str, _Column]:
    """Classify each column's cells and return its numbers, gaps and text."""
    values, missing, text = _classify(cells, decimal)
    grouped = _grouped(pd.Series(cells.ravel(), dtype=object), decimal)
    grouped = grouped.reshape(cells.shape) & ~text
    n = len(cells)
    columns = {}
    for j, name in enumerate(names):
        n_text = int(text[:, j].sum())
        if n_text and n - n_text - int(missing[:, j].sum()) > n_text:
            examples = ", ".join(
                f"{cells[i, j]!r} (row {i + 1})" for i in np.flatnonzero(text[:, j])[:5]
            )
            msg = (
                f"Column {name!r} holds numbers, but {n_text} cell(s) are not "
                f"numbers: {examples}. Correct those cells, or empty them so they "
                "count as missing values."
            )
            raise DatasetError(msg)
        numbers = np.full(n, np.nan) if n_text else values[:, j]
        if grouped[:, j].any() and not n_text:
            i = int(np.argmax(grouped[:, j]))
            notes.append(
                f"Column {name!r}: {int(grouped[:, j].sum())} number(s) written with "
                f"thousands separators, e.g. {cells[i, j]!r} (row {i + 1}) was read "
                f"as {values[i, j]:.15g}."
            )
        columns[name] = _Column(
            name=name,
            kind="text" if n_text else "numeric",
            values=numbers,
            cells=cells[:, j],
            missing=missing[:, j],
            infinite=np.isinf(numbers),
            first_text=int(np.argmax(text[:, j])) if n_text else -1,
        )
    return columns


@dataclass
class _Built:
    """Hold the result of turning a table into a dataset (internal)."""

    dataset: Dataset
    task: str
    task_reason: str
    feature_names: list[str]
    class_names: list[str]
    one_hot: dict[str, tuple[str, ...]]
    dropped: list[DroppedRow]
    duplicates: list[int]
    conflicts: list[tuple[int, ...]]


def _build(
    table: _Table, target: str, opts: CsvOptions, notes: list[str], label: str
) -> _Built:
    """Turn parsed cells into features and targets, then split and scale them."""
    read = _read_columns(table.names, table.cells, table.decimal, notes)
    y_col = read.pop(target)
    features = _drop_empty_columns(list(read.values()), notes)
    if not features:
        msg = (
            f"No feature column has any value; only the target {target!r} holds "
            "data. Add feature columns to the file."
        )
        raise DatasetError(msg)
    text_cols = [c for c in features if c.kind == "text"]
    if text_cols and opts.categorical == "error":
        col = text_cols[0]
        example = col.cells[col.first_text]
        others = ", ".join(repr(c.name) for c in text_cols[1:])
        also = f" (and so do {others})" if others else ""
        msg = (
            f"Column {col.name!r} holds text such as {example!r} (row "
            f"{col.first_text + 1}), not numbers{also}. Encode it as numbers, "
            "remove the column, or import with categorical='one_hot' (the default, "
            "as the app and `glassnet record` do)."
        )
        raise DatasetError(msg)

    # Rows with gaps: stop, drop them, or keep them for imputation.
    keep, dropped = _handle_missing(table, features, y_col, target, opts, notes)
    rows = np.flatnonzero(keep)
    row_numbers = rows + 1

    # Target: task, classes and values of the kept rows.
    task, reason, targets, class_names = _target(y_col, rows, target, opts, dropped)
    notes.append(reason)
    folded: dict[str, list[str]] = {}
    for class_name in class_names:
        folded.setdefault(class_name.casefold(), []).append(class_name)
    twins = [group for group in folded.values() if len(group) > 1]
    if twins:
        shown = "; ".join(" and ".join(repr(c) for c in g) for g in twins[:5])
        notes.append(
            f"Some class labels of {target!r} differ only in upper and lower case "
            f"({shown}); they are kept as different classes. If they mean the "
            "same, write them alike in the file."
        )

    # Features: numbers as they are, text one-hot encoded.
    X, feature_names, one_hot = _encode_features(features, rows, opts, notes)

    # Exact duplicates and rows with the same features but different targets.
    groups = duplicate_groups(X)
    duplicates, first_of, conflicts = _duplicates(groups, targets)
    notes.extend(
        _duplicate_notices(duplicates, first_of, conflicts, row_numbers, task, opts)
    )
    kept = np.ones(len(rows), dtype=bool)
    if opts.drop_duplicates and duplicates:
        for i in duplicates:
            kept[i] = False
            dropped.append(
                DroppedRow(
                    int(row_numbers[i]),
                    table.lines[int(rows[i])],
                    f"exact duplicate of row {row_numbers[first_of[i]]}",
                )
            )
        dropped.sort(key=lambda d: d.row)
    X, targets = X[kept], targets[kept]

    notes.extend(_shape_notices(X, feature_names, one_hot, opts))
    dataset = prepare_dataset(
        label,
        task,
        X,
        targets,
        feature_names=feature_names,
        class_names=class_names,
        target_name=target,
        test_fraction=opts.test_fraction,
        standardize=opts.standardize,
        seed=opts.seed,
        impute_mean=opts.missing == "impute_mean",
        info={"source": f"Imported from the CSV file {label!r}."},
        notices=notes,
    )
    fill = dataset.info.get("imputation", {}).get("fill_values", {})
    if fill:
        filled = "; ".join(f"{k} with {v:.4g}" for k, v in fill.items())
        dataset.info["notices"].append(
            f"Gaps were filled with the mean of the training rows: {filled}."
        )
    return _Built(
        dataset=dataset,
        task=task,
        task_reason=reason,
        feature_names=feature_names,
        class_names=class_names,
        one_hot=one_hot,
        dropped=dropped,
        duplicates=[int(row_numbers[i]) for i in duplicates],
        conflicts=[tuple(int(row_numbers[i]) for i in g) for g in conflicts],
    )


def _drop_empty_columns(features: list[_Column], notes: list[str]) -> list[_Column]:
    """Remove feature columns without a single value, with a notice."""
    empty = [c.name for c in features if c.missing.all()]
    if empty:
        notes.append(
            f"Column(s) with no value in any row were ignored: "
            f"{', '.join(repr(n) for n in empty)}."
        )
    return [c for c in features if not c.missing.all()]


def _handle_missing(
    table: _Table,
    features: list[_Column],
    y_col: _Column,
    target: str,
    opts: CsvOptions,
    notes: list[str],
) -> tuple[NDArray[np.bool_], list[DroppedRow]]:
    """Check gaps and infinities; return the rows to keep and the dropped rows."""
    n = len(table.cells)
    y_gap = y_col.missing | y_col.infinite
    if y_gap.any() and opts.missing != "drop":
        rows = np.flatnonzero(y_gap) + 1
        what = "missing or infinite" if y_col.infinite.any() else "missing"
        msg = (
            f"The target column {target!r} has {len(rows)} {what} value(s) "
            f"({_rows_text(rows)}). A target value cannot be filled in: fill them "
            "in the file, remove those rows, or "
            f"{_choose('Missing values', 'drop', '--missing drop', 'drop')}."
        )
        raise DatasetError(msg)
    summary = []
    for col in features:
        parts = []
        if col.missing.any():
            rows = np.flatnonzero(col.missing) + 1
            parts.append(f"{len(rows)} missing ({_rows_text(rows)})")
        if col.infinite.any():
            rows = np.flatnonzero(col.infinite) + 1
            parts.append(f"{len(rows)} infinite ({_rows_text(rows)})")
        if parts:
            summary.append(f"{col.name}: {', '.join(parts)}")
    gaps = "; ".join(summary)
    if summary and opts.missing == "error":
        msg = (
            f"Some feature values are missing or infinite: {gaps}. Rows are "
            "numbered from 1 at the first data row (the header is not counted). "
            "Fill them in the file, or drop those rows ("
            f"{_choose('Missing values', 'drop', '--missing drop', 'drop')}) or "
            "fill them with the column mean ("
            f"{_IMPUTE_ADVICE})."
        )
        raise DatasetError(msg)
    if summary and opts.missing == "impute_mean":
        notes.append(
            f"Missing or infinite feature values: {gaps}. They were filled in "
            "(numbers: the mean of the training rows, infinite values counted as "
            "missing; text: the most frequent value)."
        )

    # Drop the rows with a gap in the target, and with missing="drop" in features.
    drop = y_gap.copy()
    if opts.missing == "drop":
        for col in features:
            drop |= col.missing | col.infinite
    dropped = []
    for i in np.flatnonzero(drop):
        reasons = [f"target {target!r} missing"] if y_gap[i] else []
        for col in features:
            if col.missing[i]:
                reasons.append(f"{col.name} missing")
            elif col.infinite[i]:
                reasons.append(f"{col.name} infinite")
        dropped.append(DroppedRow(int(i) + 1, table.lines[int(i)], "; ".join(reasons)))
    if dropped:
        notes.append(
            f"{len(dropped)} row(s) dropped because of missing or infinite values "
            f"({_rows_text([d.row for d in dropped])}); {gaps or 'only the target'}."
        )
    if drop.all():
        msg = (
            f"{'The only row has' if n == 1 else f'Every one of the {n} rows has'} "
            "a missing or infinite value, so "
            "dropping them leaves no data. Fill the gaps in the file, or fill them "
            "with the column mean ("
            f"{_IMPUTE_ADVICE})."
        )
        raise DatasetError(msg)
    return ~drop, dropped


def _target(
    y_col: _Column,
    rows: NDArray[np.intp],
    target: str,
    opts: CsvOptions,
    dropped: list[DroppedRow],
) -> tuple[str, str, NDArray[Any], list[str]]:
    """Decide the task and return it, the reason, the targets and class names."""
    after = f"After dropping {len(dropped)} row(s), the" if dropped else "The"
    if y_col.kind == "numeric":
        values = y_col.values[rows]
        distinct = np.unique(values)
        whole = bool(np.all(values == np.round(values)))
        if opts.task == "regression":
            return _regression(values, target, "as chosen")
        if opts.task is None:
            binary_codes = set(distinct.tolist()) <= {0.0, 1.0}
            repeats = len(distinct) <= len(values) / 2
            few = len(distinct) <= MAX_INTEGER_CLASSES
            if not (whole and few and (binary_codes or repeats)):
                if not whole:
                    why = "not all whole numbers"
                elif not few:
                    why = f"more than {MAX_INTEGER_CLASSES} different values"
                else:
                    why = "values repeat too rarely to be class labels"
                hint = (
                    "; to use them as classes, "
                    + _choose("Task", "multiclass", "--task multiclass", "multiclass")
                    if whole
                    else ""
                )
                return _regression(
                    values,
                    target,
                    f"{len(distinct)} different numbers in {len(values)} rows, "
                    f"{why}{hint}",
                )
        labels = [_number_label(v) for v in distinct]
        index = np.searchsorted(distinct, values)
        inferred = opts.task is None
    else:
        if opts.task == "regression":
            example = y_col.cells[y_col.first_text]
            msg = (
                f"The target column {target!r} holds text such as {example!r} (row "
                f"{y_col.first_text + 1}); regression needs numbers. "
                + _cap(
                    _choose(
                        "Task",
                        "classification",
                        "--task classification",
                        "classification",
                    )
                )
                + ", or pick another target column."
            )
            raise DatasetError(msg)
        classes, index = np.unique(y_col.cells[rows], return_inverse=True)
        labels = classes.tolist()
        inferred = False
    if len(labels) < 2:
        hint = (
            " If it is a number to predict, "
            + _choose("Task", "regression", "--task regression", "regression")
            + "."
            if inferred
            else ""
        )
        msg = (
            f"{after} label column {target!r} has only one value ({labels[0]!r}). A "
            "classifier needs at least two classes — check the file or pick another "
            f"target column.{hint}"
        )
        raise DatasetError(msg)
    if len(labels) > 100:
        msg = (
            f"The label column {target!r} has {len(labels)} different values, too "
            "many classes (the limit is 100). If it is a number to predict, "
            f"{_choose('Task', 'regression', '--task regression', 'regression')}; "
            "if it is an ID, pick another target column."
        )
        raise DatasetError(msg)
    if opts.task == "binary" and len(labels) != 2:
        msg = (
            f"Task binary needs exactly 2 classes, but {target!r} has "
            f"{len(labels)}: {', '.join(repr(c) for c in labels[:10])}. "
            + _cap(_choose("Task", "multiclass", "--task multiclass", "multiclass"))
            + "."
        )
        raise DatasetError(msg)
    task = "binary" if len(labels) == 2 and opts.task != "multiclass" else "multiclass"
    shown = ", ".join(f"{c!r} → {k}" for k, c in enumerate(labels[:10]))
    more = f", and {len(labels) - 10} more" if len(labels) > 10 else ""
    why = (
        " (whole numbers with few distinct values; to predict them as numbers, "
        + _choose("Task", "regression", "--task regression", "regression")
        + ")"
        if inferred
        else ""
    )
    reason = (
        f"Task: {task} classification with {len(labels)} classes in {target!r}"
        f"{why}, numbered in sorted order: {shown}{more}."
    )
    return task, reason, index, labels


def _regression(
    values: Array, target: str, why: str
) -> tuple[str, str, NDArray[Any], list[str]]:
    """Return the regression task, its reason and the target values."""
    reason = f"Task: regression on {target!r} ({why})."
    if np.all(values == values[0]):
        reason += f" Note: the target has the same value ({values[0]:g}) in every row."
    return "regression", reason, values.astype(np.float64), []


def _number_label(value: float) -> str:
    """Return a class label for a numeric class: '3' for 3.0, '0.5' for 0.5."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _encode_features(
    features: list[_Column],
    rows: NDArray[np.intp],
    opts: CsvOptions,
    notes: list[str],
) -> tuple[Array, list[str], dict[str, tuple[str, ...]]]:
    """Return the feature matrix of the kept rows, its column names, and one-hots.

    Gaps (only left with missing="impute_mean") are NaN in numeric columns and
    the most frequent value in text columns.
    """
    blocks: list[Array] = []
    names: list[str] = []
    one_hot: dict[str, tuple[str, ...]] = {}
    taken = {c.name for c in features}
    for col in features:
        if col.kind == "numeric":
            values = col.values[rows].copy()
            values[col.infinite[rows] | col.missing[rows]] = np.nan
            blocks.append(values[:, None])
            names.append(col.name)
            continue
        cells, gaps = col.cells[rows], col.missing[rows]
        categories, counts = np.unique(cells[~gaps], return_counts=True)
        n_known = int(counts.sum())
        if len(categories) > MAX_CATEGORIES or (
            len(categories) > 10 and len(categories) > n_known / 2
        ):
            examples = ", ".join(repr(c) for c in categories[:3].tolist())
            msg = (
                f"Column {col.name!r} holds text with {len(categories)} different "
                f"values in {n_known} rows (e.g. {examples}): too many to one-hot "
                "encode; it looks like an ID or free text. Remove the column, or "
                "turn it into numbers."
            )
            raise DatasetError(msg)
        if gaps.any():
            common = categories[np.argmax(counts)]  # the first in sorted order
            cells = np.where(gaps, common, cells)
            notes.append(
                f"{int(gaps.sum())} missing value(s) in {col.name!r} were filled with "
                f"its most frequent value {common!r}."
            )
        new = []
        for category in categories:
            candidate = f"{col.name}_{category}"
            while candidate in taken:
                candidate += "_"
            taken.add(candidate)
            new.append(candidate)
        blocks.append(np.eye(len(categories))[np.unique(cells, return_inverse=True)[1]])
        names.extend(new)
        one_hot[col.name] = tuple(new)
        notes.append(
            f"Column {col.name!r} holds text; it was one-hot encoded into "
            f"{len(new)} columns: {_names_text(new)}."
        )
    if one_hot:
        notes.append(
            f"One-hot encoding: {len(features)} → {_plural(len(names), 'feature')} "
            "(the input layer grows accordingly). To leave a text column out, "
            "remove the column from the file."
        )
    X = np.hstack(blocks) if blocks else np.empty((len(rows), 0))
    return X, names, one_hot


def _duplicates(
    groups: NDArray[np.int64], targets: NDArray[Any]
) -> tuple[list[int], NDArray[np.intp], list[tuple[int, ...]]]:
    """Find exact duplicates and groups of equal features with different targets.

    Returns
    -------
    duplicates : list of int
        Positions of rows that repeat an earlier row (features and target).
    first_of : ndarray of shape (n_rows,)
        For each row, the position of the first row it repeats (itself if none).
    conflicts : list of tuple of int
        Positions of the rows of each feature group with several targets.
    """
    frame = pd.DataFrame({"group": groups, "target": targets.astype(np.float64)})
    first = frame.reset_index().groupby(["group", "target"])["index"].transform("min")
    first_of = first.to_numpy(dtype=np.intp)
    duplicates = np.flatnonzero(first_of != np.arange(len(frame))).tolist()
    mixed = frame.groupby("group")["target"].transform("nunique").to_numpy() > 1
    members = frame.index[mixed].groupby(groups[mixed])  # groups in file order
    return duplicates, first_of, [tuple(m.tolist()) for m in members.values()]


def _duplicate_notices(
    duplicates: list[int],
    first_of: NDArray[np.intp],
    conflicts: list[tuple[int, ...]],
    row_numbers: NDArray[np.intp],
    task: str,
    opts: CsvOptions,
) -> list[str]:
    """Describe duplicate and conflicting rows in plain sentences."""
    if not duplicates and not conflicts:
        return []
    parts, details = [], []
    if duplicates:
        s = "s" if len(duplicates) != 1 else ""
        parts.append(f"{len(duplicates)} exact duplicate row{s}")
        repeats = [int(row_numbers[i]) for i in duplicates]
        originals = [int(row_numbers[first_of[i]]) for i in duplicates]
        details.append(
            f"{_rows_text(repeats).capitalize()} repeat{'s' if not s else ''} "
            f"{_rows_text(originals)}"
        )
    if conflicts:
        word = "pair" if all(len(g) == 2 for g in conflicts) else "group"
        s = "s" if len(conflicts) != 1 else ""
        what = "targets" if task == "regression" else "labels"
        parts.append(
            f"{len(conflicts)} {word}{s} with the same features but different {what}"
        )
        groups = "; ".join(
            _rows_text([int(row_numbers[i]) for i in g]) for g in conflicts[:5]
        )
        details.append(f"same features, different {what}: {groups}")
    action = (
        "The exact duplicates were dropped."
        if opts.drop_duplicates and duplicates
        else "Duplicates are kept (set drop_duplicates=True to drop them)."
        if duplicates
        else ""
    )
    if conflicts:
        action += (" " if action else "") + (
            f"Rows with conflicting {'targets' if task == 'regression' else 'labels'} "
            "are kept; check which one is right."
        )
    return [f"{', '.join(parts)}. {'; '.join(details)}. {action}".strip()]


def _shape_notices(
    X: Array,
    feature_names: list[str],
    one_hot: dict[str, tuple[str, ...]],
    opts: CsvOptions,
) -> list[str]:
    """Warn about very different feature scales and about more features than rows."""
    notes = []
    encoded = {n for new in one_hot.values() for n in new}
    numeric = [j for j, n in enumerate(feature_names) if n not in encoded]
    if len(numeric) >= 2 and X.shape[0] >= 2:
        std = np.array([_finite_std(X[:, j]) for j in numeric])
        usable = np.isfinite(std) & (std > 0)
        if usable.sum() >= 2:
            idx = np.flatnonzero(usable)
            big = idx[np.argmax(std[idx])]
            small = idx[np.argmin(std[idx])]
            ratio = std[big] / std[small]
            if ratio >= SCALE_RATIO_NOTICE:
                state = (
                    "standardization is on"
                    if opts.standardize
                    else "standardization is off; turn it on, since a network "
                    "trains badly when inputs differ this much in scale"
                )
                notes.append(
                    f"Feature scales differ by about {_approx(ratio, 1)}x "
                    f"({feature_names[numeric[big]]} std {_approx(std[big])} vs "
                    f"{feature_names[numeric[small]]} std {_approx(std[small])}); "
                    f"{state}."
                )
    n_rows, n_features = X.shape
    if n_features >= n_rows:
        notes.append(
            f"{n_features} features for {_plural(n_rows, 'row')} — the network will "
            "overfit: "
            f"the first layer alone has {n_features} × (hidden units) weights. Use "
            "more rows, fewer features, or a small first layer."
        )
    return notes


def _finite_std(values: Array) -> float:
    """Return the std (ddof 0) of the finite values, or NaN when there are < 2."""
    finite = values[np.isfinite(values)]
    return float(finite.std()) if finite.size >= 2 else math.nan


def _approx(value: float, digits: int = 2) -> str:
    """Round for reading: 474.3 -> '470', 0.6614 -> '0.7', 717 -> '700' (digits=1).

    Values of 1 or more keep `digits` significant digits; values below 1 keep one.
    """
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    keep = digits if value >= 1 else 1
    exponent = math.floor(math.log10(abs(value)))
    rounded = round(value, keep - 1 - exponent)
    return f"{rounded:.{max(0, keep - 1 - exponent)}f}"


def _names_text(names: Sequence[str], limit: int = 12) -> str:
    """Return 'a, b, c', or the first `limit` names and 'and N more'."""
    shown = ", ".join(str(n) for n in names[:limit])
    if len(names) > limit:
        shown += f" and {len(names) - limit} more"
    return shown


def _list_numbers(numbers: Sequence[int] | NDArray[Any], limit: int = 10) -> str:
    """Return '2, 4' or '1, 2, ..., 10 and 5 more' for a list of numbers."""
    values = [int(v) for v in numbers]
    shown = ", ".join(str(v) for v in values[:limit])
    if len(values) > limit:
        shown += f" and {len(values) - limit} more"
    return shown


def _rows_text(numbers: Sequence[int] | NDArray[Any]) -> str:
    """Return 'row 2' or 'rows 2, 4' (at most 10 numbers shown)."""
    word = "row" if len(numbers) == 1 else "rows"
    return f"{word} {_list_numbers(numbers)}"
