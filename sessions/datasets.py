"""Make the built-in datasets: 2-D generators, shipped real data, split and scaling.

Every dataset reaches the engine through `prepare_dataset`, which splits rows into a
training and a test part (seeded, stratified, identical rows kept together) and
standardizes features with statistics of the training part only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from numbers import Integral, Real
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from engine._types import Array, IntArray
from engine.data import Dataset
from sessions.errors import DatasetError

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "blobs",
    "check_test_fraction",
    "circles",
    "duplicate_groups",
    "linear",
    "load_dataset",
    "moons",
    "prepare_dataset",
    "sine",
    "spirals",
    "xor",
]

DATA_DIR = Path(__file__).resolve().parent / "data"

#: Output activation and loss that fit each task.
TASK_DEFAULTS: dict[str, tuple[str, str]] = {
    "binary": ("sigmoid", "binary_cross_entropy"),
    "multiclass": ("softmax", "categorical_cross_entropy"),
    "regression": ("identity", "mse"),
}

MAX_GENERATED_SAMPLES = 100_000


@dataclass(frozen=True)
class DatasetInfo:
    """Describe one built-in dataset for the dataset picker and for defaults.

    Parameters
    ----------
    name : str
        Key in `DATASETS` and the name `load_dataset` takes.
    task : {"binary", "multiclass", "regression"}
    description : str
        One or two plain sentences for the user.
    is_2d : bool
        True when there are exactly two input features, so the decision boundary
        can be drawn in the plane.
    synthetic : bool
        True for generated data (`n_samples` and `noise` apply), False for a
        shipped file.
    n_features : int
    n_classes : int
        Number of classes; 0 for regression.
    hidden_sizes : tuple of int
        Suggested hidden layer sizes, e.g. ``(8, 8)``.
    hidden_activation : str
        Suggested activation of the hidden layers.
    output_activation : str
        Output activation that fits the task (sigmoid, softmax or identity).
    loss : str
        Loss that fits the task (binary_cross_entropy, categorical_cross_entropy
        or mse).
    default_n_samples : int or None
        Rows generated when `n_samples` is not given; None for shipped files.
    default_noise : float or None
        Noise used when `noise` is not given; None for shipped files.
    source : str
        Where the data comes from, with citation and licence.
    """

    name: str
    task: str
    description: str
    is_2d: bool
    synthetic: bool
    n_features: int
    n_classes: int
    hidden_sizes: tuple[int, ...]
    hidden_activation: str
    output_activation: str
    loss: str
    default_n_samples: int | None
    default_noise: float | None
    source: str


# ---------------------------------------------------------------------------
# Generators
# ---------------------------------------------------------------------------


def xor(n_samples: int = 200, noise: float = 0.1, seed: int = 0) -> Dataset:
    """Generate the XOR pattern: class 1 where the two coordinates differ in sign.

    Points are uniform in the square [-1, 1]^2; a point in the first or third
    quadrant is class 0, in the second or fourth class 1. No straight line
    separates the classes, so the task needs a hidden layer.

    Parameters
    ----------
    n_samples : int, default 200
        Number of points, at least 4.
    noise : float, default 0.1
        Standard deviation of Gaussian jitter added to each coordinate after the
        labels are set (so points near the axes can cross to the wrong side).
    seed : int, default 0
        Seed of ``np.random.default_rng``.

    Returns
    -------
    Dataset
        All points in the training part (shape (n_samples, 2)), y of shape
        (n_samples, 1) with 0/1; the test part is empty. `load_dataset` splits.
    """
    n_samples, noise, rng = _generator_args("xor", n_samples, noise, seed, 4)
    X = rng.uniform(-1.0, 1.0, size=(n_samples, 2))
    label = ((X[:, 0] > 0) != (X[:, 1] > 0)).astype(np.int64)
    X = X + noise * rng.standard_normal(X.shape)
    return _generated("xor", "binary", X, label, 2, n_samples, noise, seed)


def circles(n_samples: int = 200, noise: float = 0.08, seed: int = 0) -> Dataset:
    """Generate two concentric rings: outer (radius 1) class 0, inner (0.5) class 1.

    Parameters
    ----------
    n_samples : int, default 200
        Number of points, at least 4; the classes get half each.
    noise : float, default 0.08
        Standard deviation of Gaussian jitter added to each coordinate.
    seed : int, default 0
        Seed of ``np.random.default_rng``.

    Returns
    -------
    Dataset
        X of shape (n_samples, 2), y of shape (n_samples, 1) with 0/1, all in the
        training part.
    """
    n_samples, noise, rng = _generator_args("circles", n_samples, noise, seed, 4)
    label = _balanced_labels(n_samples, 2, rng)
    angle = rng.uniform(0.0, 2.0 * np.pi, size=n_samples)
    radius = np.where(label == 1, 0.5, 1.0)
    X = np.column_stack([radius * np.cos(angle), radius * np.sin(angle)])
    X = X + noise * rng.standard_normal(X.shape)
    return _generated("circles", "binary", X, label, 2, n_samples, noise, seed)


def moons(n_samples: int = 200, noise: float = 0.1, seed: int = 0) -> Dataset:
    """Generate two interleaving half circles ("moons").

    Class 0 is the upper arc ``(cos t, sin t)``, class 1 the lower arc
    ``(1 - cos t, 0.5 - sin t)``, with t uniform in [0, pi].

    Parameters
    ----------
    n_samples : int, default 200
        Number of points, at least 4; the classes get half each.
    noise : float, default 0.1
        Standard deviation of Gaussian jitter added to each coordinate.
    seed : int, default 0
        Seed of ``np.random.default_rng``.

    Returns
    -------
    Dataset
        X of shape (n_samples, 2), y of shape (n_samples, 1) with 0/1, all in the
        training part.
    """
    n_samples, noise, rng = _generator_args("moons", n_samples, noise, seed, 4)
    label = _balanced_labels(n_samples, 2, rng)
    t = rng.uniform(0.0, np.pi, size=n_samples)
    upper = np.column_stack([np.cos(t), np.sin(t)])
    lower = np.column_stack([1.0 - np.cos(t), 0.5 - np.sin(t)])
    X = np.where(label[:, None] == 0, upper, lower)
    X = X + noise * rng.standard_normal(X.shape)
    return _generated("moons", "binary", X, label, 2, n_samples, noise, seed)


def spirals(n_samples: int = 300, noise: float = 0.05, seed: int = 0) -> Dataset:
    """Generate two interleaved spiral arms, one per class.

    Each arm turns 1.5 times around the origin, from radius 0 to radius 1; arm 1
    is arm 0 rotated by half a turn. Points are spread evenly along the arm
    length (the angle is drawn as ``3 * pi * sqrt(u)``).

    Parameters
    ----------
    n_samples : int, default 300
        Number of points, at least 4; the arms get half each.
    noise : float, default 0.05
        Standard deviation of Gaussian jitter added to each coordinate.
    seed : int, default 0
        Seed of ``np.random.default_rng``.

    Returns
    -------
    Dataset
        X of shape (n_samples, 2), y of shape (n_samples, 1) with 0/1, all in the
        training part.
    """
    n_samples, noise, rng = _generator_args("spirals", n_samples, noise, seed, 4)
    label = _balanced_labels(n_samples, 2, rng)
    theta = 3.0 * np.pi * np.sqrt(rng.uniform(0.0, 1.0, size=n_samples))
    radius = theta / (3.0 * np.pi)
    angle = theta + np.pi * label
    X = np.column_stack([radius * np.cos(angle), radius * np.sin(angle)])
    X = X + noise * rng.standard_normal(X.shape)
    return _generated("spirals", "binary", X, label, 2, n_samples, noise, seed)


def blobs(
    n_samples: int = 300, noise: float = 0.5, seed: int = 0, n_classes: int = 3
) -> Dataset:
    """Generate `n_classes` round Gaussian blobs, one class each.

    The blob centres sit evenly on a circle of radius 2 around the origin.

    Parameters
    ----------
    n_samples : int, default 300
        Number of points, at least 2 per class; the classes get equal shares.
    noise : float, default 0.5
        Standard deviation of each blob.
    seed : int, default 0
        Seed of ``np.random.default_rng``.
    n_classes : int, default 3
        Number of blobs, 2 to 10. Two blobs give a binary task, more a
        multiclass task.

    Returns
    -------
    Dataset
        X of shape (n_samples, 2); y of shape (n_samples, 1) with 0/1 for two
        blobs, else one-hot of shape (n_samples, n_classes); all in the training
        part.
    """
    if (
        isinstance(n_classes, bool)
        or not isinstance(n_classes, Integral)
        or not 2 <= n_classes <= 10
    ):
        msg = f"n_classes must be a whole number from 2 to 10; got {n_classes!r}."
        raise DatasetError(msg)
    n_classes = int(n_classes)
    n_samples, noise, rng = _generator_args(
        "blobs", n_samples, noise, seed, 2 * n_classes
    )
    label = _balanced_labels(n_samples, n_classes, rng)
    angle = 2.0 * np.pi * np.arange(n_classes) / n_classes + np.pi / 4.0
    centers = 2.0 * np.column_stack([np.cos(angle), np.sin(angle)])
    X = centers[label] + noise * rng.standard_normal((n_samples, 2))
    task = "binary" if n_classes == 2 else "multiclass"
    return _generated("blobs", task, X, label, n_classes, n_samples, noise, seed)


def linear(n_samples: int = 200, noise: float = 0.0, seed: int = 0) -> Dataset:
    """Generate two classes separated by a random straight line through the origin.

    Points are uniform in [-1, 1]^2 and then pushed 0.1 away from the line, so
    with ``noise = 0`` there is a gap of 0.2 between the classes. Jitter larger
    than about 0.05 lets classes overlap (then the data is no longer separable).

    Parameters
    ----------
    n_samples : int, default 200
        Number of points, at least 4.
    noise : float, default 0.0
        Standard deviation of Gaussian jitter added after labelling.
    seed : int, default 0
        Seed of ``np.random.default_rng``.

    Returns
    -------
    Dataset
        X of shape (n_samples, 2), y of shape (n_samples, 1) with 0/1, all in the
        training part.
    """
    n_samples, noise, rng = _generator_args("linear", n_samples, noise, seed, 4)
    angle = rng.uniform(0.0, 2.0 * np.pi)
    normal = np.array([np.cos(angle), np.sin(angle)])
    X = rng.uniform(-1.0, 1.0, size=(n_samples, 2))
    side = X @ normal >= 0.0
    X = X + np.where(side, 0.1, -0.1)[:, None] * normal
    X = X + noise * rng.standard_normal(X.shape)
    label = side.astype(np.int64)
    return _generated("linear", "binary", X, label, 2, n_samples, noise, seed)


def sine(n_samples: int = 200, noise: float = 0.1, seed: int = 0) -> Dataset:
    """Generate a 1-D regression task: y = sin(x) plus noise, x uniform in [-pi, pi].

    Parameters
    ----------
    n_samples : int, default 200
        Number of points, at least 4.
    noise : float, default 0.1
        Standard deviation of Gaussian noise added to y.
    seed : int, default 0
        Seed of ``np.random.default_rng``.

    Returns
    -------
    Dataset
        X of shape (n_samples, 1), y of shape (n_samples, 1), all in the training
        part.
    """
    n_samples, noise, rng = _generator_args("sine", n_samples, noise, seed, 4)
    x = rng.uniform(-np.pi, np.pi, size=n_samples)
    y = np.sin(x) + noise * rng.standard_normal(n_samples)
    return _whole_dataset(
        "sine",
        "regression",
        x[:, None],
        y[:, None],
        feature_names=("x",),
        class_names=(),
        target_name="y",
        info={
            "source": _GENERATED_SOURCE.format(name="sine"),
            "generator": {"n_samples": n_samples, "noise": noise, "seed": seed},
        },
    )


# ---------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------

_GENERATED_SOURCE = "Generated by glassnet's '{name}' generator (no licence needed)."

_UCI_LICENCE = (
    "UCI Machine Learning Repository, CC BY 4.0; file taken from scikit-learn's "
    "copy (BSD-3-Clause) and converted to CSV, see sessions/data/SOURCES.md"
)

_SHIPPED: dict[str, tuple[str, str]] = {
    "iris": ("iris.csv", "species"),
    "wine": ("wine.csv", "class"),
    "breast_cancer": ("breast_cancer.csv", "diagnosis"),
    "digits": ("digits.csv.gz", "digit"),
}

_GENERATORS: dict[str, Callable[..., Dataset]] = {
    "xor": xor,
    "circles": circles,
    "moons": moons,
    "spirals": spirals,
    "blobs": blobs,
    "linear": linear,
    "sine": sine,
}


def _info(
    name: str,
    task: str,
    description: str,
    *,
    n_features: int,
    n_classes: int,
    hidden_sizes: tuple[int, ...],
    hidden_activation: str,
    default_n_samples: int | None = None,
    default_noise: float | None = None,
    source: str | None = None,
) -> DatasetInfo:
    """Build one registry entry; the output activation and loss follow the task."""
    output_activation, loss = TASK_DEFAULTS[task]
    synthetic = name in _GENERATORS
    return DatasetInfo(
        name=name,
        task=task,
        description=description,
        is_2d=n_features == 2,
        synthetic=synthetic,
        n_features=n_features,
        n_classes=n_classes,
        hidden_sizes=hidden_sizes,
        hidden_activation=hidden_activation,
        output_activation=output_activation,
        loss=loss,
        default_n_samples=default_n_samples,
        default_noise=default_noise,
        source=source or _GENERATED_SOURCE.format(name=name),
    )


DATASETS: dict[str, DatasetInfo] = {
    "xor": _info(
        "xor",
        "binary",
        "Four quadrants: class 1 where the two coordinates differ in sign. "
        "No straight line separates the classes.",
        n_features=2,
        n_classes=2,
        hidden_sizes=(4,),
        hidden_activation="tanh",
        default_n_samples=200,
        default_noise=0.1,
    ),
    "circles": _info(
        "circles",
        "binary",
        "A small ring inside a large ring; the boundary must be closed.",
        n_features=2,
        n_classes=2,
        hidden_sizes=(8,),
        hidden_activation="tanh",
        default_n_samples=200,
        default_noise=0.08,
    ),
    "moons": _info(
        "moons",
        "binary",
        "Two interleaving half circles; the boundary must bend twice.",
        n_features=2,
        n_classes=2,
        hidden_sizes=(8, 8),
        hidden_activation="tanh",
        default_n_samples=200,
        default_noise=0.1,
    ),
    "spirals": _info(
        "spirals",
        "binary",
        "Two spiral arms wound into each other; hard, needs several layers.",
        n_features=2,
        n_classes=2,
        hidden_sizes=(16, 16),
        hidden_activation="tanh",
        default_n_samples=300,
        default_noise=0.05,
    ),
    "blobs": _info(
        "blobs",
        "multiclass",
        "Three round clouds of points, one class each.",
        n_features=2,
        n_classes=3,
        hidden_sizes=(8,),
        hidden_activation="relu",
        default_n_samples=300,
        default_noise=0.5,
    ),
    "linear": _info(
        "linear",
        "binary",
        "Two classes on either side of a straight line, with a gap between them.",
        n_features=2,
        n_classes=2,
        hidden_sizes=(4,),
        hidden_activation="tanh",
        default_n_samples=200,
        default_noise=0.0,
    ),
    "sine": _info(
        "sine",
        "regression",
        "One input x and a noisy target sin(x): fit a curve.",
        n_features=1,
        n_classes=0,
        hidden_sizes=(16,),
        hidden_activation="tanh",
        default_n_samples=200,
        default_noise=0.1,
    ),
    "iris": _info(
        "iris",
        "multiclass",
        "150 iris flowers, 4 measurements in cm, 3 species (50 each).",
        n_features=4,
        n_classes=3,
        hidden_sizes=(16,),
        hidden_activation="relu",
        source="Iris: R. A. Fisher (1936), https://doi.org/10.24432/C56C76; "
        + _UCI_LICENCE,
    ),
    "wine": _info(
        "wine",
        "multiclass",
        "178 Italian wines, 13 chemical measurements, 3 cultivars.",
        n_features=13,
        n_classes=3,
        hidden_sizes=(16,),
        hidden_activation="relu",
        source="Wine: S. Aeberhard and M. Forina (1992), "
        "https://doi.org/10.24432/C5PC7J; " + _UCI_LICENCE,
    ),
    "breast_cancer": _info(
        "breast_cancer",
        "binary",
        "569 breast-mass images, 30 cell-nucleus measurements, "
        "benign (0) or malignant (1).",
        n_features=30,
        n_classes=2,
        hidden_sizes=(16,),
        hidden_activation="relu",
        source="Breast Cancer Wisconsin (Diagnostic): W. Wolberg, O. Mangasarian, "
        "N. Street and W. Street (1993), https://doi.org/10.24432/C5DW2B; "
        + _UCI_LICENCE,
    ),
    "digits": _info(
        "digits",
        "multiclass",
        "1797 handwritten digits as 8x8 images of counts 0-16, 10 classes.",
        n_features=64,
        n_classes=10,
        hidden_sizes=(32,),
        hidden_activation="relu",
        source="Optical Recognition of Handwritten Digits: E. Alpaydin and "
        "C. Kaynak (1998), https://doi.org/10.24432/C50P49; " + _UCI_LICENCE,
    ),
}


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------


def load_dataset(
    name: str,
    *,
    test_fraction: float = 0.2,
    standardize: bool = True,
    seed: int = 0,
    n_samples: int | None = None,
    noise: float | None = None,
) -> Dataset:
    """Load a built-in dataset, split it and standardize its features.

    Parameters
    ----------
    name : str
        A key of `DATASETS` (``"moons"``, ``"iris"``, ...).
    test_fraction : float, default 0.2
        Share of rows put in the test part, from 0 (no test part) up to, not
        including, 1. See `prepare_dataset` for how rows are chosen.
    standardize : bool, default True
        Scale every feature to mean 0 and standard deviation 1, with the mean
        and std of the training part.
    seed : int, default 0
        Seeds the generator (synthetic data) and the split.
    n_samples : int, optional
        Rows to generate; only for synthetic datasets (default: the entry's
        `default_n_samples`).
    noise : float, optional
        Noise of the generator; only for synthetic datasets.

    Returns
    -------
    Dataset
        With ``info["source"]`` (citation and licence), ``info["split"]``,
        ``info["standardization"]`` and ``info["notices"]``.

    Raises
    ------
    DatasetError
        For an unknown name (the message lists the valid ones), `n_samples` or
        `noise` given for a shipped dataset, or an impossible split.
    """
    if name not in DATASETS:
        msg = (
            f"Unknown dataset {name!r}. Choose one of: {', '.join(DATASETS)}; "
            "or import your own CSV file."
        )
        raise DatasetError(msg)
    entry = DATASETS[name]
    if entry.synthetic:
        n = entry.default_n_samples if n_samples is None else n_samples
        level = entry.default_noise if noise is None else noise
        whole = _GENERATORS[name](n_samples=n, noise=level, seed=seed)
    else:
        pairs = (("n_samples", n_samples), ("noise", noise))
        given = [key for key, value in pairs if value is not None]
        if given:
            msg = (
                f"{' and '.join(given)} only apply to generated datasets; {name!r} is "
                f"read from a file with a fixed number of rows. Leave "
                f"{' and '.join(given)} unset."
            )
            raise DatasetError(msg)
        whole = _load_shipped(name)
    return prepare_dataset(
        whole.name,
        whole.task,
        whole.X_train,
        _targets_of(whole),
        feature_names=whole.feature_names,
        class_names=whole.class_names,
        target_name=whole.target_name,
        test_fraction=test_fraction,
        standardize=standardize,
        seed=seed,
        info=whole.info,
    )


def prepare_dataset(
    name: str,
    task: str,
    X: NDArray[Any],
    targets: NDArray[Any],
    *,
    feature_names: Sequence[str],
    class_names: Sequence[str] = (),
    target_name: str = "y",
    test_fraction: float = 0.2,
    standardize: bool = True,
    seed: int = 0,
    impute_mean: bool = False,
    info: Mapping[str, Any] | None = None,
    notices: Sequence[str] = (),
) -> Dataset:
    """Split rows into training and test parts, scale features, build a `Dataset`.

    Parameters
    ----------
    name : str
        Name shown to the user.
    task : {"binary", "multiclass", "regression"}
    X : ndarray of shape (n_samples, n_features)
        Features. Must be finite, except that NaN marks a value to fill when
        `impute_mean` is True.
    targets : ndarray of shape (n_samples,)
        Class index 0 .. n_classes-1 for classification, the value for regression.
    feature_names : sequence of str
        One name per column of `X`.
    class_names : sequence of str
        Label of each class index (classification only).
    target_name : str, default "y"
    test_fraction : float, default 0.2
        Share of rows for the test part; 0 means no test part.
    standardize : bool, default True
        Scale features with the training part's mean and std.
    seed : int, default 0
        Seed of the split.
    impute_mean : bool, default False
        Fill NaN features with the column mean of the training part.
    info : mapping, optional
        JSON-ready notes to keep in ``Dataset.info`` (e.g. ``"source"``).
    notices : sequence of str
        Plain sentences for the user, kept in ``info["notices"]`` before the
        notices this function adds.

    Returns
    -------
    Dataset

    Raises
    ------
    DatasetError
        For a test fraction outside [0, 1), a split that leaves a part empty, or a
        feature column that has no value to fill from.

    Notes
    -----
    The test part has ``round(test_fraction * n_samples)`` rows (halves rounded
    up). Rows with identical features form one group, and a group is never cut
    by the split, so no test row repeats a training row. For classification the
    split is stratified: each class gets its share of test rows, and every class
    with at least two rows appears in both parts when the sizes allow; a class
    with a single row stays in the training part. When groups do not fit the
    quotas exactly, the test part can be a little smaller; a notice says so.
    """
    X = np.asarray(X, dtype=np.float64)
    targets = np.asarray(targets)
    _check_arrays(task, X, targets, feature_names, class_names, impute_mean)
    n_rows = int(X.shape[0])
    fraction = check_test_fraction(test_fraction)
    _check_seed(seed)
    notes = list(notices)
    class_index = targets.astype(np.int64) if task != "regression" else None
    n_classes = len(class_names) if class_index is not None else 0

    # Choose the test rows.
    n_test = _test_row_count(fraction, n_rows)
    groups = duplicate_groups(X)
    n_repeated = n_rows - int(groups.max(initial=-1)) - 1
    if n_test:
        test_mask = _split_mask(
            class_index, n_classes, groups, n_test, np.random.default_rng(seed)
        )
        notes.extend(_split_notices(class_index, class_names, test_mask, n_test))
        if n_repeated:
            notes.append(
                f"{_plural(n_repeated, 'row')} "
                f"{'repeats' if n_repeated == 1 else 'repeat'} the features of an "
                "earlier row; identical rows were kept on the same side of the "
                "train/test split, so no test row also appears in training."
            )
    else:
        test_mask = np.zeros(n_rows, dtype=bool)
    train = ~test_mask

    # Fill gaps, then scale, with statistics of the training rows only.
    X_filled, fill_info = _impute(X, train, feature_names) if impute_mean else (X, {})
    if standardize:
        X_scaled, scale_info, scale_notes = _standardize(X_filled, train, feature_names)
        notes.extend(scale_notes)
    else:
        X_scaled, scale_info = X_filled, {"applied": False}

    outputs = _outputs(task, targets, n_classes)
    full_info: dict[str, Any] = dict(info or {})
    full_info["split"] = {
        "test_fraction": fraction,
        "seed": seed,
        "n_train": int(train.sum()),
        "n_test": int(test_mask.sum()),
        "stratified": class_index is not None,
        "rows_repeating_features": n_repeated,
    }
    if fill_info:
        full_info["imputation"] = fill_info
    full_info["standardization"] = scale_info
    full_info["notices"] = notes
    return Dataset(
        name=name,
        task=task,
        X_train=X_scaled[train],
        y_train=outputs[train],
        X_test=X_scaled[test_mask],
        y_test=outputs[test_mask],
        feature_names=tuple(feature_names),
        class_names=tuple(class_names),
        target_name=target_name,
        info=full_info,
    )


def check_test_fraction(test_fraction: Any) -> float:
    """Return the test fraction as a float; raise `DatasetError` unless in [0, 1)."""
    if (
        isinstance(test_fraction, bool)
        or not isinstance(test_fraction, Real)
        or not 0.0 <= float(test_fraction) < 1.0
    ):
        msg = (
            "The test fraction must be a number from 0 (no test set) up to, not "
            f"including, 1; got {test_fraction!r}. A typical value is 0.2."
        )
        raise DatasetError(msg)
    return float(test_fraction)


def duplicate_groups(X: Array) -> IntArray:
    """Return a group id per row; rows with identical features share one id.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)

    Returns
    -------
    ndarray of shape (n_samples,)
        Ids numbered in order of first appearance, so the largest id + 1 is the
        number of distinct rows. NaN equals NaN here (rows compare as bytes).
    """
    n_rows = X.shape[0]
    if n_rows == 0:
        return np.zeros(0, dtype=np.int64)
    # NOTE: adding 0.0 turns -0.0 into 0.0 so the byte view compares values.
    rows = np.ascontiguousarray(X + 0.0)
    keys = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1])))
    _, first, inverse = np.unique(keys.ravel(), return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inverse.ravel()]


# ---------------------------------------------------------------------------
# Private helpers: generators
# ---------------------------------------------------------------------------


def _generator_args(
    name: str, n_samples: Any, noise: Any, seed: Any, minimum: int
) -> tuple[int, float, np.random.Generator]:
    """Validate generator arguments and return them with a seeded generator."""
    if (
        isinstance(n_samples, bool)
        or not isinstance(n_samples, Integral)
        or not minimum <= int(n_samples) <= MAX_GENERATED_SAMPLES
    ):
        msg = (
            f"n_samples for {name!r} must be a whole number from {minimum} to "
            f"{MAX_GENERATED_SAMPLES}; got {n_samples!r}."
        )
        raise DatasetError(msg)
    if (
        isinstance(noise, bool)
        or not isinstance(noise, Real)
        or not math.isfinite(noise)
        or noise < 0
    ):
        msg = f"noise for {name!r} must be a number >= 0; got {noise!r}."
        raise DatasetError(msg)
    _check_seed(seed)
    return int(n_samples), float(noise), np.random.default_rng(int(seed))


def _check_seed(seed: Any) -> None:
    """Raise unless the seed is a whole number >= 0."""
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        msg = f"seed must be a whole number >= 0; got {seed!r}."
        raise DatasetError(msg)


def _balanced_labels(n_samples: int, n_classes: int, rng: np.random.Generator) -> Any:
    """Return class indices with equal counts (the first classes get the remainder)."""
    label = np.arange(n_samples, dtype=np.int64) % n_classes
    return rng.permutation(label)


def _generated(
    name: str,
    task: str,
    X: Array,
    label: IntArray,
    n_classes: int,
    n_samples: int,
    noise: float,
    seed: int,
) -> Dataset:
    """Wrap generated 2-D classification points in an unsplit `Dataset`."""
    return _whole_dataset(
        name,
        task,
        X,
        _outputs(task, label, n_classes),
        feature_names=("x1", "x2"),
        class_names=tuple(str(k) for k in range(n_classes)),
        target_name="class",
        info={
            "source": _GENERATED_SOURCE.format(name=name),
            "generator": {"n_samples": n_samples, "noise": noise, "seed": seed},
        },
    )


def _whole_dataset(
    name: str,
    task: str,
    X: Array,
    y: Array,
    *,
    feature_names: tuple[str, ...],
    class_names: tuple[str, ...],
    target_name: str,
    info: dict[str, Any],
) -> Dataset:
    """Build a `Dataset` with every row in the training part and an empty test part."""
    return Dataset(
        name=name,
        task=task,
        X_train=X,
        y_train=y,
        X_test=np.empty((0, X.shape[1])),
        y_test=np.empty((0, y.shape[1])),
        feature_names=feature_names,
        class_names=class_names,
        target_name=target_name,
        info=info,
    )


def _outputs(task: str, targets: NDArray[Any], n_classes: int) -> Array:
    """Return network targets: (n, 1) 0/1 or values, or (n, n_classes) one-hot."""
    if task == "multiclass":
        return np.eye(n_classes)[np.asarray(targets, dtype=np.int64)]
    return np.asarray(targets, dtype=np.float64).reshape(-1, 1)


def _targets_of(data: Dataset) -> NDArray[Any]:
    """Return the (n_samples,) class indices or values of an unsplit dataset."""
    if data.task == "multiclass":
        return np.argmax(data.y_train, axis=1)
    if data.task == "binary":
        return data.y_train[:, 0].astype(np.int64)
    return data.y_train[:, 0].copy()


# ---------------------------------------------------------------------------
# Private helpers: shipped files
# ---------------------------------------------------------------------------


@cache
def _load_shipped(name: str) -> Dataset:
    """Read one shipped CSV (cached) into an unsplit `Dataset`."""
    file_name, target = _SHIPPED[name]
    path = DATA_DIR / file_name
    try:
        frame = pd.read_csv(path, dtype={target: str})
    except OSError as err:
        msg = (
            f"The data file of {name!r} is missing or unreadable ({path}). "
            "Reinstall glassnet; the file ships in sessions/data/."
        )
        raise DatasetError(msg) from err
    labels = frame.pop(target).to_numpy(dtype=str)
    class_names, index = np.unique(labels, return_inverse=True)
    entry = DATASETS[name]
    return _whole_dataset(
        name,
        entry.task,
        frame.to_numpy(dtype=np.float64),
        _outputs(entry.task, index, len(class_names)),
        feature_names=tuple(str(c) for c in frame.columns),
        class_names=tuple(str(c) for c in class_names),
        target_name=target,
        info={"source": entry.source, "file": file_name},
    )


# ---------------------------------------------------------------------------
# Private helpers: split
# ---------------------------------------------------------------------------


def _check_arrays(
    task: str,
    X: Array,
    targets: NDArray[Any],
    feature_names: Sequence[str],
    class_names: Sequence[str],
    impute_mean: bool,
) -> None:
    """Raise if the arrays given to `prepare_dataset` do not describe a dataset."""
    if task not in TASK_DEFAULTS:
        msg = f"task must be one of {', '.join(TASK_DEFAULTS)}; got {task!r}."
        raise DatasetError(msg)
    if X.ndim != 2 or targets.shape != (X.shape[0],) or X.shape[0] == 0:
        msg = (
            "X must have shape (n_samples, n_features) and targets (n_samples,) "
            f"with n_samples >= 1; got {X.shape} and {targets.shape}."
        )
        raise DatasetError(msg)
    if len(feature_names) != X.shape[1]:
        msg = (
            f"{len(feature_names)} feature names for {X.shape[1]} feature columns; "
            "give one name per column."
        )
        raise DatasetError(msg)
    bad = ~np.isfinite(X) & ~(np.isnan(X) if impute_mean else False)
    if bad.any():
        row, col = (int(v) for v in np.argwhere(bad)[0])
        msg = (
            f"{int(bad.sum())} feature values are not finite numbers (the first in "
            f"column {feature_names[col]!r}, row {row + 1}). Remove or fill them."
        )
        raise DatasetError(msg)
    if task == "regression":
        if not np.all(np.isfinite(targets.astype(np.float64))):
            msg = "Regression targets must be finite numbers; remove or fill the gaps."
            raise DatasetError(msg)
        return
    n_classes = len(class_names)
    index = targets.astype(np.int64)
    if n_classes < 2 or index.min() < 0 or index.max() >= n_classes:
        msg = (
            f"Class indices must run from 0 to len(class_names) - 1 with at least "
            f"2 classes; got {n_classes} class names and indices from "
            f"{index.min()} to {index.max()}."
        )
        raise DatasetError(msg)
    if task == "binary" and n_classes != 2:
        msg = (
            f"A binary task has exactly 2 classes; got {n_classes}. Use "
            "task='multiclass'."
        )
        raise DatasetError(msg)


def _plural(count: int, word: str) -> str:
    """Return '1 row' or '3 rows'."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _percent(fraction: float) -> str:
    """Format a fraction as a short percentage: 0.1 -> '10%', 0.125 -> '12.5%'."""
    return f"{fraction * 100:.4g}%"


