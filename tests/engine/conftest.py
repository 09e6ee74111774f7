"""Fixtures shared by the engine tests: a seeded generator and event comparison."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine import Dataset
from engine.events import Event


def cases_dir() -> Path:
    """Return shared/cases beside the repository; fail (never skip) if it is missing."""
    path = Path(__file__).resolve().parents[3] / "shared" / "cases"
    if not path.is_dir():
        pytest.fail(
            f"The cases folder {path} is missing. The engine case tests need a copy "
            "of shared/ beside the repository clone (shared/cases/*.json)."
        )
    return path


@pytest.fixture
def load_case() -> Callable[[str], Any]:
    """Return a loader of one case file of shared/cases: JSON as a dict, CSV as arrays.

    A CSV case comes back as ``(X, y)``: every column but the last, and the last.
    """

    def load(name: str) -> Any:
        path = cases_dir() / name
        if not path.is_file():
            pytest.fail(f"Case file {path} is missing from shared/cases.")
        if name.endswith(".json"):
            return json.loads(path.read_text())
        table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
        return table[:, :-1], table[:, -1:]

    return load


@pytest.fixture
def rng() -> np.random.Generator:
    """Return a generator seeded the same way in every test."""
    return np.random.default_rng(20240611)


def same_value(a: Any, b: Any) -> bool:
    """Return True when two event field values are equal bit for bit."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and a.tobytes() == b.tobytes()
        )
    if isinstance(a, dict):
        return (
            isinstance(b, dict)
            and list(a) == list(b)
            and all(same_value(a[k], b[k]) for k in a)
        )
    if isinstance(a, list | tuple):
        return (
            type(a) is type(b)
            and len(a) == len(b)
            and all(same_value(x, y) for x, y in zip(a, b, strict=True))
        )
    if isinstance(a, float) and isinstance(b, float):
        # Bit for bit: NaN equals NaN, 0.0 differs from -0.0.
        return np.float64(a).tobytes() == np.float64(b).tobytes()
    return type(a) is type(b) and a == b


def first_difference(xs: list[Event], ys: list[Event]) -> str | None:
    """Describe the first place two event lists differ, or return None."""
    for i, (x, y) in enumerate(zip(xs, ys, strict=False)):
        if type(x) is not type(y):
            return f"event {i}: {x.kind} vs {y.kind}"
        for f in dataclasses.fields(x):
            if not same_value(getattr(x, f.name), getattr(y, f.name)):
                return f"event {i} ({x.kind}, seq {x.seq}): field {f.name} differs"
    if len(xs) != len(ys):
        return f"{len(xs)} events vs {len(ys)}"
    return None


@pytest.fixture
def assert_same_events() -> Callable[[list[Event], list[Event]], None]:
    """Return a checker that two event lists match field by field, bit for bit."""

    def check(xs: list[Event], ys: list[Event]) -> None:
        where = first_difference(xs, ys)
        assert where is None, where

    return check


def make_dataset(
    X: np.ndarray, y: np.ndarray, task: str = "regression", name: str = "test"
) -> Dataset:
    """Wrap training arrays in a Dataset with an empty test set."""
    names = tuple(f"x{i + 1}" for i in range(X.shape[1]))
    return Dataset(name, task, X, y, X[:0], y[:0], names)


@pytest.fixture
def dataset() -> Callable[..., Dataset]:
    """Return :func:`make_dataset`, which wraps arrays in a Dataset."""
    return make_dataset
