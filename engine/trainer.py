"""Train a network step by step and hand every computation to a sink as an event."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine import events as ev
from engine._rows import row_sum
from engine._types import Array, IntArray
from engine.config import TrainingConfig
from engine.data import Dataset
from engine.errors import ConfigError
from engine.losses import Shared, get_loss
from engine.network import NetworkSpec, Params, Trace, backward, forward
from engine.optimizers import get_optimizer

__all__ = ["Sink", "Trainer", "TrainerState", "evaluate"]

Sink = Callable[[ev.Event], object]
"""Anything that takes one event: ``list.append``, a recorder, a printer."""

# Children of the run's SeedSequence, one per source of randomness.
_INIT, _SHUFFLE, _DROPOUT = 0, 1, 2
_PLACEHOLDER_SEED = np.random.SeedSequence(0)


@dataclass(frozen=True)
class TrainerState:
    """Hold everything needed to continue a run exactly where it was.

    ``step`` is the next step to run, ``seq`` the next event number.  Arrays
    are never mutated by the trainer, so a state may share them with events.
    ``opt_state[l][name]`` is the optimizer state of parameter ``name``
    (``"W"`` or ``"b"``) of layer ``l``; ``dropout_rng`` is the bit generator
    state of the dropout generator (plain ints and strings).
    ``epoch_sums`` is ``(sum of per-sample losses, correct predictions)`` of
    the current epoch's batches so far, kept for its ``"batches"`` training
    metrics (see ``TrainingConfig.train_metrics``); None when the trainer
    does not keep them (no sink asked for epoch metrics).
    """

    step: int
    seq: int
    params: Params
    opt_state: list[dict[str, dict[str, Array]]]
    dropout_rng: dict[str, Any]
    epoch_sums: tuple[float, int] | None = None


class Trainer:
    """Train ``spec`` on ``data`` with ``config``, emitting every computation.

    Parameters
    ----------
    spec : NetworkSpec
    config : TrainingConfig
    data : Dataset
    sink : callable or None
        Receives each event in order.  None trains without building events
        (the fastest way to train, and how replay skips steps it need not show).
    state : TrainerState or None
        Continue from this state instead of starting from initialization.

    Raises
    ------
    ConfigError
        If the network, the loss and the data do not fit together.

    Examples
    --------
    >>> from engine import LayerSpec, NetworkSpec, TrainingConfig, Dataset
    >>> X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    >>> y = np.array([[0.0], [1.0], [1.0], [1.0]])
    >>> data = Dataset("or", "binary", X, y, X[:0], y[:0], ("x1", "x2"))
    >>> spec = NetworkSpec(2, (LayerSpec(1, "sigmoid"),))
    >>> config = TrainingConfig(loss="bce", optimizer="gd", lr=1.0, epochs=2)
    >>> log = []
    >>> Trainer(spec, config, data, sink=log.append).run()
    'completed'
    >>> [e.kind for e in log][:3]
    ['session_started', 'parameters_initialized', 'batch_sampled']
    """

    def __init__(
        self,
        spec: NetworkSpec,
        config: TrainingConfig,
        data: Dataset,
        sink: Sink | None = None,
        *,
        state: TrainerState | None = None,
    ) -> None:
        self.spec = spec
        self.config = config
        self.data = data
        self.notices = _check_fit(spec, config, data)

        # Strategies, resolved once.
        self.activations = spec.activations()
        self.loss = get_loss(config.loss)
        self.optimizer = get_optimizer(
            config.optimizer, config.lr, **config.optimizer_settings()
        )
        self.fused = self.loss.fused_with == self.activations[-1].name
        keep = [1.0 - layer.dropout for layer in spec.layers]
        self.keep_probs: list[float] | None = keep if min(keep) < 1.0 else None
        self._n_forward_events = 2 * len(keep) + sum(k < 1.0 for k in keep)

        # Schedule.
        n = data.n_train
        self.batch_size = n if config.batch_size is None else config.batch_size
        self._full = self.batch_size >= n
        self.steps_per_epoch = math.ceil(n / self.batch_size)
        # A fork starts part-way through the schedule; its steps count from 0.
        self.start = config.start_step
        self.total_steps = self.steps_per_epoch * config.epochs - self.start
        if self.total_steps < 1:
            msg = (
                f"start_step {self.start} is at or after the end of "
                f"{config.epochs} epochs of {self.steps_per_epoch} steps; give "
                "more epochs to continue from there."
            )
            raise ConfigError(msg)
        self._perm: tuple[int, IntArray] | None = None

        # Trainable state.
        if state is None:
            init_rng = np.random.default_rng(_seed_sequence(config.seed, _INIT))
            params = spec.init_params(init_rng)
            state = TrainerState(
                step=0,
                seq=0,
                params=params,
                opt_state=[
                    {k: self.optimizer.init_state(p[k]) for k in ("W", "b")}
                    for p in params
                ],
                dropout_rng=dict(
                    np.random.default_rng(
                        _seed_sequence(config.seed, _DROPOUT)
                    ).bit_generator.state
                ),
            )
        self._step = state.step
        self._seq = state.seq
        self.params: Params = [dict(p) for p in state.params]
        self._opt_state = [dict(s) for s in state.opt_state]
        # A fixed seed sequence (the state is overwritten at once) is cheaper
        # than default_rng()'s fresh OS entropy.
        self._dropout_rng = np.random.Generator(np.random.PCG64(_PLACEHOLDER_SEED))
        self._dropout_rng.bit_generator.state = state.dropout_rng
        self.diverged = False
        self._train_eval: tuple[Params, Trace, Array] | None = None
        # The "batches" epoch metrics are sums over the epoch's steps, kept
        # from the start of an epoch or from a state that has them.
        self._batch_metrics = config.train_metrics == "batches"
        sums = state.epoch_sums
        if sums is None and (self.start + state.step) % self.steps_per_epoch == 0:
            sums = (0.0, 0)
        self._sums_kept = sums is not None and self._batch_metrics
        self._epoch_loss, self._epoch_hits = sums or (0.0, 0)
        self._labels = _labels(data.task, data.y_train) if self._sums_kept else None
        # One-hot rows sum to exactly 1, which the fused cross-entropy need not
        # multiply by (any batch of them too).
        self._y_unit_rows = bool((row_sum(data.y_train) == 1.0).all())
        self.sink = sink

    # -- public API ------------------------------------------------------

    @property
    def step_index(self) -> int:
        """Return the next step to run (0-based); equals the steps completed."""
        return self._step

    @property
    def next_seq(self) -> int:
        """Return the ``seq`` the next event will get."""
        return self._seq

    @property
    def done(self) -> bool:
        """Return True when every planned step ran or training diverged."""
        return self.diverged or self._step >= self.total_steps

    def state(self) -> TrainerState:
        """Return the state to continue this run later, exactly."""
        return TrainerState(
            step=self._step,
            seq=self._seq,
            params=[dict(p) for p in self.params],
            opt_state=[{k: dict(v) for k, v in s.items()} for s in self._opt_state],
            dropout_rng=dict(self._dropout_rng.bit_generator.state),
            epoch_sums=(
                (self._epoch_loss, self._epoch_hits) if self._sums_kept else None
            ),
        )

    def begin(self) -> None:
        """Emit the events that open a run: the plan and the starting parameters."""
        if self._step != 0 or self._seq != 0:
            msg = "begin() opens a new run; this trainer continues one at step "
            raise RuntimeError(msg + f"{self._step}.")
        self._emit(
            ev.SessionStarted,
            None,
            network=self.spec.to_dict(),
            config=self.config.to_dict(),
            dataset=self.data.describe(),
            n_train=self.data.n_train,
            n_test=self.data.n_test,
            batch_size=self.batch_size,
            steps_per_epoch=self.steps_per_epoch,
            total_steps=self.total_steps,
            fused=self.fused,
            notices=tuple(self.notices),
        )
        given = self.spec.initial_params is not None
        for i, (layer, p) in enumerate(zip(self.spec.layers, self.params, strict=True)):
            self._emit(
                ev.ParametersInitialized,
                i,
                initializer="given" if given else layer.initializer_name,
                W=p["W"],
                b=p["b"],
            )

    def run(
        self,
        should_stop: Callable[[], bool] | None = None,
        before_step: Callable[[Trainer], object] | None = None,
    ) -> str:
        """Run to the end (or until ``should_stop()`` is true) and return why it ended.

        Emits the opening events when starting from step 0 and ``SessionEnded``
        last; calls ``before_step(self)`` before every step (a recorder uses it
        to store keyframes).  Returns ``"completed"``, ``"stopped"`` or
        ``"diverged"``.
        """
        if self._step == 0 and self._seq == 0:
            self.begin()
        reason = "completed"
        # One errstate for the whole loop (see train_step) instead of one per step.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            while not self.done:
                if should_stop is not None and should_stop():
                    reason = "stopped"
                    break
                if before_step is not None:
                    before_step(self)
                self._train_step()
        if self.diverged:
            reason = "diverged"
        self.end(reason)
        return reason

    def end(self, reason: str) -> None:
        """Emit ``SessionEnded`` with ``reason``.

        It belongs to the step that diverged, or else to the last completed step.
        """
        step = self._step if self.diverged else max(self._step - 1, 0)
        self._emit(ev.SessionEnded, None, step, reason=reason, steps=self._step)

    def predict(self, X: Array) -> Array:
        """Return the output for ``X`` (n_samples, n_features), without dropout."""
        return forward(self.params, X, self.activations).y_hat

    def train_step(self) -> bool:
        """Run one optimizer step; return False if it diverged.

        Overflow is not warned about: a non-finite value ends the run with a
        ``TrainingDiverged`` event that says where it appeared.

        Emits, in order: ``BatchSampled``; per layer ``WeightedSumComputed``,
        ``ActivationComputed`` and ``DropoutApplied`` (with dropout);
        ``LossComputed``; the gradients from ``dy_hat`` back to layer 0;
        ``ParametersUpdated`` per layer for W then b; ``StepCompleted``; and
        ``EpochCompleted`` after the last step of an epoch.  A non-finite
        loss, gradient or parameter emits ``TrainingDiverged`` instead of
        the rest and ends training.
        """
        if self.done:
            msg = f"Training is over ({self._step} steps); nothing is left to run."
            raise RuntimeError(msg)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return self._train_step()

    def _train_step(self) -> bool:
        on = self._on
        step, cfg = self._step, self.config
        at = self.start + step  # the position in the schedule
        epoch = at // self.steps_per_epoch
        indices = self._batch_indices(at)
        full, d = self._full, self.data
        # take() copies the same rows as X[indices], with less overhead.
        X = d.X_train if full else d.X_train.take(indices, axis=0)
        y = d.y_train if full else d.y_train.take(indices, axis=0)
        # NOTE: events nobody asked for are not built, but still numbered, so
        # that ``seq`` is the same whichever sink listens (or none).
        if on["batch_sampled"]:
            self._send(ev.BatchSampled(self._seq, step, epoch, None, indices, X, y))
        self._seq += 1

        # Forward pass and loss.  A full batch without dropout runs exactly the
        # pass that evaluated the training set after the previous step.
        cached, self._train_eval = self._train_eval, None
        if full and self.keep_probs is None and cached and cached[0] is self.params:
            tr, per_sample = cached[1], cached[2]
        else:
            tr = forward(
                self.params, X, self.activations, self.keep_probs, self._dropout_rng
            )
            if self.fused:
                per_sample = self.loss.forward_from_logits(
                    tr.z[-1], y, _shared(tr, self._y_unit_rows)
                )
            else:
                per_sample = self.loss.forward(tr.y_hat, y)
        loss_sum = float(np.add.reduce(per_sample))
        data_loss = loss_sum / per_sample.shape[0]
        penalty = 0.0
        if cfg.l2:
            penalty = 0.5 * cfg.l2 * sum(_sq(p["W"]) for p in self.params)
        loss = data_loss + penalty
        if self._forward_on:
            self._emit_forward(tr, step, epoch)
        else:
            self._seq += self._n_forward_events
        if on["loss_computed"]:
            self._send(
                ev.LossComputed(
                    self._seq,
                    step,
                    epoch,
                    None,
                    self.loss.name,
                    tr.y_hat,
                    y,
                    per_sample,
                    data_loss,
                    penalty,
                    loss,
                )
            )
        self._seq += 1
        if not math.isfinite(loss):
            return self._diverge(_first_nonfinite_forward(tr, per_sample), epoch)
        if self._sums_kept:
            if at % self.steps_per_epoch == 0:
                self._epoch_loss, self._epoch_hits = 0.0, 0
            self._epoch_loss += loss_sum
            assert self._labels is not None
            if self._labels.size:
                labels = self._labels if full else self._labels[indices]
                self._epoch_hits += _hits(tr.y_hat, labels)

        # Backward pass (dy_hat, unused by a fused output layer, only if wanted).
        self._backward(tr, y, on["gradient_computed"])
        if on["gradient_computed"]:
            seq = self._seq
            for layer, name, value in tr.grads:
                self._send(ev.GradientComputed(seq, step, epoch, layer, name, value))
                seq += 1
        # A skipped dy_hat keeps its number, as an event nobody asked for does.
        self._seq += len(tr.grads) + (tr.grads[0][1] != "dy_hat")
        grads = tr.param_grads
        # Norms and update ratios only feed StepCompleted; without it (a silent
        # replay) only the finiteness checks run, on sums of squares.
        summary = on["step_completed"]
        grad_norms: tuple[float, ...] = ()
        # Every update rule turns an inf or NaN gradient into an inf or NaN
        # parameter, so when the new parameters are all finite the gradients
        # were too: they are checked before the updates only if a norm is not
        # finite, and after them only if a new parameter is not.
        grads_checked = False
        if summary:
            grad_norms = tuple([_norm(g["W"]) for g in grads])
            if not all(map(math.isfinite, grad_norms)):
                # A norm overflows for entries near 1e308 that are all finite.
                if not _all_finite([g[k] for g in grads for k in ("W", "b")]):
                    return self._diverge_on_gradient(tr, y, epoch)
                grads_checked = True

        # Parameter updates, kept apart until the gradients are known finite.
        t = at - cfg.optimizer_start + 1  # steps the optimizer's state has seen
        update = self.optimizer.update
        ratios = []
        changes = 0.0
        new_params: Params = []
        new_states = []
        for p, g, s in zip(self.params, grads, self._opt_state, strict=True):
            W = p["W"]
            new_W, state_W = update(W, g["W"], s["W"], t)
            new_b, state_b = update(p["b"], g["b"], s["b"], t)
            new_params.append({"W": new_W, "b": new_b})
            new_states.append((state_W, state_b))
            if summary:
                change = _norm(new_W - W)
                ratios.append(change / (_norm(W) or math.inf))
                changes += change
        # With a summary the change norms have checked every new W.
        checked = ("b",) if summary else ("W", "b")
        params_finite = math.isfinite(changes) and _all_finite(
            [p[k] for p in new_params for k in checked]
        )
        if not params_finite and not grads_checked:
            if not _all_finite([g[k] for g in grads for k in ("W", "b")]):
                return self._diverge_on_gradient(tr, y, epoch)
        if on["parameters_updated"]:
            self._send_updates(new_params, new_states, grads, t, step, epoch)
        else:
            self._seq += 2 * len(new_params)
        for s, (state_W, state_b) in zip(self._opt_state, new_states, strict=True):
            s["W"] = state_W
            s["b"] = state_b
        self.params = new_params
        if not params_finite:
            bad = _first_nonfinite_params(new_params)
            if bad is not None:
                return self._diverge(bad, epoch)

        # After the last update no later step would notice a broken network,
        # so the final training loss is checked here, in every mode alike.
        if step + 1 == self.total_steps:
            d = self.data
            final = _evaluate(self, d.X_train, d.y_train)
            self._train_eval = (self.params, final[1], final[2])
            if not math.isfinite(final[0]["loss"]):
                found = _locate(final[2]) or ((), math.nan)
                what = "the training loss after the last update"
                return self._diverge((what, None, *found), epoch)

        # Step summary and, at the end of an epoch, metrics on all data.
        if on["step_completed"]:
            self._send(
                ev.StepCompleted(
                    self._seq,
                    step,
                    epoch,
                    None,
                    loss,
                    data_loss,
                    grad_norms,
                    tuple(ratios),
                )
            )
        self._seq += 1
        if (at + 1) % self.steps_per_epoch == 0:
            if on["epoch_completed"]:
                d = self.data
                cached = self._train_eval
                if self._batch_metrics:
                    train = self._batch_train_metrics()
                elif cached is not None and cached[0] is self.params:
                    train = _metrics(self, cached[1], cached[2], d.y_train)
                else:
                    train, tr, per_sample = _evaluate(self, d.X_train, d.y_train)
                    self._train_eval = (self.params, tr, per_sample)
                self._send(
                    ev.EpochCompleted(
                        self._seq,
                        step,
                        epoch,
                        None,
                        train,
                        evaluate(self, d.X_test, d.y_test),
                    )
                )
            self._seq += 1
        self._step = step + 1
        return True

    def evaluate(self, X: Array, y: Array) -> dict[str, float]:
        """Return the data loss (and accuracy for classification) on ``X``, ``y``."""
        return evaluate(self, X, y)

    def _diverge_on_gradient(self, tr: Trace, y: Array, epoch: int) -> bool:
        """End the run on the first non-finite gradient of this step's ``tr``."""
        if tr.grads[0][1] != "dy_hat":
            # Name the first bad gradient as a run that lists dy_hat does.
            tr.grads.clear()
            self._backward(tr, y, True)
        return self._diverge(_first_nonfinite_grad(tr), epoch)

    def _backward(self, tr: Trace, y: Array, dy_hat_wanted: bool) -> None:
        backward(
            tr,
            self.params,
            y,
            self.activations,
            self.loss,
            self.keep_probs,
            self.config.l2,
            self.fused,
            dy_hat_wanted,
        )

    def _send_updates(
        self,
        new_params: Params,
        new_states: list[tuple[dict[str, Array], dict[str, Array]]],
        grads: list[dict[str, Array]],
        t: int,
        step: int,
        epoch: int,
    ) -> None:
        """Send ``ParametersUpdated`` per layer, for W then b."""
        name_, lr = self.optimizer.name, self.config.lr
        for i, (p, g, new_p, states) in enumerate(
            zip(self.params, grads, new_params, new_states, strict=True)
        ):
            for name, state in zip(("W", "b"), states, strict=True):
                self._send(
                    ev.ParametersUpdated(
                        self._seq,
                        step,
                        epoch,
                        i,
                        name,
                        name_,
                        lr,
                        t,
                        p[name],
                        g[name],
                        new_p[name],
                        state,
                    )
                )
                self._seq += 1

    def _batch_train_metrics(self) -> dict[str, float]:
        """Return the epoch's training metrics from its batches (``"batches"``)."""
        n = self.data.n_train
        out = {"loss": self._epoch_loss / n}
        if self.data.task in ("binary", "multiclass"):
            out["accuracy"] = self._epoch_hits / n
        return out

    # -- helpers ---------------------------------------------------------

    @property
    def sink(self) -> Sink | None:
        """Return the sink that receives the events (None: train silently)."""
        return self._sink

    @sink.setter
    def sink(self, sink: Sink | None) -> None:
        # A sink may say which event kinds it needs in a ``wants`` attribute
        # (a set of kinds); the others are then not built at all.
        wants = getattr(sink, "wants", None)
        on = {
            kind: sink is not None and (wants is None or kind in wants)
            for kind in ev.EVENT_TYPES
        }
        if on["epoch_completed"] and self._batch_metrics and not self._sums_kept:
            # Only a state without sums, from inside an epoch, gets here.
            msg = (
                "This trainer started inside an epoch from a state without the "
                "epoch's sums, so it cannot give that epoch's training metrics; "
                "start it from a state that has them (TrainerState.epoch_sums)."
            )
            raise RuntimeError(msg)
        self._sink = sink
        self._on = on
        self._forward_on = (
            on["weighted_sum_computed"]
            or on["activation_computed"]
            or on["dropout_applied"]
        )

    def _send(self, event: ev.Event) -> None:
        assert self._sink is not None
        self._sink(event)

    def _emit(
        self,
        cls: type[ev.Event],
        layer: int | None,
        step: int | None = None,
        **fields: Any,
    ) -> None:
        """Build one event with the next ``seq`` and send it, if it is wanted."""
        if step is None:
            step = self._step
        if self._on[ev.KINDS[cls]]:
            epoch = (self.start + step) // self.steps_per_epoch
            self._send(cls(self._seq, step, epoch, layer, **fields))
        self._seq += 1

    def _emit_forward(self, tr: Trace, step: int, epoch: int) -> None:
        on = self._on
        seq = self._seq
        for i, act in enumerate(self.activations):
            p = self.params[i]
            if on["weighted_sum_computed"]:
                self._send(
                    ev.WeightedSumComputed(
                        seq, step, epoch, i, tr.a_prev[i], p["W"], p["b"], tr.z[i]
                    )
                )
            if on["activation_computed"]:
                self._send(
                    ev.ActivationComputed(
                        seq + 1, step, epoch, i, act.name, tr.z[i], tr.a_act[i]
                    )
                )
            seq += 2
            mask = tr.masks[i]
            if mask is not None:
                assert self.keep_probs is not None
                if on["dropout_applied"]:
                    self._send(
                        ev.DropoutApplied(
                            seq,
                            step,
                            epoch,
                            i,
                            self.keep_probs[i],
                            mask,
                            tr.a_act[i],
                            tr.a[i],
                        )
                    )
                seq += 1
        self._seq = seq

    def _batch_indices(self, step: int) -> IntArray:
        """Return the training rows of schedule step ``step`` (``start`` + local).

        Computable without earlier steps.

        A full batch is every row in order: shuffling it would change nothing
        but the order of a sum.
        """
        if self._full and self._perm is not None and self._perm[0] == -1:
            return self._perm[1]
        epoch, i = divmod(step, self.steps_per_epoch)
        n = self.data.n_train
        if self._perm is None or self._perm[0] != epoch:
            if self.config.shuffle and self.batch_size < n:
                seq = _seed_sequence(self.config.seed, _SHUFFLE, epoch)
                perm = np.random.default_rng(seq).permutation(n)
            elif self._perm is not None and self._perm[0] == -1:
                perm = self._perm[1]
            else:
                perm = np.arange(n)
            self._perm = (epoch if self.batch_size < n else -1, perm)
        if self.batch_size >= n:
            return self._perm[1]
        return self._perm[1][i * self.batch_size : (i + 1) * self.batch_size]

    def _diverge(
        self, where: tuple[str, int | None, tuple[int, ...], float], epoch: int
    ) -> bool:
        quantity, layer, index, value = where
        self.diverged = True
        what = "infinite" if math.isinf(value) else "not a number (NaN)"
        place = "" if layer is None else f" of layer {layer + 1}"
        msg = (
            f"Training diverged in epoch {epoch + 1} (step {self._step}): "
            f"{quantity}{place} became {what}{_position(quantity, index)}. The "
            "updates grew too large; try a smaller learning rate, for example "
            f"{self.config.lr / 10:g} instead of {self.config.lr:g}."
        )
        self._emit(
            ev.TrainingDiverged,
            layer,
            quantity=quantity,
            index=index,
            value=value,
            message=msg,
        )
        return False