def _test_row_count(fraction: float, n_rows: int) -> int:
    """Return the number of test rows, or raise if a part would be empty."""
    if fraction == 0.0:
        return 0
    n_test = math.floor(fraction * n_rows + 0.5)
    rows = "row" if n_rows == 1 else "rows"
    if n_test == 0:
        msg = (
            f"A test fraction of {_percent(fraction)} of {n_rows} {rows} is 0 rows. "
            "Use a larger fraction or more data, or set the test fraction to 0."
        )
        raise DatasetError(msg)
    if n_test >= n_rows:
        msg = (
            f"A test fraction of {_percent(fraction)} of {n_rows} {rows} leaves no "
            "row for training. Use a smaller fraction or more data."
        )
        raise DatasetError(msg)
    return n_test


def _class_quotas(counts: IntArray, n_test: int) -> IntArray:
    """Share `n_test` test rows among classes in proportion to their sizes.

    A class with at least two rows gets at least one test and one training row
    when the total allows (larger classes first); a single-row class gets none.
    """
    counts = np.asarray(counts, dtype=np.int64)
    low = np.where(counts >= 2, 1, 0)
    high = np.where(counts >= 2, counts - 1, 0)
    if low.sum() > n_test:
        keep = np.argsort(-counts, kind="stable")[:n_test]
        low = np.zeros_like(low)
        low[keep] = 1
    target = counts * n_test / counts.sum()
    quota = np.clip(np.floor(target).astype(np.int64), low, high)
    while quota.sum() < n_test:
        room = quota < high
        if not room.any():
            break
        gap = np.where(room, target - quota, -np.inf)
        quota[int(np.argmax(gap))] += 1
    while quota.sum() > n_test:
        room = quota > low
        if not room.any():
            break
        excess = np.where(room, quota - target, -np.inf)
        quota[int(np.argmax(excess))] -= 1
    return quota


