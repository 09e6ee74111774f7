"""Generated settings of every kind: a network that trains, or a `ConfigError`.

``test_properties.py`` draws sensible networks and spoils one setting by a
sensible amount. Here each setting (of `LayerSpec`, `NetworkSpec`,
`TrainingConfig` and the arrays of `Dataset`) may be any value a form, a JSON
file or a careless caller could hand over: text, None, a bool, a list, NaN,
a huge integer. The only allowed outcomes are a refusal with glassnet's own
`ConfigError` and a message, or a run whose recorded values are finite; an
accepted value must also be of the documented kind.
"""

from __future__ import annotations

import math
import re
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import (
    ACTIVATIONS,
    INITIALIZERS,
    OPTIMIZERS,
    ConfigError,
    Dataset,
    LayerSpec,
    NetworkSpec,
    Trainer,
    TrainingConfig,
    TrainingWarning,
)
from engine import events as ev

FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

#: Values of the wrong kind, or of the right kind at the edge of sense.
ANYTHING = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, -1, 1, 2**63, -(2**63)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 5e-324, 1e308]),
    st.text(max_size=6),
    st.sampled_from(["relu", "1", "0.5", "", "__import__", "sigmoid "]),
    st.binary(max_size=4),
    st.lists(st.integers(0, 3), max_size=3),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.just(np.float32(0.25)),
    st.just(np.int64(3)),
    st.just(np.array([1.0, 2.0])),
    st.just(object()),
)

LAYER_FIELDS = {
    "n_out": st.integers(1, 4),
    "activation": st.sampled_from(sorted(ACTIVATIONS)),
    "initializer": st.none() | st.sampled_from(sorted(INITIALIZERS)),
    "init_scale": st.none() | st.floats(1e-3, 2.0),
    "dropout": st.sampled_from([0.0, 0.1, 0.5]),
}

CONFIG_FIELDS = {
    "loss": st.sampled_from(["mse", "bce", "binary_cross_entropy"]),
    "optimizer": st.sampled_from(sorted(OPTIMIZERS)),
    "lr": st.floats(1e-4, 1.0),
    "epochs": st.integers(1, 3),
    "batch_size": st.none() | st.integers(1, 6),
    "seed": st.integers(0, 2**32),
    "momentum": st.floats(0.0, 0.99),
    "rho": st.floats(0.0, 0.99),
    "beta1": st.floats(0.0, 0.99),
    "beta2": st.floats(0.0, 0.9999),
    "eps": st.floats(1e-12, 1e-2),
    "l2": st.floats(0.0, 1.0),
    "shuffle": st.booleans(),
}


def _data(n_features: int = 2, n: int = 6) -> Dataset:
    """Return a tiny binary dataset (OR of two inputs, with a few repeats)."""
    g = np.random.default_rng(0)
    X = g.integers(0, 2, size=(n, n_features)).astype(float)
    y = X.max(axis=1, keepdims=True)
    y[0] = 1.0 - y[0]  # both classes appear
    names = tuple(f"x{i}" for i in range(n_features))
    return Dataset("or", "binary", X, y, X[:0], y[:0], names)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool
    )


def _refused(make: Any) -> ConfigError | None:
    """Call ``make``; return the `ConfigError` it raised, or None if it did not."""
    try:
        make()
    except ConfigError as err:
        assert str(err).strip(), "a ConfigError must say what is wrong"
        return err
    return None


def _built(make: Any) -> Any:
    """Return what ``make`` builds, or None if it is refused with a `ConfigError`."""
    try:
        return make()
    except ConfigError as err:
        assert str(err).strip(), "a ConfigError must say what is wrong"
        return None


def _run_finitely(spec: NetworkSpec, config: TrainingConfig) -> None:
    """Train ``spec`` on the tiny data; refused, or every recorded value finite."""
    log: list[ev.Event] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", TrainingWarning)
        try:
            trainer = Trainer(spec, config, _data(spec.n_in), sink=log.append)
        except ConfigError as err:
            assert str(err).strip()
            return
        reason = trainer.run()
    assert reason in ("completed", "diverged")
    ended = log[-1]
    assert isinstance(ended, ev.SessionEnded)
    for e in log:
        if isinstance(e, ev.ParametersInitialized):
            for p in e.to_dict().values():
                if isinstance(p, np.ndarray) and p.dtype.kind == "f":
                    assert np.isfinite(p).all()


