"""Fork a run: continue a recorded session from any step with changed settings.

A fork is a session of its own.  It starts from the exact trainer state its
parent had before ``step`` (parameters, optimizer state, dropout generator,
the epoch's running sums), stored as its keyframe of step 0, and records in its
metadata the parent (file name, title, content) and the step it branched from.
Its own steps count from 0, but it continues the parent's schedule
(``TrainingConfig.start_step``): with nothing changed, a fork repeats the
parent's steps bit for bit.

What may change: the learning rate, the optimizer and its settings, the batch
size, L2, dropout per layer, the seed, the number of epochs, shuffling, how the
epoch's training metrics are measured, and single parameters edited by hand.
A new optimizer starts with fresh state (its step count too); a new batch size
starts the current epoch over; a new seed draws new batch orders and dropout
masks from the fork on.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.config import TrainingConfig
from engine.errors import ConfigError
from engine.network import LayerSpec, NetworkSpec
from engine.optimizers import OPTIMIZERS, get_optimizer
from engine.trainer import Trainer, TrainerState
from sessions.errors import SessionError
from sessions.initial import apply_initial_values, normalize_initial_values, to_meta
from sessions.recorder import DEFAULT_KEYFRAME_INTERVAL, Recorder
from sessions.session import Session
from sessions.state import encode_state

__all__ = ["FORK_SETTINGS", "family", "fork", "fork_start", "parent_state_matches"]

FORK_SETTINGS = (
    "lr",
    "optimizer",
    "momentum",
    "rho",
    "beta1",
    "beta2",
    "eps",
    "batch_size",
    "l2",
    "seed",
    "epochs",
    "shuffle",
    "train_metrics",
)
"""The training settings a fork may change (the loss and the data stay)."""


def fork_start(
    parent: Session,
    step: int,
    changes: Mapping[str, Any] | None = None,
    dropout: Sequence[float] | None = None,
    edits: Any = None,
) -> tuple[NetworkSpec, TrainingConfig, TrainerState, dict[str, Any]]:
    """Return the network, settings, start state and metadata of a fork.

    ``step`` is the parent step the fork replaces: it starts from the state
    before that step (``parent.n_steps``: after the last one).  ``changes``
    maps names in :data:`FORK_SETTINGS` to new values, ``dropout`` gives every
    layer's dropout rate, ``edits`` sets parameters by hand,
    ``{(layer, "W" or "b", index): value}`` as for initial values.

    Raises
    ------
    ConfigError
        For a step outside the run, a setting a fork cannot change, a value
        the setting refuses, or a run that would have no steps left.
    """
    changes = dict(changes or {})
    if isinstance(step, bool) or not isinstance(step, int | np.integer):
        raise ConfigError(f"The fork step must be a whole number; got {step!r}.")
    step = int(step)
    if not 0 <= step <= parent.n_steps:
        msg = (
            f"Step {step} is not in {parent.path.name}: a fork can start before "
            f"any of its steps 0 to {parent.n_steps - 1}, or after the last "
            f"({parent.n_steps})."
        )
        raise ConfigError(msg)
    unknown = sorted(set(changes) - set(FORK_SETTINGS))
    if unknown:
        msg = (
            f"A fork cannot change {', '.join(unknown)}; it can change "
            f"{', '.join(FORK_SETTINGS)}, dropout and single parameters."
        )
        raise ConfigError(msg)

    old = parent.config
    spec = _with_dropout(parent.spec, dropout)
    state = _state_before(parent, step)
    at = old.start_step + step  # where the parent's schedule stands

    n = parent.dataset.n_train
    old_batch = n if old.batch_size is None else old.batch_size
    merged = dataclasses.replace(old, **changes)
    new_batch = n if merged.batch_size is None else merged.batch_size
    old_spe = -(-n // old_batch)
    new_spe = -(-n // new_batch)
    sums = state.epoch_sums
    if new_batch != old_batch:
        at = (at // old_spe) * new_spe  # the current epoch starts over
        sums = (0.0, 0)
    opt_state = state.opt_state
    optimizer_start = old.optimizer_start
    if merged.optimizer != old.optimizer:
        optimizer = get_optimizer(
            merged.optimizer, merged.lr, **merged.optimizer_settings()
        )
        opt_state = [
            {k: optimizer.init_state(p[k]) for k in ("W", "b")} for p in state.params
        ]
        optimizer_start = at
    config = dataclasses.replace(merged, start_step=at, optimizer_start=optimizer_start)
    if config.train_metrics != "batches":
        sums = None
    elif sums is None:  # the parent evaluated instead: only a whole epoch will do
        if at % new_spe:
            msg = (
                "Training metrics from the epoch's batches need the whole epoch; "
                f"step {step} is inside one. Fork at the start of an epoch, or keep "
                f"train_metrics={old.train_metrics!r}."
            )
            raise ConfigError(msg)
        sums = (0.0, 0)
    rng = state.dropout_rng
    if merged.seed != old.seed:
        fresh = Trainer(
            spec,
            dataclasses.replace(config, start_step=0, optimizer_start=0),
            parent.dataset,
        )
        rng = fresh.state().dropout_rng
    given = normalize_initial_values(edits, spec)
    params = apply_initial_values(state.params, given) if given else state.params
    start = TrainerState(
        step=0,
        seq=0,
        params=params,
        opt_state=opt_state,
        dropout_rng=rng,
        epoch_sums=sums,
    )
    # Check now that the fork has steps to run (the error names the fix).
    Trainer(spec, config, parent.dataset, state=start)

    changed = {
        key: getattr(config, key)
        for key in FORK_SETTINGS
        if getattr(config, key) != getattr(old, key)
    }
    if dropout is not None:
        changed["dropout"] = [layer.dropout for layer in spec.layers]
    names = OPTIMIZERS[old.optimizer].state_names
    meta = {
        "parent": {
            "file": parent.path.name,
            "title": parent.title,
            "created_at": parent.meta.get("created_at"),
            # The parent's state at the fork, as its keyframe bytes would be.
            "state_sha256": hashlib.sha256(encode_state(state, names)).hexdigest(),
        },
        "fork_step": step,
        "fork_changes": changed,
        "fork_edits": to_meta(given),
    }
    return spec, config, start, meta


def fork(
    parent: Session,
    step: int,
    path: str | Path,
    *,
    changes: Mapping[str, Any] | None = None,
    dropout: Sequence[float] | None = None,
    edits: Any = None,
    title: str = "",
    description: str = "",
    overwrite: bool = False,
    keyframe_interval: int = DEFAULT_KEYFRAME_INTERVAL,
    should_stop: Callable[[], bool] | None = None,
    progress: Callable[[Trainer], object] | None = None,
) -> str:
    """Record a fork of ``parent`` from before its ``step`` into ``path``.

    See :func:`fork_start` for what may change; returns why the run ended,
    like :func:`sessions.record`.
    """
    spec, config, start, meta = fork_start(parent, step, changes, dropout, edits)
    trainer = Trainer(spec, config, parent.dataset, state=start)
    if not title:
        what = ", ".join(f"{k} {v}" for k, v in meta["fork_changes"].items())
        if meta["fork_edits"]:
            what = ", ".join(filter(None, [what, "weights edited"]))
        title = f"{parent.title} · fork at step {step}" + (f" ({what})" if what else "")
    rec = Recorder(
        path,
        trainer,
        title=title,
        description=description,
        keyframe_interval=keyframe_interval,
        overwrite=overwrite,
        meta=meta,
    )
    return rec.run(should_stop, progress)


def parent_state_matches(fork_session: Session, parent: Session) -> bool:
    """Return True if ``parent``'s state at the fork point is the one recorded."""
    info = fork_session.meta.get("parent") or {}
    step = fork_session.meta.get("fork_step")
    if not isinstance(step, int) or not 0 <= step <= parent.n_steps:
        return False
    state = _state_before(parent, step)
    names = OPTIMIZERS[parent.config.optimizer].state_names
    digest = hashlib.sha256(encode_state(state, names)).hexdigest()
    return bool(digest == info.get("state_sha256"))