def _split_mask(
    class_index: IntArray | None,
    n_classes: int,
    groups: IntArray,
    n_test: int,
    rng: np.random.Generator,
) -> NDArray[np.bool_]:
    """Return a boolean mask of test rows: stratified, with groups kept whole."""
    n_rows = groups.shape[0]
    strata = class_index if class_index is not None else np.zeros(n_rows, np.int64)
    n_strata = max(n_classes, 1)
    counts = np.bincount(strata, minlength=n_strata)
    quota = _class_quotas(counts, n_test) if class_index is not None else None
    if quota is None:
        quota = np.array([n_test], dtype=np.int64)
    n_groups = int(groups.max()) + 1
    order = rng.permutation(n_groups)

    # Fast path: every row is its own group, so fill each quota exactly.
    if n_groups == n_rows:
        test = np.zeros(n_rows, dtype=bool)
        shuffled = rng.permutation(n_rows)
        for k in range(n_strata):
            members = shuffled[strata[shuffled] == k]
            test[members[: quota[k]]] = True
        if not test.any():
            msg = (
                f"No row can go to the test set: {_plural(n_test, 'test row')} "
                f"{'was' if n_test == 1 else 'were'} asked for, "
                "but every class has a single row, and a class must keep its row "
                "for training. Add rows, or set the test fraction to 0."
            )
            raise DatasetError(msg)
        return test

    # General case: add whole groups in random order while the quotas allow.
    by_group = np.argsort(groups, kind="stable")
    starts = np.searchsorted(groups[by_group], np.arange(n_groups + 1))
    rows_of = [by_group[starts[g] : starts[g + 1]] for g in range(n_groups)]
    need = [
        np.bincount(strata[rows_of[g]], minlength=n_strata) for g in range(n_groups)
    ]
    taken = np.zeros(n_strata, dtype=np.int64)
    chosen = np.zeros(n_groups, dtype=bool)
    for g in order:
        if np.all(taken + need[g] <= quota):
            taken += need[g]
            chosen[g] = True

    # Second pass when groups were too big for the quotas: fill up to n_test rows,
    # first with groups that bring classes the test part still lacks, never taking
    # the last training row of a class.
    if taken.sum() < n_test:
        missing = (taken == 0) & (counts >= 2)
        rest = [int(g) for g in order if not chosen[g]]
        rest.sort(key=lambda g: -int(np.sum((need[g] > 0) & missing)))
        for g in rest:
            fits = taken.sum() + need[g].sum() <= n_test
            keeps_train = np.all((counts - taken - need[g] >= 1) | (need[g] == 0))
            if fits and keeps_train:
                taken += need[g]
                chosen[g] = True
    if not chosen.any():
        msg = (
            f"No test rows can be chosen: {_plural(n_test, 'test row')} "
            f"{'was' if n_test == 1 else 'were'} asked for, but "
            "rows with identical features must stay together and every group of "
            "such rows is too large or holds the last row of a class. Set the test "
            "fraction to 0, use a larger fraction, or add rows."
        )
        raise DatasetError(msg)
    return chosen[groups]


