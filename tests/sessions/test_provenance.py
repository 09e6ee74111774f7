"""Explaining recorded numbers: formulas agree with the log, operands expand in turn."""

from __future__ import annotations

import numpy as np
import pytest

from engine import events as ev
from engine.config import TrainingConfig
from engine.network import LayerSpec, NetworkSpec
from sessions import Session, record
from sessions.datasets import load_dataset
from sessions.provenance import Ref, explain

RUNS = {
    "bce_sgd_l2_dropout": (
        NetworkSpec(2, (LayerSpec(4, "tanh", dropout=0.25), LayerSpec(1, "sigmoid"))),
        TrainingConfig(
            loss="bce", optimizer="sgd", lr=0.4, epochs=2, batch_size=8, l2=0.01
        ),
        "moons",
    ),
    "cce_adam": (
        NetworkSpec(4, (LayerSpec(5, "relu"), LayerSpec(3, "softmax"))),
        TrainingConfig(loss="cce", optimizer="adam", lr=0.05, epochs=2, batch_size=16),
        "iris",
    ),
    "mse_momentum_unfused": (
        NetworkSpec(2, (LayerSpec(3, "leaky_relu"), LayerSpec(1, "sigmoid"))),
        TrainingConfig(
            loss="mse", optimizer="momentum", lr=0.3, epochs=2, batch_size=8
        ),
        "xor",
    ),
}


@pytest.fixture(scope="module", params=list(RUNS))
def session(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    spec, config, name = RUNS[request.param]
    path = tmp_path_factory.mktemp("prov") / f"{request.param}.session"
    options = {} if name == "iris" else {"n_samples": 40}
    record(spec, config, load_dataset(name, seed=0, **options), path)
    with Session(path) as s:
        yield s


def _walk(session: Session, start: Ref, limit: int = 60) -> list:  # type: ignore[type-arg]
    """Explain ``start`` and operands breadth-first; check each operand's value."""
    seen, todo, out = set(), [start], []
    while todo and len(out) < limit:
        ref = todo.pop(0)
        if ref in seen:
            continue
        seen.add(ref)
        e = explain(session, ref)
        assert e.agrees, (e.label, e.value, e.recomputed)
        out.append(e)
        for op in e.operands:
            if op.ref is not None:
                # The operand's value is the number its own explanation explains.
                assert explain(session, op.ref).value == op.value, (e.label, op.name)
                todo.append(op.ref)
    return out


def test_a_loss_expands_back_to_inputs_and_initial_weights(session: Session) -> None:
    found = _walk(session, Ref("loss", 1, None, (0,)), limit=200)
    kinds = {e.ref.kind for e in found}
    assert {"loss", "a", "z", "W", "b", "x", "y"} <= kinds
    # Step 1's weights expand into step 0's update, whose weights are the initial ones.
    w = next(e for e in found if e.ref.kind == "W" and e.ref.step == 1)
    assert any(o.name == "learning rate" for o in w.operands)
    assert any(
        e.ref.kind == "W" and e.ref.step == 0 and "initial" in e.formula for e in found
    )


def test_gradients_expand_and_agree(session: Session) -> None:
    last = len(session.spec.layers) - 1
    for ref in (
        Ref("dW", 2, 0, (0, 0)),
        Ref("db", 2, last, (0,)),
        Ref("dz", 2, last, (1, 0)),
        Ref("dz", 2, 0, (1, 0)),
        Ref("da", 2, 0, (1, 2)),
    ):
        _walk(session, ref, limit=25)


def test_every_weighted_sum_of_a_step_agrees(session: Session) -> None:
    for e in session.step_events(3):
        if isinstance(e, ev.WeightedSumComputed):
            n, units = e.z.shape
            for i in range(n):
                for j in range(units):
                    x = explain(session, Ref("z", 3, e.layer, (i, j)))
                    assert x.value == e.z[i, j] and x.agrees


def test_bad_references_are_refused(session: Session) -> None:
    with pytest.raises(ValueError, match="Unknown number kind"):
        explain(session, Ref("q", 0))
    with pytest.raises(IndexError, match="outside"):
        explain(session, Ref("z", 0, 0, (999, 0)))
    with pytest.raises(IndexError):
        explain(session, Ref("z", 10_000, 0, (0, 0)))
    assert np.isfinite(explain(session, Ref("W", 0, 0, (0, 0))).value)