def _state_before(parent: Session, step: int) -> TrainerState:
    """Return the parent's state before ``step`` (after the last one for n_steps)."""
    if step < parent.n_steps:
        return parent.state_before(step)
    trainer = parent.trainer_before(step - 1)
    trainer.train_step()
    return trainer.state()


def _with_dropout(spec: NetworkSpec, dropout: Sequence[float] | None) -> NetworkSpec:
    if dropout is None:
        return spec
    rates = list(dropout)
    if len(rates) != len(spec.layers):
        msg = f"Give one dropout rate per layer ({len(spec.layers)}); got {len(rates)}."
        raise ConfigError(msg)
    layers: tuple[LayerSpec, ...] = tuple(
        dataclasses.replace(layer, dropout=rate)
        for layer, rate in zip(spec.layers, rates, strict=True)
    )
    return dataclasses.replace(spec, layers=layers)


def family(
    session: Session, folders: Sequence[str | Path] = ()
) -> list[tuple[Path, str, str]]:
    """Return the runs related to ``session``, as (path, title, how).

    Looks in the session's folder and in ``folders`` (a student's forks of a
    class-library session sit in the student's own folder).  ``how`` is
    ``"parent"``, ``"this run"``, ``"fork"`` (a fork of this run) or
    ``"sibling"`` (another fork of its parent).  Runs are matched by file
    name; files that cannot be opened are left out.
    """
    me = session.path.name
    mine = (session.fork_of or {}).get("file")
    out: list[tuple[Path, str, str]] = []
    seen: set[Path] = set()
    paths = []
    for folder in (session.path.parent, *map(Path, folders)):
        for path in sorted(folder.glob("*.session")):
            if path.resolve() not in seen:
                seen.add(path.resolve())
                paths.append(path)
    for path in paths:
        if path.resolve() == session.path.resolve():
            out.append((path, session.title, "this run"))
            continue
        try:
            with Session(path, verify_steps=False) as other:
                theirs = (other.fork_of or {}).get("file")
                title = other.title
        except (SessionError, OSError):
            continue
        if path.name == mine:
            out.append((path, title, "parent"))
        elif theirs == me:
            out.append((path, title, "fork"))
        elif mine is not None and theirs == mine:
            out.append((path, title, "sibling"))
    order = {"parent": 0, "this run": 1, "sibling": 2, "fork": 3}
    return sorted(out, key=lambda r: order[r[2]])