def evaluate(trainer: Trainer, X: Array, y: Array) -> dict[str, float]:
    """Return the data loss (and accuracy for classification) of ``trainer`` on data.

    Empty data gives an empty dict.  The loss is the mean per-sample loss
    without the L2 penalty, as on the loss curve's test line.
    """
    if X.shape[0] == 0:
        return {}
    return _evaluate(trainer, X, y)[0]


def _evaluate(
    trainer: Trainer, X: Array, y: Array
) -> tuple[dict[str, float], Trace, Array]:
    """Return the metrics, the forward trace and the per-sample losses on data."""
    tr = forward(trainer.params, X, trainer.activations)
    if trainer.fused:
        unit = trainer._y_unit_rows and y is trainer.data.y_train
        per_sample = trainer.loss.forward_from_logits(tr.z[-1], y, _shared(tr, unit))
    else:
        per_sample = trainer.loss.forward(tr.y_hat, y)
    return _metrics(trainer, tr, per_sample, y), tr, per_sample


def _shared(tr: Trace, rows_sum_to_one: bool) -> Shared:
    """Return what the fused loss may reuse of a forward pass (see ``Shared``)."""
    if tr.out_parts is None:
        return None
    return (*tr.out_parts, rows_sum_to_one)


def _metrics(
    trainer: Trainer, tr: Trace, per_sample: Array, y: Array
) -> dict[str, float]:
    """Return the loss (and accuracy) from an evaluation pass over data."""
    out = {"loss": _mean(per_sample)}
    task = trainer.data.task
    # A count over n is exactly what the mean of the 0/1 hits gives.
    if task in ("binary", "multiclass"):
        out["accuracy"] = _hits(tr.y_hat, _labels(task, y)) / y.shape[0]
    return out