def _split_notices(
    class_index: IntArray | None,
    class_names: Sequence[str],
    test_mask: NDArray[np.bool_],
    n_test: int,
) -> list[str]:
    """Describe how the split differs from the plain request, in plain sentences."""
    notes = []
    got = int(test_mask.sum())
    if got != n_test:
        notes.append(
            f"The test set has {_plural(got, 'row')} instead of {n_test}: rows with "
            "identical "
            "features stay together, and a class with a single row stays in "
            "training."
        )
    if class_index is None:
        return notes
    in_test = set(class_index[test_mask].tolist())
    in_train = set(class_index[~test_mask].tolist())
    only_train = [class_names[k] for k in sorted(in_train - in_test)]
    only_test = [class_names[k] for k in sorted(in_test - in_train)]
    if only_train:
        notes.append(
            "Not every class could be put in the test set (a class with a single "
            "row stays in training, and there may be fewer test rows than classes): "
            f"{', '.join(repr(c) for c in only_train)} only in training."
        )
    if only_test:
        notes.append(
            f"Classes only in the test set: {', '.join(repr(c) for c in only_test)}; "
            "the network never sees them in training."
        )
    return notes


# ---------------------------------------------------------------------------
# Private helpers: imputation and standardization
# ---------------------------------------------------------------------------