@FUZZ
@given(st.sampled_from(sorted(LAYER_FIELDS)), ANYTHING, st.booleans())
def test_any_layer_setting_is_used_as_documented_or_refused(
    key: str, value: Any, hidden: bool
) -> None:
    fields = {"n_out": 3, "activation": "tanh", "dropout": 0.0, key: value}
    if hidden:
        layers: tuple[Any, ...] = (LayerSpec(**fields), LayerSpec(1, "sigmoid"))
    else:
        layers = (LayerSpec(2, "tanh"), LayerSpec(**fields))
    spec = _built(lambda: NetworkSpec(2, layers))
    if spec is None:
        return
    layer = spec.layers[0 if hidden else -1]
    # What was accepted is what the docstring promises.
    assert isinstance(layer.n_out, int | np.integer) and not isinstance(
        layer.n_out, bool
    )
    assert layer.n_out >= 1
    assert _is_number(layer.dropout) and 0.0 <= layer.dropout < 1.0
    assert isinstance(layer.activation, str) and isinstance(layer.initializer_name, str)
    config = TrainingConfig(loss="mse", optimizer="sgd", epochs=1, batch_size=3)
    _run_finitely(spec, config)


@FUZZ
@given(st.sampled_from(sorted(CONFIG_FIELDS)), ANYTHING)
def test_any_training_setting_is_used_as_documented_or_refused(
    key: str, value: Any
) -> None:
    base = {"loss": "bce", "epochs": 1, "batch_size": 3, key: value}
    config = _built(lambda: TrainingConfig(**base))
    if config is None:
        return
    assert isinstance(config.epochs, int) and not isinstance(config.epochs, bool)
    assert config.epochs >= 1
    assert config.batch_size is None or (
        isinstance(config.batch_size, int) and config.batch_size >= 1
    )
    assert isinstance(config.shuffle, bool)
    assert isinstance(config.optimizer, str) and config.optimizer in OPTIMIZERS
    for name in ("lr", "momentum", "rho", "beta1", "beta2", "eps", "l2"):
        number = getattr(config, name)
        assert _is_number(number) and math.isfinite(number), (name, number)
    if config.epochs > 3:
        return  # a huge epoch count is valid; training it is not this test's job
    spec = NetworkSpec(2, (LayerSpec(3, "tanh"), LayerSpec(1, "sigmoid")))
    _run_finitely(spec, config)


@FUZZ
@given(ANYTHING, ANYTHING)
def test_any_network_shape_is_used_as_documented_or_refused(
    n_in: Any, layers: Any
) -> None:
    for candidate in (layers, [layers], (LayerSpec(1, "sigmoid"),)):
        spec = _built(lambda c=candidate: NetworkSpec(n_in, c))
        if spec is not None:
            assert isinstance(spec.n_in, int | np.integer) and spec.n_in >= 1
            assert all(isinstance(layer, LayerSpec) for layer in spec.layers)


