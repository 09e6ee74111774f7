"""Test the built-in datasets: generators, shipped files, registry, split, scaling."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.data import Dataset
from sessions.datasets import (
    DATA_DIR,
    DATASETS,
    TASK_DEFAULTS,
    blobs,
    circles,
    linear,
    load_dataset,
    moons,
    prepare_dataset,
    sine,
    spirals,
    xor,
)
from sessions.errors import DatasetError

GENERATORS_2D: dict[str, Callable[..., Dataset]] = {
    "xor": xor,
    "circles": circles,
    "moons": moons,
    "spirals": spirals,
    "blobs": blobs,
    "linear": linear,
}


# -- generators -------------------------------------------------------------------


@pytest.mark.parametrize("name", GENERATORS_2D)
def test_generator_gives_seeded_2d_points(name: str) -> None:
    make = GENERATORS_2D[name]
    data = make(n_samples=60, noise=0.1, seed=3)
    assert data.X_train.shape == (60, 2) and data.n_test == 0
    assert data.feature_names == ("x1", "x2")
    assert np.isfinite(data.X_train).all()
    same = make(n_samples=60, noise=0.1, seed=3)
    other = make(n_samples=60, noise=0.1, seed=4)
    assert same.content_hash() == data.content_hash()
    assert other.content_hash() != data.content_hash()


@pytest.mark.parametrize("name", ["xor", "circles", "moons", "spirals", "linear"])
def test_binary_generator_gives_one_column_of_zeros_and_ones(name: str) -> None:
    data = GENERATORS_2D[name](n_samples=100, noise=0.05, seed=0)
    assert data.task == "binary" and data.y_train.shape == (100, 1)
    assert set(np.unique(data.y_train)) == {0.0, 1.0}
    assert data.class_names == ("0", "1")


@pytest.mark.parametrize("name", ["circles", "moons", "spirals"])
def test_generator_balances_the_classes(name: str) -> None:
    data = GENERATORS_2D[name](n_samples=101, noise=0.1, seed=0)
    assert sorted(np.bincount(data.y_train[:, 0].astype(int))) == [50, 51]


def test_generators_leave_the_global_random_state_alone() -> None:
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    for make in GENERATORS_2D.values():
        make(n_samples=20, noise=0.1, seed=0)
    sine(n_samples=20, noise=0.1, seed=0)
    np.testing.assert_array_equal(np.random.get_state()[1], before)


def test_xor_labels_follow_the_quadrants_without_noise() -> None:
    data = xor(n_samples=200, noise=0.0, seed=0)
    X, y = data.X_train, data.y_train[:, 0]
    np.testing.assert_array_equal(y, (X[:, 0] * X[:, 1] < 0).astype(float))


def test_circles_have_radius_one_outside_and_half_inside() -> None:
    data = circles(n_samples=100, noise=0.0, seed=0)
    radius = np.hypot(data.X_train[:, 0], data.X_train[:, 1])
    inner = data.y_train[:, 0] == 1
    np.testing.assert_allclose(radius[inner], 0.5)
    np.testing.assert_allclose(radius[~inner], 1.0)


def test_spirals_interleave_two_arms() -> None:
    data = spirals(n_samples=200, noise=0.0, seed=0)
    radius = np.hypot(data.X_train[:, 0], data.X_train[:, 1])
    assert radius.max() <= 1.0 + 1e-12
    # Arm 1 is arm 0 turned by half a turn: mirrored points land on arm 0.
    arm1 = data.X_train[data.y_train[:, 0] == 1]
    arm0 = data.X_train[data.y_train[:, 0] == 0]
    angle0 = np.arctan2(arm0[:, 1], arm0[:, 0])
    assert arm1.shape[0] == arm0.shape[0] == 100
    assert np.ptp(angle0) > np.pi  # the arm winds around the origin


def test_linear_is_separable_without_noise() -> None:
    data = linear(n_samples=200, noise=0.0, seed=5)
    X = np.hstack([data.X_train, np.ones((200, 1))])
    sign = 2.0 * data.y_train[:, 0] - 1.0
    w = np.zeros(3)
    for _ in range(1000):  # perceptron: converges only on separable data
        wrong = sign * (X @ w) <= 0
        if not wrong.any():
            break
        w += (sign[wrong, None] * X[wrong]).sum(axis=0)
    assert not (sign * (X @ w) <= 0).any()


@pytest.mark.parametrize(("n_classes", "task"), [(2, "binary"), (4, "multiclass")])
def test_blobs_task_and_targets_follow_the_number_of_classes(
    n_classes: int, task: str
) -> None:
    data = blobs(n_samples=80, noise=0.3, seed=0, n_classes=n_classes)
    assert data.task == task
    if task == "multiclass":
        assert data.y_train.shape == (80, n_classes)
        np.testing.assert_array_equal(data.y_train.sum(axis=1), 1.0)
        np.testing.assert_array_equal(data.y_train.sum(axis=0), 20)
    else:
        assert data.y_train.shape == (80, 1)


def test_sine_is_a_one_input_regression() -> None:
    data = sine(n_samples=50, noise=0.0, seed=0)
    assert data.task == "regression" and data.X_train.shape == (50, 1)
    np.testing.assert_allclose(data.y_train[:, 0], np.sin(data.X_train[:, 0]))


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"n_samples": 2}, "n_samples for 'moons' must be a whole number from 4"),
        ({"n_samples": 10.5}, "got 10.5"),
        ({"n_samples": True}, "got True"),
        ({"noise": -0.1}, "noise for 'moons' must be a number >= 0; got -0.1"),
        ({"noise": float("nan")}, "got nan"),
        ({"seed": -1}, "seed must be a whole number >= 0"),
    ],
)
def test_generator_arguments_are_checked(kwargs: dict[str, object], words: str) -> None:
    with pytest.raises(DatasetError, match=re.escape(words)):
        moons(**kwargs)  # type: ignore[arg-type]


def test_blobs_rejects_a_bad_number_of_classes() -> None:
    with pytest.raises(DatasetError, match="n_classes must be a whole number from 2"):
        blobs(n_classes=1)


# -- registry and loading ------------------------------------------------------------


@pytest.mark.parametrize("name", DATASETS)
def test_registry_entry_matches_the_loaded_dataset(name: str) -> None:
    entry = DATASETS[name]
    data = load_dataset(name)
    assert entry.name == name and data.task == entry.task
    assert data.n_features == entry.n_features
    assert entry.is_2d == (entry.n_features == 2)
    assert len(data.class_names) == entry.n_classes
    assert (entry.output_activation, entry.loss) == TASK_DEFAULTS[entry.task]
    assert entry.hidden_sizes and all(n >= 1 for n in entry.hidden_sizes)
    assert data.info["source"] == entry.source
    assert data.n_test > 0 and np.isfinite(data.X_train).all()


def test_registry_suggests_the_documented_defaults() -> None:
    assert DATASETS["iris"].hidden_sizes == (16,)
    assert DATASETS["digits"].hidden_sizes == (32,)
    assert DATASETS["moons"].hidden_sizes == (8, 8)
    assert TASK_DEFAULTS == {
        "binary": ("sigmoid", "binary_cross_entropy"),
        "multiclass": ("softmax", "categorical_cross_entropy"),
        "regression": ("identity", "mse"),
    }


def test_load_dataset_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(DatasetError, match="Unknown dataset 'mnist'") as err:
        load_dataset("mnist")
    assert all(name in str(err.value) for name in DATASETS)


@pytest.mark.parametrize(
    ("name", "n_rows", "n_features", "counts"),
    [
        ("iris", 150, 4, {"setosa": 50, "versicolor": 50, "virginica": 50}),
        ("wine", 178, 13, {"class_0": 59, "class_1": 71, "class_2": 48}),
        ("breast_cancer", 569, 30, {"benign": 357, "malignant": 212}),
        ("digits", 1797, 64, None),
    ],
)
def test_shipped_dataset_has_its_rows_and_classes(
    name: str, n_rows: int, n_features: int, counts: dict[str, int] | None
) -> None:
    data = load_dataset(name, test_fraction=0, standardize=False)
    assert (data.n_train, data.n_features) == (n_rows, n_features)
    y = data.y_train
    labels = y[:, 0].astype(int) if data.task == "binary" else y.argmax(axis=1)
    found = dict(zip(data.class_names, np.bincount(labels).tolist(), strict=True))
    if counts is not None:
        assert found == counts
    else:
        assert data.class_names == tuple(str(d) for d in range(10))
        assert data.feature_names[9] == "pixel_1_1"
        assert data.X_train.min() == 0 and data.X_train.max() == 16


def test_shipped_iris_keeps_real_feature_names_and_values() -> None:
    data = load_dataset("iris", test_fraction=0, standardize=False)
    assert data.feature_names[0] == "sepal length (cm)"
    np.testing.assert_array_equal(data.X_train[0], [5.1, 3.5, 1.4, 0.2])
    assert data.target_name == "species"


def test_shipped_dataset_source_gives_citation_and_licence() -> None:
    for name in ("iris", "wine", "breast_cancer", "digits"):
        source = load_dataset(name).info["source"]
        assert "https://doi.org/10.24432/" in source and "CC BY 4.0" in source
        assert "scikit-learn" in source and "BSD-3-Clause" in source
    assert "Generated" in load_dataset("moons").info["source"]


def test_sources_file_lists_every_shipped_file_with_its_checksum() -> None:
    text = (DATA_DIR / "SOURCES.md").read_text()
    assert "CC BY 4.0" in text and "BSD 3-Clause" in text
    shipped = sorted(p for p in DATA_DIR.iterdir() if p.name != "SOURCES.md")
    assert [p.name for p in shipped] == [
        "breast_cancer.csv",
        "digits.csv.gz",
        "iris.csv",
        "wine.csv",
    ]
    for path in shipped:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert f"{path.name}" in text and digest in text, path.name


def test_load_dataset_refuses_generator_arguments_for_shipped_data() -> None:
    with pytest.raises(DatasetError, match="n_samples only apply to generated"):
        load_dataset("iris", n_samples=100)
    assert load_dataset("moons", n_samples=40, noise=0.0).n_train == 32


def test_loading_datasets_never_imports_scikit_learn() -> None:
    code = (
        "import sys\n"
        "from sessions.datasets import DATASETS, load_dataset\n"
        "for name in DATASETS: load_dataset(name)\n"
        "print('sklearn' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


# -- split ---------------------------------------------------------------------------


def test_load_dataset_split_is_stratified_and_seeded() -> None:
    data = load_dataset("iris")
    assert (data.n_train, data.n_test) == (120, 30)
    np.testing.assert_array_equal(data.y_test.sum(axis=0), [10, 10, 10])
    assert load_dataset("iris").content_hash() == data.content_hash()
    assert load_dataset("iris", seed=1).content_hash() != data.content_hash()


def test_load_dataset_rejects_a_negative_seed_for_every_dataset() -> None:
    for name in ("moons", "iris"):
        with pytest.raises(DatasetError, match="seed must be a whole number >= 0"):
            load_dataset(name, seed=-1)


def test_load_dataset_test_fraction_zero_means_no_test_set() -> None:
    data = load_dataset("wine", test_fraction=0)
    assert (data.n_train, data.n_test) == (178, 0)


def test_load_dataset_test_fraction_that_gives_no_rows_is_refused() -> None:
    message = (
        "A test fraction of 10% of 4 rows is 0 rows. Use a larger fraction or more "
        "data, or set the test fraction to 0."
    )
    with pytest.raises(DatasetError) as err:
        load_dataset("xor", n_samples=4, test_fraction=0.1)
    assert str(err.value) == message
    with pytest.raises(DatasetError, match="leaves no row for training"):
        load_dataset("xor", n_samples=4, test_fraction=0.9)


@pytest.mark.parametrize("fraction", [1.0, -0.1, 1.5, "0.2", True, float("nan")])
def test_load_dataset_test_fraction_outside_the_range_is_refused(
    fraction: object,
) -> None:
    with pytest.raises(DatasetError, match=r"from 0 \(no test set\) up to, not"):
        load_dataset("moons", test_fraction=fraction)  # type: ignore[arg-type]


@settings(max_examples=150, deadline=None)
@given(
    labels=st.lists(st.integers(0, 4), min_size=4, max_size=60),
    fraction=st.sampled_from([0.1, 0.2, 0.25, 0.5]),
    seed=st.integers(0, 10),
)
def test_split_puts_every_class_on_both_sides_when_possible(
    labels: list[int], fraction: float, seed: int
) -> None:
    classes, index = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        return
    X = np.arange(len(labels), dtype=float)[:, None]
    names = [str(c) for c in classes]
    task = "binary" if len(classes) == 2 else "multiclass"
    try:
        data = prepare_dataset(
            "t", task, X, index, feature_names=["x"], class_names=names,
            test_fraction=fraction, seed=seed, standardize=False,
        )  # fmt: skip
    except DatasetError as err:
        assert "test fraction" in str(err) or "single row" in str(err)
        return
    n_test = int(np.floor(fraction * len(labels) + 0.5))
    counts = np.bincount(index)
    assert data.n_test == min(n_test, int(np.sum(np.maximum(counts - 1, 0))))
    train_idx = data.X_train[:, 0].astype(int)
    test_idx = data.X_test[:, 0].astype(int)
    assert set(index[train_idx]) == set(range(len(classes)))  # training sees all
    splittable = np.flatnonzero(counts >= 2)
    if n_test >= len(splittable):
        assert set(splittable) <= set(index[test_idx])


def test_prepare_dataset_keeps_identical_rows_on_one_side() -> None:
    rng = np.random.default_rng(0)
    X = rng.integers(0, 4, size=(60, 2)).astype(float)  # many repeated rows
    y = (X[:, 0] > 1).astype(int)
    for seed in range(10):
        data = prepare_dataset(
            "dups", "binary", X, y, feature_names=["a", "b"], class_names=["0", "1"],
            seed=seed, standardize=False,
        )  # fmt: skip
        train = {tuple(r) for r in data.X_train}
        test = {tuple(r) for r in data.X_test}
        assert test and not train & test
        assert any("kept on the same side" in n for n in data.info["notices"])


def test_prepare_dataset_rejects_inconsistent_arrays() -> None:
    with pytest.raises(DatasetError, match="2 feature names for 1 feature columns"):
        prepare_dataset("t", "regression", np.zeros((3, 1)), np.zeros(3),
                        feature_names=["a", "b"])  # fmt: skip
    with pytest.raises(DatasetError, match="not finite"):
        prepare_dataset("t", "regression", np.array([[np.inf], [1.0]]), np.zeros(2),
                        feature_names=["a"], test_fraction=0)  # fmt: skip


# -- standardization and imputation ---------------------------------------------------


def test_standardization_is_fitted_on_the_training_rows_only() -> None:
    raw = load_dataset("wine", standardize=False)
    data = load_dataset("wine")
    stats = data.info["standardization"]
    np.testing.assert_allclose(stats["mean"], raw.X_train.mean(axis=0))
    np.testing.assert_allclose(stats["std"], raw.X_train.std(axis=0))
    np.testing.assert_allclose(data.X_train.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(data.X_train.std(axis=0), 1.0)
    expected = (raw.X_test - np.array(stats["mean"])) / np.array(stats["std"])
    np.testing.assert_allclose(data.X_test, expected)
    assert not raw.info["standardization"]["applied"]


def test_standardization_leaves_constant_columns_and_says_so() -> None:
    data = load_dataset("digits")
    stats = data.info["standardization"]
    assert "pixel_0_0" in stats["unscaled_columns"]
    j = data.feature_names.index("pixel_0_0")
    assert (stats["mean"][j], stats["std"][j]) == (0.0, 1.0)
    np.testing.assert_array_equal(data.X_train[:, j], 0.0)
    assert any("left unscaled" in n and "pixel_0_0" in n for n in data.info["notices"])


def test_imputation_uses_the_training_means() -> None:
    X = np.array([[1.0], [np.nan], [3.0], [5.0], [100.0]])
    data = prepare_dataset(
        "t", "regression", X, np.arange(5.0), feature_names=["a"], test_fraction=0,
        standardize=False, impute_mean=True,
    )  # fmt: skip
    np.testing.assert_allclose(data.X_train[:, 0], [1, 27.25, 3, 5, 100])
    assert data.info["imputation"]["fill_values"] == {"a": 27.25}


def test_split_of_single_row_classes_is_refused() -> None:
    with pytest.raises(DatasetError, match="every class has a single row"):
        prepare_dataset(
            "t", "multiclass", np.arange(5.0)[:, None], np.arange(5),
            feature_names=["x"], class_names=list("abcde"),
        )  # fmt: skip