def _labels(task: str, y: Array) -> np.ndarray:
    """Return what a prediction is checked against: 0/1 flags or class indices.

    Empty for a regression task (no accuracy).
    """
    if task == "binary":
        return y >= 0.5
    if task == "multiclass":
        return y.argmax(axis=1)
    return y[:0, 0]


def _hits(y_hat: Array, labels: np.ndarray) -> int:
    """Return how many rows of ``y_hat`` predict ``labels`` (see ``_labels``).

    The accuracy rule of both the epoch's batches and an evaluation pass.
    """
    if labels.ndim == 1:
        return int(np.count_nonzero(y_hat.argmax(axis=1) == labels))
    if labels.shape[1] == 1:
        return int(np.count_nonzero((y_hat[:, 0] >= 0.5) == labels[:, 0]))
    return int(np.count_nonzero(((y_hat >= 0.5) == labels).all(axis=1)))


def _mean(x: Array) -> float:
    """Return ``float(x.mean())`` of a 1-D array, bit for bit, without its overhead.

    ``ndarray.mean`` is the same pairwise sum divided by the count.
    """
    return float(np.add.reduce(x)) / x.shape[0]


def _seed_sequence(seed: int, *key: int) -> np.random.SeedSequence:
    """Return the seed sequence of one source of randomness of a run."""
    return np.random.SeedSequence(seed, spawn_key=key)