@FUZZ
@given(
    st.sampled_from(["X_train", "y_train", "X_test", "y_test"]),
    st.sampled_from([math.nan, math.inf, -math.inf, 2.0, -1.0, 0.5]),
    st.sampled_from(["binary", "multiclass", "regression"]),
    st.integers(0, 3),
)
def test_a_dataset_with_a_value_no_network_can_use_is_refused(
    key: str, value: float, task: str, row: int
) -> None:
    X = np.zeros((4, 2))
    y = np.eye(2)[[0, 1, 0, 1]] if task == "multiclass" else np.zeros((4, 1))
    arrays = {"X_train": X, "y_train": y, "X_test": X.copy(), "y_test": y.copy()}
    arrays[key] = arrays[key].copy()
    arrays[key][row, 0] = value
    make = lambda: Dataset("d", task, feature_names=("a", "b"), **arrays)  # noqa: E731
    err = _refused(make)
    fine = key.startswith("X") or task == "regression"
    if math.isfinite(value) and (fine or value in (0.0, 1.0)):
        assert err is None
        return
    if task == "multiclass" and value in (0.0, 1.0):
        return  # a row with two ones or none: refused as not one-hot
    assert err is not None, f"{key}[{row}, 0] = {value} accepted for {task}"
    assert f"row {row + 1}" in str(err) and key in str(err)


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: NetworkSpec(2, None), "layers must be a sequence"),
        (lambda: NetworkSpec(2, "relu"), "layers must be a sequence"),
        (lambda: NetworkSpec(2, [3, 1]), "layers[0] must be a LayerSpec"),
        (lambda: NetworkSpec(2, (LayerSpec(True),)), "has True units"),
        (lambda: NetworkSpec(2, (LayerSpec(2, dropout="0.5"), LayerSpec(1))), "0.5"),
        (lambda: NetworkSpec(2, (LayerSpec(2, dropout=None), LayerSpec(1))), "None"),
        (lambda: NetworkSpec(2, (LayerSpec(1, ["relu"]),)), "Unknown activation"),
        (lambda: NetworkSpec(2, (LayerSpec(1, "relu", {}),)), "Unknown initializer"),
        (lambda: TrainingConfig(loss=["mse"]), "Unknown loss"),
        (lambda: TrainingConfig(optimizer={}), "Unknown optimizer"),
        (lambda: TrainingConfig(shuffle="no"), "shuffle must be True or False"),
        (
            lambda: NetworkSpec(2, (LayerSpec(18_272_925_140), LayerSpec(1))),
            "allows at most 10,000,000",
        ),
        (
            lambda: NetworkSpec(
                1,
                (LayerSpec(1, "identity"),),
                initial_params=[{"W": [[1j]], "b": [0.0]}],
            ),
            "complex",
        ),
    ],
    ids=[
        "layers-none", "layers-text", "layers-ints", "units-bool", "dropout-text",
        "dropout-none", "activation-list", "initializer-dict", "loss-list",
        "optimizer-dict", "shuffle-text", "huge-layer", "complex-weights",
    ],
)  # fmt: skip
def test_found_by_fuzzing_settings_of_the_wrong_kind(make: Any, words: str) -> None:
    # Each of these raised TypeError or AttributeError, or (units, shuffle,
    # complex weights) was silently taken as something else; a layer of 18
    # billion units was accepted and training then tried to allocate 272 GiB.
    with pytest.raises(ConfigError) as err:
        make()
    assert words in str(err.value)


#: JSON values as a session file or a settings file may hold them.
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "n_in",
                    "layers",
                    "n_out",
                    "activation",
                    "dropout",
                    "initial_params",
                    "W",
                    "b",
                    "lr",
                    "epochs",
                    "optimizer",
                    "loss",
                    "batch_size",
                    "x",
                ]
            ),
            inner,
            max_size=4,
        )
    ),  # fmt: skip
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(JSON, st.sampled_from([NetworkSpec.from_dict, TrainingConfig.from_dict]))
def test_any_stored_description_is_rebuilt_or_refused(data: Any, rebuild: Any) -> None:
    built = _built(lambda: rebuild(data))
    if isinstance(built, NetworkSpec):
        assert NetworkSpec.from_dict(built.to_dict()) == built
    elif built is not None:
        assert TrainingConfig.from_dict(built.to_dict()) == built


@pytest.mark.parametrize(
    ("rebuild", "data", "words"),
    [
        (TrainingConfig.from_dict, "", "must be a mapping"),
        (TrainingConfig.from_dict, [1, "a"], "must be a mapping"),
        (TrainingConfig.from_dict, {1: 2, "x": 3}, "Unknown training settings"),
        (
            NetworkSpec.from_dict,
            {"n_in": 2.7, "layers": [{"n_out": 1}]},
            "whole number >= 1; got 2.7",
        ),
        (
            NetworkSpec.from_dict,
            {"n_in": "3", "layers": [{"n_out": 1}]},
            "whole number >= 1; got '3'",
        ),
        (
            NetworkSpec.from_dict,
            {"n_in": float("inf"), "layers": [{"n_out": 1}]},
            "got inf",
        ),
    ],
)
def test_found_by_fuzzing_stored_descriptions(
    rebuild: Any, data: Any, words: str
) -> None:
    # TypeError from sorting mixed keys or unpacking a non-mapping; n_in 2.7
    # silently rounded to 2, "3" read as 3, inf an OverflowError.
    with pytest.raises(ConfigError, match=re.escape(words)):
        rebuild(data)
