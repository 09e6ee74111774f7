"""Formula expansions: hand-checked cases, and agreement with recorded sessions."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from tiny_runs import RUNS, record_run

from engine import events as ev
from sessions import Session
from ui import explain


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Session]:
    folder = tmp_path_factory.mktemp("explain")
    return {name: Session(record_run(name, folder)) for name in RUNS}


def test_fmt_rounds_to_significant_digits_and_keeps_specials() -> None:
    assert explain.fmt(0.253412) == "0.2534"
    assert explain.fmt(-1.2) == "-1.2"
    assert explain.fmt(0.0) == "0"
    assert explain.fmt(float("inf")) == "inf"
    assert explain.fmt(float("nan")) == "nan"


def test_weighted_sum_writes_every_product_and_the_recorded_z() -> None:
    out = explain.weighted_sum([0.51, -1.2], [0.32, 0.07], 0.1, 0.1792, unit=1)
    assert out.text == "z_1 = 0.51 × 0.32 + (-1.2) × 0.07 + 0.1 = 0.1792"
    assert out.terms == pytest.approx((0.51 * 0.32, -1.2 * 0.07, 0.1))
    assert out.value == 0.1792
    assert out.notes == ()


def test_weighted_sum_says_so_when_the_numbers_do_not_add_up() -> None:
    out = explain.weighted_sum([1.0], [2.0], 0.5, 9.0)
    assert "not the recorded 9" in out.notes[0]


def test_long_sums_are_elided_in_the_middle() -> None:
    out = explain.weighted_sum(np.ones(30), np.ones(30), 0.0, 30.0)
    assert "... (11 more terms)" in out.text
    assert len(out.terms) == 31


@pytest.mark.parametrize(
    ("name", "z", "a", "expected"),
    [
        ("relu", [-0.5, 2.0], [0.0, 2.0], "a_0 = max(0, -0.5) = 0"),
        ("identity", [1.5], [1.5], "a_0 = z_0 = 1.5"),
        ("linear", [1.5], [1.5], "a_0 = z_0 = 1.5"),
        ("sigmoid", [0.0], [0.5], "a_0 = 1 / (1 + e^-(0)) = 1 / (1 + 1) = 0.5"),
        ("tanh", [0.0], [0.0], "a_0 = tanh(0) = (1 - 1) / (1 + 1) = 0"),
        (
            "leaky_relu",
            [-2.0],
            [-0.02],
            "a_0 = alpha × z_0 = 0.01 × (-2) (z <= 0) = -0.02",
        ),
    ],
)
def test_activation_expansions(name: str, z: list, a: list, expected: str) -> None:
    out = explain.activation(name, z, a, 0)
    assert out.text == expected
    assert out.value == a[0]


def test_softmax_writes_every_exponential() -> None:
    z = np.array([0.0, math.log(3.0)])
    a = np.exp(z) / np.exp(z).sum()
    out = explain.activation("softmax", z, a, 1)
    assert out.text == ("a_1 = e^1.099 / (e^0 + e^1.099) = 3 / (1 + 3) = 3 / 4 = 0.75")
    assert out.terms == pytest.approx((1.0, 3.0))


def test_softmax_of_huge_logits_is_written_shifted() -> None:
    out = explain.activation("softmax", [1000.0, 999.0], [0.731, 0.269], 0)
    assert "z - max(z) = z - 1000" in out.notes[0]
    assert "e^0 / (e^0 + e^-1)" in out.text


def test_dropout_expansion_for_kept_and_dropped_units() -> None:
    kept = explain.dropout(0.4, True, 0.8, 0.5)
    assert kept.text == "a = 0.4 × 1 / 0.8 = 0.5"
    dropped = explain.dropout(0.4, False, 0.8, 0.0)
    assert dropped.text == "a = 0.4 × 0 / 0.8 = 0"
    assert "dropped" in dropped.notes[0]


def test_sample_loss_expansions_by_hand() -> None:
    mse = explain.sample_loss("mse", [0.5, 2.0], [0.0, 1.0], 0.625)
    assert mse.text == "L = 1/2 × [(0.5 - 0)^2 + (2 - 1)^2] = 0.625"
    assert np.mean(mse.terms) == 0.625
    cce = explain.sample_loss("cce", [0.25, 0.75], [0.0, 1.0], -math.log(0.75))
    assert cce.text == "L = -(0 log(0.25) + 1 log(0.75)) = 0.287682"
    bce = explain.sample_loss("bce", [0.8], [1.0], -math.log(0.8), z=[math.log(4.0)])
    assert bce.text == "L = -1/1 × ([1 log(0.8) + (1 - 1) log(1 - 0.8)]) = 0.223144"
    assert "stable form" in bce.notes[0]
    assert bce.notes[1] == "L = 1/1 × ([log(1 + e^1.386) - 1 × 1.386]) = 0.223144"


def test_batch_loss_with_l2() -> None:
    out = explain.batch_loss(
        [1.0, 3.0], 2.0, 2.05, l2=0.1, l2_penalty=0.05, sum_sq_weights=1.0
    )
    assert out.text.splitlines() == [
        "data loss = 1/2 × (1 + 3) = 2",
        "L2 penalty = 0.1/2 × 1 = 0.05",
        "loss = 2 + 0.05 = 2.05",
    ]
    assert "l2/2" in out.formula


def test_expansions_reproduce_every_recorded_number(
    sessions: dict[str, Session],
) -> None:
    checked = 0
    for session in sessions.values():
        for step in (0, session.n_steps - 1):
            events = session.step_events(step)
            sums = [e for e in events if isinstance(e, ev.WeightedSumComputed)]
            acts = [e for e in events if isinstance(e, ev.ActivationComputed)]
            for w, act in zip(sums, acts, strict=True):
                for i in range(w.z.shape[0]):
                    for j in range(w.z.shape[1]):
                        z = float(w.z[i, j])
                        out = explain.weighted_sum(
                            w.a_prev[i], w.W[:, j], float(w.b[j]), z, unit=j
                        )
                        assert math.fsum(out.terms) == pytest.approx(z, abs=1e-12)
                        assert out.text.endswith(f"= {explain.fmt(z, 6)}")
                        assert out.notes == ()
                        a = explain.activation(act.activation, act.z[i], act.a[i], j)
                        assert a.value == act.a[i, j]
                        assert a.text.endswith(f"= {explain.fmt(act.a[i, j], 6)}")
                        checked += 1
    assert checked > 300


def test_loss_expansions_reproduce_per_sample_and_batch_loss(
    sessions: dict[str, Session],
) -> None:
    for name, session in sessions.items():
        events = session.step_events(1)
        (loss,) = [e for e in events if isinstance(e, ev.LossComputed)]
        last_z = [e for e in events if isinstance(e, ev.WeightedSumComputed)][-1].z
        for i, value in enumerate(loss.per_sample):
            out = explain.sample_loss(
                loss.loss_name, loss.y_hat[i], loss.y[i], value, z=last_z[i]
            )
            combine = np.sum if "categorical" in loss.loss_name else np.mean
            assert combine(out.terms) == pytest.approx(value, rel=1e-9), name
            assert out.text.endswith(f"= {explain.fmt(value, 6)}")
        batch = explain.batch_loss(
            loss.per_sample,
            loss.data_loss,
            loss.loss,
            l2=session.config.l2,
            l2_penalty=loss.l2_penalty,
        )
        assert np.mean(batch.terms) == pytest.approx(loss.data_loss, rel=1e-12)
        assert batch.text.splitlines()[-1].endswith(explain.fmt(loss.loss, 6))
        assert ("L2 penalty" in batch.text) == (session.config.l2 > 0)


def test_dropout_expansion_matches_the_recorded_mask(
    sessions: dict[str, Session],
) -> None:
    events = sessions["mse_dropout_l2"].step_events(2)
    (drop,) = [e for e in events if isinstance(e, ev.DropoutApplied)]
    for i, j in np.ndindex(drop.a.shape):
        out = explain.dropout(
            drop.a_before[i, j], bool(drop.mask[i, j]), drop.keep_prob, drop.a[i, j]
        )
        before, mask, keep = out.terms
        assert before * mask / keep == drop.a[i, j]


def test_module_is_pure_of_panel() -> None:
    assert "panel" not in Path(explain.__file__).read_text()