def _sq(x: Array) -> float:
    """Return the sum of squares of ``x`` (its squared Frobenius norm)."""
    flat = x.ravel()
    return float(flat.dot(flat))


def _norm(x: Array) -> float:
    """Return the Frobenius norm of ``x``; inf or NaN only if an entry is."""
    flat = x.ravel()
    sq = float(flat.dot(flat))
    if sq < math.inf:  # finite (NaN and inf fail this test)
        return math.sqrt(sq)
    # NOTE: squares of entries above about 1e154 overflow; scale them first.
    top = float(np.abs(x).max())
    if not math.isfinite(top) or top == 0.0:
        return top
    return top * math.sqrt(_sq(x / top))


def _all_finite(arrays: list[Array]) -> bool:
    """Return True if no entry of ``arrays`` is inf or NaN.

    One sum of squares for all of them; only when it overflows (or an entry
    is not finite) are the entries checked.
    """
    total = 0.0
    for v in arrays:
        flat = v.ravel()
        total += float(flat.dot(flat))
    if total < math.inf:
        return True
    return all(bool(np.isfinite(v).all()) for v in arrays)


def _position(quantity: str, index: tuple[int, ...]) -> str:
    """Describe where in an array a value sits, in words."""
    if not index:
        return ""
    if quantity in ("W", "dW") and len(index) == 2:
        return f" (the weight from input {index[0]} to unit {index[1]})"
    if len(index) == 1:
        noun = "unit" if quantity in ("b", "db") else "sample"
        return f" ({noun} {index[0]})"
    return f" (sample {index[0]}, unit {index[1]})"