def _impute(
    X: Array, train: NDArray[np.bool_], feature_names: Sequence[str]
) -> tuple[Array, dict[str, Any]]:
    """Fill NaN values with the column mean of the training rows."""
    gaps = np.isnan(X)
    if not gaps.any():
        return X, {}
    X = X.copy()
    means: dict[str, float] = {}
    for j in (int(k) for k in np.flatnonzero(gaps.any(axis=0))):
        known = X[train & ~gaps[:, j], j]
        if known.size == 0:
            msg = (
                f"Column {feature_names[j]!r} has no value in any training row, so "
                "there is no mean to fill its gaps with. Remove the column or fill "
                "it in the file."
            )
            raise DatasetError(msg)
        means[feature_names[j]] = float(known.mean())
        X[gaps[:, j], j] = known.mean()
    return X, {"method": "mean of training rows", "fill_values": means}


def _standardize(
    X: Array, train: NDArray[np.bool_], feature_names: Sequence[str]
) -> tuple[Array, dict[str, Any], list[str]]:
    """Scale columns to mean 0 and std 1 using training-row statistics.

    A column that is constant in the training rows is left as it is (recorded as
    mean 0, std 1, so ``x_scaled = (x - mean) / std`` holds for every column).
    """
    rows = X[train]
    with np.errstate(over="ignore", invalid="ignore"):
        mean = rows.mean(axis=0)
        std = rows.std(axis=0)
    # Values near the float64 limit (1e308) overflow the sums: such columns are
    # scaled down by their largest magnitude first, and scaled with that.
    huge = ~(np.isfinite(mean) & np.isfinite(std))
    scale = np.ones_like(mean)
    if huge.any():
        scale[huge] = np.abs(rows[:, huge]).max(axis=0)
        mean[huge] = (rows[:, huge] / scale[huge]).mean(axis=0) * scale[huge]
        std[huge] = (rows[:, huge] / scale[huge]).std(axis=0) * scale[huge]
    constant = ~(std > 1e-12 * np.maximum(1.0, np.abs(mean)))
    mean = np.where(constant, 0.0, mean)
    std = np.where(constant, 1.0, std)
    notes = []
    unscaled = [feature_names[int(j)] for j in np.flatnonzero(constant)]
    if unscaled:
        shown = ", ".join(repr(c) for c in unscaled[:10])
        more = f" and {len(unscaled) - 10} more" if len(unscaled) > 10 else ""
        notes.append(
            f"{len(unscaled)} feature column(s) have the same value in every training "
            f"row and were left unscaled: {shown}{more}. They carry no information "
            "for training."
        )
    info = {
        "applied": True,
        "fitted_on": "training rows",
        "columns": list(feature_names),
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
        "unscaled_columns": unscaled,
    }
    with np.errstate(over="ignore", invalid="ignore"):
        out = (X - mean) / std
    if huge.any():
        out[:, huge] = (X[:, huge] / scale[huge] - mean[huge] / scale[huge]) / (
            std[huge] / scale[huge]
        )
    return out, info, notes
