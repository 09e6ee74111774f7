"""Hold a training set and a test set as the engine sees them: float arrays."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine._types import Array
from engine.errors import ConfigError

__all__ = ["TASKS", "Dataset"]

TASKS = ("binary", "multiclass", "regression")


@dataclass(frozen=True, eq=False)
class Dataset:
    """Hold the arrays a run trains and evaluates on, plus what they mean.

    Parameters
    ----------
    name : str
        Short name shown to the user (``"iris"``, ``"moons"``, a file name).
    task : {"binary", "multiclass", "regression"}
        What the targets are.
    X_train : ndarray of shape (n_train, n_features)
    y_train : ndarray of shape (n_train, n_outputs)
        Binary: one column of 0.0 / 1.0.  Multiclass: one-hot, one column per
        class.  Regression: one column per target.
    X_test : ndarray of shape (n_test, n_features)
        May have zero rows.
    y_test : ndarray of shape (n_test, n_outputs)
    feature_names : tuple of str
        One name per feature column.
    class_names : tuple of str
        For classification, the original label of each class index (binary:
        the labels of 0 and 1).  Empty for regression.
    target_name : str
        Name of the target column.
    info : dict
        JSON-ready notes on where the data came from and how it was prepared
        (source, licence, standardization means and stds, notices), kept so a
        session can show them; never used by the math.
    """

    name: str
    task: str
    X_train: Array
    y_train: Array
    X_test: Array
    y_test: Array
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...] = ()
    target_name: str = "y"
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            msg = f"task must be one of {', '.join(TASKS)}; got {self.task!r}."
            raise ConfigError(msg)
        for key in ("X_train", "y_train", "X_test", "y_test"):
            value = np.ascontiguousarray(getattr(self, key), dtype=np.float64)
            if value.ndim != 2:
                msg = f"{key} must be 2-D; got shape {value.shape}."
                raise ConfigError(msg)
            value.setflags(write=False)
            object.__setattr__(self, key, value)
        n_features = self.X_train.shape[1]
        n_outputs = self.y_train.shape[1]
        if self.X_train.shape[0] != self.y_train.shape[0]:
            msg = (
                f"X_train has {self.X_train.shape[0]} rows but y_train has "
                f"{self.y_train.shape[0]}; they must match."
            )
            raise ConfigError(msg)
        if self.X_test.shape[0] != self.y_test.shape[0]:
            msg = (
                f"X_test has {self.X_test.shape[0]} rows but y_test has "
                f"{self.y_test.shape[0]}; they must match."
            )
            raise ConfigError(msg)
        if self.X_train.shape[0] == 0:
            msg = "The training set has no rows; a network needs at least one sample."
            raise ConfigError(msg)
        if self.X_test.shape[1] != n_features or self.y_test.shape[1] != n_outputs:
            msg = (
                f"test arrays have {self.X_test.shape[1]} features and "
                f"{self.y_test.shape[1]} outputs, training arrays {n_features} and "
                f"{n_outputs}; they must match."
            )
            raise ConfigError(msg)
        if len(self.feature_names) != n_features:
            msg = (
                f"{len(self.feature_names)} feature names for {n_features} feature "
                "columns; give one name per column."
            )
            raise ConfigError(msg)
        object.__setattr__(self, "feature_names", tuple(self.feature_names))
        object.__setattr__(self, "class_names", tuple(self.class_names))
        for key in ("X_train", "y_train", "X_test", "y_test"):
            _check_values(key, getattr(self, key), self.task)

    @property
    def n_features(self) -> int:
        """Return the number of input columns."""
        return int(self.X_train.shape[1])

    @property
    def n_outputs(self) -> int:
        """Return the number of target columns (output units the network needs)."""
        return int(self.y_train.shape[1])

    @property
    def n_train(self) -> int:
        """Return the number of training rows."""
        return int(self.X_train.shape[0])

    @property
    def n_test(self) -> int:
        """Return the number of test rows."""
        return int(self.X_test.shape[0])

    def describe(self) -> dict[str, Any]:
        """Return the JSON-ready description of the dataset, without its arrays."""
        return {
            "name": self.name,
            "task": self.task,
            "feature_names": list(self.feature_names),
            "class_names": list(self.class_names),
            "target_name": self.target_name,
            "n_train": self.n_train,
            "n_test": self.n_test,
            "n_features": self.n_features,
            "n_outputs": self.n_outputs,
            "info": self.info,
        }

    def content_hash(self) -> str:
        """Return the SHA-256 hex digest of the arrays and the description.

        Two datasets with the same hash train bit-for-bit the same run.
        """
        h = hashlib.sha256()
        h.update(json.dumps(self.describe(), sort_keys=True).encode())
        for arr in (self.X_train, self.y_train, self.X_test, self.y_test):
            h.update(str(arr.shape).encode())
            h.update(arr.tobytes())
        return h.hexdigest()


def _check_values(key: str, values: Array, task: str) -> None:
    """Raise for a value no network can train on: NaN, infinite, a wrong label code.

    A single NaN input would turn every weight into NaN after the first update,
    and a class target other than 0 or 1 (or a multiclass row that is not
    one-hot) gives a loss that means nothing, so both stop before training.
    """
    bad = ~np.isfinite(values)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        msg = (
            f"{key} holds {int(bad.sum())} missing (NaN) or infinite value(s), the "
            f"first in row {row + 1}, column {col + 1}. Fill them in or drop those "
            "rows before training (the CSV import does this with missing='drop' "
            "or 'impute_mean')."
        )
        raise ConfigError(msg)
    if not key.startswith("y") or task == "regression" or not values.size:
        return
    coded = (values == 0.0) | (values == 1.0)
    if not coded.all():
        row, col = (int(i) for i in np.argwhere(~coded)[0])
        msg = (
            f"{key} of a {task} task must hold class codes 0 and 1 only, but row "
            f"{row + 1}, column {col + 1} is {values[row, col]:g}. Code the classes "
            "as 0/1 (binary) or one-hot (multiclass), or use the regression task."
        )
        raise ConfigError(msg)
    if task == "multiclass":
        rows = np.flatnonzero(values.sum(axis=1) != 1.0)
        if rows.size:
            msg = (
                f"{key} of a multiclass task must be one-hot (exactly one 1 per "
                f"row), but row {int(rows[0]) + 1} has {int(values[rows[0]].sum())} "
                "ones. Give each row one class."
            )
            raise ConfigError(msg)