def _locate(arr: Array) -> tuple[tuple[int, ...], float] | None:
    bad = np.argwhere(~np.isfinite(arr))
    if bad.size == 0:
        return None
    index = tuple(int(i) for i in bad[0])
    return index, float(arr[index])


def _first_nonfinite_forward(
    tr: Trace, per_sample: Array
) -> tuple[str, int | None, tuple[int, ...], float]:
    for i in range(len(tr.z)):
        for name, arr in (("z", tr.z[i]), ("a", tr.a[i])):
            found = _locate(arr)
            if found is not None:
                return (name, i, *found)
    found = _locate(per_sample)
    if found is not None:
        return ("the loss", None, *found)
    return ("the loss (through the L2 penalty)", None, (), math.inf)


def _first_nonfinite_grad(tr: Trace) -> tuple[str, int | None, tuple[int, ...], float]:
    for layer, name, value in tr.grads:
        found = _locate(value)
        if found is not None:
            return (name, layer, *found)
    raise AssertionError("a gradient norm was not finite, but no entry is")


def _first_nonfinite_params(
    params: Params,
) -> tuple[str, int | None, tuple[int, ...], float] | None:
    for i, p in enumerate(params):
        for name in ("W", "b"):
            found = _locate(p[name])
            if found is not None:
                return (name, i, *found)
    return None


