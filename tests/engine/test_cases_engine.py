"""One test per engine case in shared/cases: a reported fault and its right outcome."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from engine import (
    ConfigError,
    Dataset,
    LayerSpec,
    NetworkSpec,
    Trainer,
    TrainingConfig,
    forward,
    get_activation,
    get_loss,
)
from engine import events as ev
from engine.losses import clip_eps

Load = Callable[[str], Any]
MakeData = Callable[..., Dataset]


def _run(
    spec: NetworkSpec, config: TrainingConfig, data: Dataset
) -> tuple[str, list[ev.Event]]:
    log: list[ev.Event] = []
    reason = Trainer(spec, config, data, sink=log.append).run()
    return reason, log


def _of(log: list[ev.Event], cls: type[ev.Event]) -> list[Any]:
    return [e for e in log if isinstance(e, cls)]


def _arrays(e: ev.Event) -> list[np.ndarray]:
    out = []
    for value in e.to_dict().values():
        values = value.values() if isinstance(value, dict) else [value]
        out += [v for v in values if isinstance(v, np.ndarray) and v.dtype.kind == "f"]
    return out


# -- C01: softmax overflow -----------------------------------------------------


def test_case01_softmax_of_huge_logits_is_exact_without_warnings(
    load_case: Load,
) -> None:
    c = load_case("case01.json")
    z = np.array(c["logits"])
    y = np.eye(3)[[c["true_class_index"]]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # NOTE: exp(-2938) underflows to exactly 0, the correctly rounded result;
        # NumPy never warns about underflow by default, so it is not raised here.
        with np.errstate(over="raise", divide="raise", invalid="raise"):
            a = get_activation("softmax").forward(z)
            ce = get_loss("categorical_cross_entropy").forward_from_logits(z, y)
    np.testing.assert_array_equal(a, [[0.0, 0.0, 1.0]])
    assert a.sum() == 1.0
    assert ce.tolist() == [2938.0]


def test_case01_trainer_takes_the_fused_path_and_records_finite_values(
    load_case: Load, dataset: MakeData
) -> None:
    c = load_case("case01.json")
    logits = c["logits"][0]
    y = np.eye(3)[[c["true_class_index"]]]
    # One input equal to 1 and W = the logits give exactly those logits.
    spec = NetworkSpec(
        1,
        (LayerSpec(3, "softmax"),),
        initial_params=[{"W": [logits], "b": [0.0, 0.0, 0.0]}],
    )
    data = dataset(np.ones((1, 1)), y, task="multiclass")
    config = TrainingConfig(loss="cce", optimizer="gd", lr=1e-3, epochs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reason, log = _run(spec, config, data)
    assert reason == "completed"
    assert _of(log, ev.SessionStarted)[0].fused
    (act,) = _of(log, ev.ActivationComputed)
    np.testing.assert_array_equal(act.a, [[0.0, 0.0, 1.0]])
    (computed,) = _of(log, ev.LossComputed)
    assert computed.per_sample.tolist() == [2938.0]
    assert computed.loss == 2938.0
    dz = [e.value for e in _of(log, ev.GradientComputed) if e.name == "dz"]
    np.testing.assert_array_equal(dz[0], [[-1.0, 0.0, 1.0]])
    for e in log:
        assert all(np.isfinite(arr).all() for arr in _arrays(e)), e.kind


# -- C02: log(0) in binary cross-entropy ---------------------------------------


def test_case02_saturated_binary_cross_entropy_stays_finite(load_case: Load) -> None:
    c = load_case("case02.json")
    bce = get_loss("binary_cross_entropy")

    def loss_of(sub: dict[str, Any]) -> float:
        dtype = np.dtype(sub["dtype"])
        y_hat = np.array(sub["y_pred"], dtype=dtype)[:, None]
        y = np.array(sub["y_true"], dtype=dtype)[:, None]
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with np.errstate(all="raise"):
                value = bce.forward(y_hat, y).mean()
                assert np.isfinite(bce.backward(y_hat, y)).all()
        return float(value)

    right = loss_of(c["A_correct_and_saturated"])
    assert 0.0 <= right < 1e-11  # about eps = 1e-12, never NaN
    wrong = loss_of(c["B_wrong_and_saturated"])
    assert wrong == pytest.approx(27.63, abs=0.005)  # -ln(1e-12)
    # In float32 1 - 1e-9 == 1, so the clip must use float32's own epsilon.
    sub = c["C_float32_clip"]
    assert 1 - np.float32(sub["clip_eps"]) == np.float32(1.0)
    assert clip_eps(np.dtype(np.float32)) == float(np.finfo(np.float32).eps)
    assert loss_of(sub) == pytest.approx(15.94, abs=0.005)


# -- C04: learning rate too high -----------------------------------------------


def _case04(
    load_case: Load, dataset: MakeData, lr: float
) -> tuple[str, list[ev.Event]]:
    c = load_case("case04.json")
    X, y = load_case(c["data"])
    spec = NetworkSpec(
        1, (LayerSpec(1, c["output_activation"]),), initial_params=[c["init"]]
    )
    config = TrainingConfig(
        loss=c["loss"], optimizer=c["optimizer"], lr=lr, epochs=c["epochs"]
    )
    return _run(spec, config, dataset(X, y))


def test_case04_learning_rate_1_stops_at_the_first_non_finite_loss(
    load_case: Load, dataset: MakeData
) -> None:
    reason, log = _case04(load_case, dataset, lr=1.0)
    assert reason == "diverged"
    diverged, ended = log[-2], log[-1]
    assert isinstance(diverged, ev.TrainingDiverged)
    assert isinstance(ended, ev.SessionEnded) and ended.reason == "diverged"
    # The naive run's loss is inf at (1-based) step 154: stop there at the latest.
    assert diverged.step + 1 <= 154
    assert "smaller learning rate" in diverged.message
    losses = [e.loss for e in _of(log, ev.StepCompleted)]
    assert len(losses) == diverged.step
    assert all(math.isfinite(x) for x in losses)
    assert losses[:2] == pytest.approx([18.6667, 1893.6], rel=1e-4)
    # Every step up to the last finite one is kept, in order.
    assert [e.step for e in _of(log, ev.BatchSampled)] == list(range(diverged.step + 1))


def test_case04_learning_rate_0_1_converges_to_w2_b0(
    load_case: Load, dataset: MakeData
) -> None:
    c = load_case("case04.json")
    reason, log = _case04(load_case, dataset, lr=c["compare_learning_rate"])
    assert reason == "completed"
    last_w, last_b = _of(log, ev.ParametersUpdated)[-2:]
    # After the case's 400 epochs the error has shrunk from 2 to about 2e-5.
    assert last_w.after[0, 0] == pytest.approx(2.0, abs=1e-4)
    assert last_b.after[0] == pytest.approx(0.0, abs=1e-4)
    losses = [e.loss for e in _of(log, ev.StepCompleted)]
    assert losses[-1] < 1e-9
    assert all(b <= a for a, b in zip(losses, losses[1:], strict=False))


# -- C06: vanishing gradients --------------------------------------------------


def _case06_ratio(load_case: Load, dataset: MakeData, run: dict[str, str]) -> float:
    c = load_case("case06.json")
    X, y = load_case(c["data"])
    sizes = c["layers"]
    init = {"normal(0, 0.01)": "normal", "xavier": None, "he": None}[run["init"]]
    hidden = [
        LayerSpec(n, run["hidden_activation"], initializer=init) for n in sizes[1:-1]
    ]
    out = LayerSpec(sizes[-1], c["output_activation"])
    spec = NetworkSpec(sizes[0], (*hidden, out))
    if run["init"] == "normal(0, 0.01)":
        assert spec.layers[0].init_scale is None  # normal's default scale: 0.01
    else:
        # The defaults: Xavier for sigmoid, He for ReLU.
        default = {"xavier": "xavier_uniform", "he": "he_normal"}[run["init"]]
        assert spec.layers[0].initializer_name == default
    config = TrainingConfig(loss=c["loss"], optimizer="gd", lr=0.1, epochs=1)
    _, log = _run(spec, config, dataset(X, y, task="binary"))
    norms = _of(log, ev.StepCompleted)[0].grad_norms
    assert len(norms) == 7
    return norms[0] / norms[6]


def test_case06_gradient_norm_ratio_shows_vanishing_gradients(
    load_case: Load, dataset: MakeData
) -> None:
    small, xavier, he = (
        _case06_ratio(load_case, dataset, run)
        for run in load_case("case06.json")["runs"]
    )
    assert small < 1e-6
    assert 0.01 <= he <= 100
    assert small < xavier < he


# -- C07: zero initialization --------------------------------------------------


def _case07(load_case: Load, dataset: MakeData, name: str) -> list[ev.Event]:
    c = load_case("case07.json")
    X, y = load_case(name)
    n_in, n_hidden, n_out = c["layers"]
    spec = NetworkSpec(
        n_in,
        (
            LayerSpec(n_hidden, c["hidden_activation"], initializer="zeros"),
            LayerSpec(n_out, c["output_activation"], initializer="zeros"),
        ),
    )
    config = TrainingConfig(
        loss=c["loss"],
        optimizer=c["optimizer"],
        lr=c["learning_rate"],
        epochs=c["epochs"],
    )
    reason, log = _run(spec, config, dataset(X, y, task="binary"))
    assert reason == "completed"
    return log


def test_case07_zero_init_on_and_keeps_every_hidden_unit_identical(
    load_case: Load, dataset: MakeData
) -> None:
    log = _case07(load_case, dataset, "case07_and.csv")
    (notice,) = _of(log, ev.SessionStarted)[0].notices
    assert "symmetry" in notice and "Layer 1" in notice
    updates = [e for e in _of(log, ev.ParametersUpdated) if e.layer == 0]
    assert len(updates) == 2 * 2000
    for e in updates:
        after = e.after.reshape(-1, 3)
        assert (after == after[:, :1]).all(), f"step {e.step}: {e.name} differs"
    W1 = updates[-2].after
    assert W1[0, 0] == pytest.approx(-3.272, abs=5e-4)


def test_case07_zero_init_on_xor_never_moves(
    load_case: Load, dataset: MakeData
) -> None:
    log = _case07(load_case, dataset, "case07_xor.csv")
    assert "symmetry" in _of(log, ev.SessionStarted)[0].notices[0]
    for e in _of(log, ev.ParametersUpdated):
        assert not e.after.any(), f"step {e.step}: {e.name} of layer {e.layer}"
    for e in _of(log, ev.LossComputed):
        assert (e.y_hat == 0.5).all()
    assert _of(log, ev.StepCompleted)[-1].loss == pytest.approx(math.log(2))


# -- C09: output activation that does not fit --------------------------------


def test_case09a_bce_with_a_linear_output_is_refused_before_training(
    load_case: Load, dataset: MakeData
) -> None:
    c = load_case("case09a.json")
    n_in, n_hidden, n_out = c["layers"]
    spec = NetworkSpec(
        n_in,
        (
            LayerSpec(n_hidden, c["hidden_activation"]),
            LayerSpec(n_out, c["output_activation"]),
        ),
    )
    y = np.array(c["y_true"], dtype=float)[:, None]
    data = dataset(np.zeros((len(y), n_in)), y, task="binary")
    log: list[ev.Event] = []
    with pytest.raises(ConfigError, match=r"binary_cross_entropy needs .*sigmoid"):
        Trainer(spec, TrainingConfig(loss=c["loss"]), data, sink=log.append)
    assert log == []


def test_case09b_sigmoid_output_for_targets_2_to_10_gets_a_notice(
    load_case: Load, dataset: MakeData
) -> None:
    c = load_case("case09b.json")
    X, y = load_case(c["data"])
    n_in, n_hidden, n_out = c["layers"]
    spec = NetworkSpec(
        n_in,
        (
            LayerSpec(n_hidden, c["hidden_activation"]),
            LayerSpec(n_out, c["output_activation"]),
        ),
    )
    config = TrainingConfig(loss=c["loss"], optimizer="gd", lr=0.5, epochs=200)
    reason, log = _run(spec, config, dataset(X, y))
    assert reason == "completed"
    (notice,) = _of(log, ev.SessionStarted)[0].notices
    assert "range from 2 to 10" in notice
    assert "sigmoid" in notice and "(0, 1)" in notice
    # Outputs below 1 cannot get the mse below mean((y - 1)^2) = 33.
    assert all(e.loss > 33.0 for e in _of(log, ev.StepCompleted))


# -- C12: gradients are recomputed, never accumulated --------------------------


def _small_run(dataset: MakeData, **config: Any) -> tuple[Trainer, list[ev.Event]]:
    g = np.random.default_rng(12)
    X, y = g.normal(size=(6, 2)), g.normal(size=(6, 2))
    spec = NetworkSpec(2, (LayerSpec(3, "tanh", dropout=0.2), LayerSpec(2, "linear")))
    log: list[ev.Event] = []
    settings = {"optimizer": "adam", "lr": 0.01, "epochs": 3, "batch_size": 4}
    settings.update(config)
    t = Trainer(spec, TrainingConfig(**settings), dataset(X, y), sink=log.append)
    return t, log


def test_case12_rerunning_a_step_from_the_same_state_gives_the_same_gradients(
    dataset: MakeData, assert_same_events: Callable[..., None]
) -> None:
    t, _ = _small_run(dataset)
    t.begin()
    for _ in range(3):
        t.train_step()
    state = t.state()
    runs = []
    for _ in range(3):
        log: list[ev.Event] = []
        again = Trainer(t.spec, t.config, t.data, sink=log.append, state=state)
        again.train_step()
        runs.append(log)
    assert_same_events(runs[0], runs[1])
    assert_same_events(runs[0], runs[2])
    grads = _of(runs[0], ev.GradientComputed)
    assert {e.name for e in grads} == {"dy_hat", "dz", "dW", "db", "da", "da_prev"}


def test_case12_a_unit_feeding_two_units_gets_the_sum_of_both_paths(
    dataset: MakeData,
) -> None:
    # One input feeds one hidden unit, which feeds two output units: the
    # micrograd #2 shape (a node reused by two downstream nodes).
    params = [
        {"W": [[0.7]], "b": [0.1]},
        {"W": [[1.5, -0.8]], "b": [0.2, -0.3]},
    ]
    spec = NetworkSpec(
        1,
        (LayerSpec(1, "tanh"), LayerSpec(2, "linear")),
        initial_params=params,
    )
    X = np.array([[2.0], [3.0]])
    y = np.array([[1.0, 0.0], [0.0, 1.0]])
    config = TrainingConfig(loss="mse", optimizer="gd", lr=0.1, epochs=1)
    _, log = _run(spec, config, dataset(X, y))
    grads = {(e.layer, e.name): e.value for e in _of(log, ev.GradientComputed)}

    # The same network in torch autograd.
    W1 = torch.tensor(params[0]["W"], dtype=torch.float64, requires_grad=True)
    b1 = torch.tensor(params[0]["b"], dtype=torch.float64, requires_grad=True)
    W2 = torch.tensor(params[1]["W"], dtype=torch.float64, requires_grad=True)
    b2 = torch.tensor(params[1]["b"], dtype=torch.float64)
    h = torch.tanh(torch.tensor(X) @ W1 + b1)
    loss = ((h @ W2 + b2 - torch.tensor(y)) ** 2).mean()
    dh, dW1, db1 = torch.autograd.grad(loss, [h, W1, b1])
    np.testing.assert_allclose(grads[(1, "da_prev")], dh.numpy(), rtol=1e-12)
    np.testing.assert_allclose(grads[(0, "dW")], dW1.numpy(), rtol=1e-12)
    np.testing.assert_allclose(grads[(0, "db")], db1.numpy(), rtol=1e-12)

    # da_prev adds one term per downstream unit: dz_1 * w_1 + dz_2 * w_2.
    dz2 = grads[(1, "dz")]
    both = dz2[:, 0] * 1.5 + dz2[:, 1] * -0.8
    np.testing.assert_allclose(grads[(1, "da_prev")][:, 0], both, rtol=1e-14)


# -- C13: dropout at prediction time -------------------------------------------


def test_case13_dropout_scales_once_in_training_and_is_off_in_evaluation(
    load_case: Load,
) -> None:
    c = load_case("case13.json")
    keep = c["keep_probability"]
    # A layer whose activations are 10 000 ones: z = 0 * x + 1, a = z.
    params = [{"W": np.zeros((1, 10_000)), "b": np.ones(10_000)}]
    identity = [get_activation("identity")]
    X = np.zeros((1, 1))
    rng = np.random.default_rng(c["seed"])
    train = forward(params, X, identity, [keep], rng)
    expected_mask = np.random.default_rng(c["seed"]).random((1, 10_000)) < keep
    np.testing.assert_array_equal(train.masks[0], expected_mask)
    assert train.masks[0].mean() == pytest.approx(0.8, abs=0.01)
    assert set(np.unique(train.a[0])) == {0.0, 1.0 / keep}
    assert train.a[0].mean() == pytest.approx(0.997, abs=5e-4)
    np.testing.assert_array_equal(train.a_act[0], 1.0)

    evals = [forward(params, X, identity) for _ in c["passes"][1:]]
    for tr in evals:
        assert tr.masks == [None]
        np.testing.assert_array_equal(tr.a[0], 1.0)
    np.testing.assert_array_equal(evals[0].a[0], evals[1].a[0])


def test_case13_trainer_records_the_mask_it_used_and_predicts_without_it(
    dataset: MakeData,
) -> None:
    t, log = _small_run(dataset)
    t.run()
    drops = _of(log, ev.DropoutApplied)
    assert len(drops) == t.step_index
    for e in drops:
        assert e.mask.dtype == bool
        np.testing.assert_array_equal(e.a, e.a_before * e.mask / e.keep_prob)
    X = t.data.X_train
    first, second = t.predict(X), t.predict(X)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, forward(t.params, X, t.activations).y_hat)


# -- C17: epochs = 0 -------------------------------------------------------------


@pytest.mark.parametrize("epochs", [0, -1, 1.5, True])
def test_case17_epochs_below_one_or_fractional_is_refused(
    load_case: Load, epochs: Any
) -> None:
    c = load_case("case17.json")
    if epochs == 0 and not isinstance(epochs, bool):
        assert c["epochs"] == epochs
    with pytest.raises(ConfigError, match="Epochs must be a whole number >= 1"):
        TrainingConfig(optimizer=c["optimizer"], lr=c["learning_rate"], epochs=epochs)


# -- C19: a hidden layer with 0 units; no hidden layer -------------------------


def test_case19a_a_zero_unit_hidden_layer_is_refused_by_name(load_case: Load) -> None:
    c = load_case("case19a.json")
    n_in, *hidden, n_out = c["layers"]
    layers = [LayerSpec(n, c["hidden_activation"]) for n in hidden]
    msg = "Hidden layer 2 has 0 units. Remove the layer or give it at least 1 unit."
    with pytest.raises(ConfigError) as info:
        NetworkSpec(n_in, (*layers, LayerSpec(n_out, "sigmoid")))
    assert str(info.value) == msg


def test_case19b_no_hidden_layer_on_xor_ends_at_one_half(
    load_case: Load, dataset: MakeData
) -> None:
    c = load_case("case19b.json")
    X, y = load_case(c["data"])
    n_in, n_out = c["layers"]
    spec = NetworkSpec(n_in, (LayerSpec(n_out, c["output_activation"]),))
    config = TrainingConfig(
        loss=c["loss"], optimizer="gd", lr=c["learning_rate"], epochs=c["epochs"]
    )
    trainer = Trainer(spec, config, dataset(X, y, task="binary"))
    assert trainer.run() == "completed"
    np.testing.assert_allclose(trainer.predict(X), 0.5, atol=1e-3)
    loss = trainer.evaluate(X, y)["loss"]
    assert loss == pytest.approx(math.log(2), abs=1e-5)