def _check_fit(spec: NetworkSpec, config: TrainingConfig, data: Dataset) -> list[str]:
    """Raise for a network, loss and data that cannot work; return notices."""
    out_layer = spec.layers[-1]
    out_act = spec.activations()[-1]
    loss = get_loss(config.loss)
    if spec.n_in != data.n_features:
        msg = (
            f"The network takes {spec.n_in} inputs but the data has "
            f"{data.n_features} features; set n_in to {data.n_features}."
        )
        raise ConfigError(msg)
    if out_layer.n_out != data.n_outputs:
        what = {
            "binary": "1 unit for a binary target",
            "multiclass": f"one unit per class ({data.n_outputs})",
            "regression": f"one unit per target ({data.n_outputs})",
        }[data.task]
        msg = (
            f"The output layer has {out_layer.n_out} units but the data needs "
            f"{what}; set the last layer to {data.n_outputs} units."
        )
        raise ConfigError(msg)
    if loss.needs_probabilities:
        low, high = out_act.output_range
        if low < 0.0 or high > 1.0:
            fit = "a sigmoid" if loss.name == "binary_cross_entropy" else "a softmax"
            msg = (
                f"{loss.name} needs outputs between 0 and 1, but the output layer "
                f"uses {out_act.name}, which can give values outside that range. "
                f"Use {fit} output layer, or the mse loss."
            )
            raise ConfigError(msg)
    if loss.name == "categorical_cross_entropy" and data.n_outputs == 1:
        msg = (
            "categorical_cross_entropy needs one output per class; for a single "
            "0/1 output use binary_cross_entropy with a sigmoid output."
        )
        raise ConfigError(msg)
    if config.optimizer == "gd" and config.batch_size not in (None, data.n_train):
        msg = (
            f"The gd optimizer is full-batch gradient descent, but batch_size is "
            f"{config.batch_size}. Leave batch_size empty for gd, or use sgd for "
            "mini-batches."
        )
        raise ConfigError(msg)
    if config.batch_size is not None and config.batch_size > data.n_train:
        msg = (
            f"batch_size {config.batch_size} is larger than the {data.n_train} "
            f"training rows; use at most {data.n_train}, or leave it empty for "
            "full batch."
        )
        raise ConfigError(msg)

    notices = []
    low, high = out_act.output_range
    y_low, y_high = float(data.y_train.min()), float(data.y_train.max())
    if y_low < low or y_high > high:
        notices.append(
            f"The targets range from {y_low:g} to {y_high:g}, but a {out_act.name} "
            f"output can only give values in ({low:g}, {high:g}); the loss cannot "
            "reach 0. Use a linear (identity) output or scale the targets."
        )
    for i, layer in enumerate(spec.layers[:-1]):
        if spec.initial_params is None and layer.initializer_name == "zeros":
            notices.append(
                f"Layer {i + 1} starts with all weights 0: its {layer.n_out} units "
                "compute the same thing and get the same updates, so they stay "
                "identical (symmetry is never broken). Use a random initializer "
                "to let them learn different features."
            )
    return notices
