"""Tab 5: train a new run live; gradients and updates at the cursor step."""

from __future__ import annotations

import html
import logging
import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import panel as pn
from bokeh.models import ColumnDataSource, Span
from bokeh.plotting import figure

from engine import events as ev
from engine.config import TrainingConfig
from engine.errors import ConfigError
from engine.network import NetworkSpec
from engine.optimizers import OPTIMIZERS
from sessions import Session, SessionError
from sessions.fork import FORK_SETTINGS, family
from sessions.initial import normalize_initial_values
from ui import explain
from ui.export import ArrayDownload
from ui.metrics import decimate
from ui.tabs.base import Tab
from ui.tabs.forward import heat_grid
from ui.tabs.network import fit_design
from ui.training_job import ForkJob, TrainingJob, session_path

__all__ = ["TrainingTab", "UpdateExpansion", "expand_update", "fitting_loss"]

logger = logging.getLogger(__name__)

POLL_MS = 300
"""Milliseconds between two looks at a running job (on the server thread)."""

MAX_CURVE_POINTS = 2000
"""Most points drawn on the loss curve; longer runs are decimated (min/max)."""

SETTINGS_OF = {name: cls.settings for name, cls in OPTIMIZERS.items()}
"""The optimizer settings each optimizer reads (shown only for it)."""

_CSS = """
pre { white-space: pre-wrap; font-size: 13px; background: #f8f8f8;
  padding: 6px; border: 1px solid #e5e5e5; margin: 4px 0; }
table { border-collapse: collapse; font-size: 12px; }
td { border: 1px solid #ddd; padding: 1px 4px; text-align: right; }
td.gn-label { text-align: left; background: #fafafa; font-weight: 600; }
.gn-error { color: #a00; font-weight: 600; }
.gn-ok { color: #060; }
h4 { font-size: 14px; margin: 10px 0 3px; }
td.gn-now { outline: 1px solid #f0a500; }
.gn-scroll { overflow-x: auto; max-width: 100%; }
"""
"""Styles of the tab's HTML panes (each pane has its own shadow root)."""


def fitting_loss(task: str) -> str:
    """Return the loss that fits a dataset's task (``binary``, ``multiclass``, ...)."""
    return {
        "binary": "binary_cross_entropy",
        "multiclass": "categorical_cross_entropy",
    }.get(task, "mse")


@dataclass(frozen=True)
class UpdateExpansion:
    """One parameter's update written out with its recorded numbers.

    ``lines`` are the formula's steps with numbers; ``value`` is the new value
    computed from them (equal to the recorded ``after``), ``recorded`` the
    recorded ``after``.
    """

    label: str
    lines: tuple[str, ...]
    value: float
    recorded: float

    def __str__(self) -> str:
        return "\n".join(self.lines)


def expand_update(
    event: ev.ParametersUpdated,
    index: tuple[int, ...],
    config: TrainingConfig,
    previous: dict[str, float] | None = None,
) -> UpdateExpansion:
    """Write out the update of one entry of ``event`` with its numbers.

    Parameters
    ----------
    event : ParametersUpdated
        The recorded update of one layer's ``W`` or ``b``.
    index : tuple of int
        ``(i, j)`` into ``W`` or ``(j,)`` into ``b`` (0-based; the text shows
        them counted from 1).
    config : TrainingConfig
        The run's settings (momentum, rho, beta1, beta2, eps, l2).
    previous : dict or None
        The optimizer state of this entry before the update (``velocity``,
        ``s``, ``m``, ``v``); None to show only the recorded state after it.

    Returns
    -------
    UpdateExpansion
        The lines follow the operations of :mod:`engine.optimizers` in order,
        so ``value`` reproduces the recorded ``after`` bit for bit.
    """
    f = explain.fmt
    p = np.float64(event.before[index])
    g = np.float64(event.grad[index])
    lr = event.lr
    state = {k: np.float64(v[index]) for k, v in event.state.items()}
    # Layers, units and inputs are counted from 1 on screen (layer 1 is
    # event.layer 0; W[i, j] joins input/unit i to unit j, index (i - 1, j - 1)).
    where = ", ".join(str(k + 1) for k in index)
    label = f"{event.name}[{where}] of layer {event.layer + 1}"
    lines = [f"{label}  (optimizer {event.optimizer}, step counter t = {event.t})"]
    if event.name == "W" and config.l2:
        data_part = g - config.l2 * p
        lines.append(
            f"gradient g = data gradient + l2 x W = {f(data_part)} + "
            f"{f(config.l2)} x {f(p)} = {f(g)}"
        )
    else:
        lines.append(f"gradient g = {f(g)}")

    def prev(name: str) -> str:
        if previous is None or name not in previous:
            return f"{name}_prev"
        return f(previous[name])

    name = event.optimizer
    if name in ("gd", "sgd"):
        new = p - lr * g
        lines.append(f"new = W - lr x g = {f(p)} - {f(lr)} x {f(g)} = {f(new)}")
    elif name in ("momentum", "nesterov"):
        mu = config.momentum
        velocity = state["velocity"]
        lines.append(
            f"velocity = momentum x velocity_prev + g = {f(mu)} x {prev('velocity')}"
            f" + {f(g)} = {f(velocity)}"
        )
        if name == "momentum":
            new = p - lr * velocity
            lines.append(
                f"new = W - lr x velocity = {f(p)} - {f(lr)} x {f(velocity)} = {f(new)}"
            )
        else:
            new = p - lr * (g + mu * velocity)
            lines.append(
                f"new = W - lr x (g + momentum x velocity) = {f(p)} - {f(lr)} x "
                f"({f(g)} + {f(mu)} x {f(velocity)}) = {f(new)}"
            )
    elif name == "rmsprop":
        rho, eps = config.rho, config.eps
        s = state["s"]
        lines.append(
            f"s = rho x s_prev + (1 - rho) x g^2 = {f(rho)} x {prev('s')} + "
            f"{f(1.0 - rho)} x {f(g)}^2 = {f(s)}"
        )
        new = p - lr * g / (np.sqrt(s) + eps)
        lines.append(
            f"new = W - lr x g / (sqrt(s) + eps) = {f(p)} - {f(lr)} x {f(g)} / "
            f"(sqrt({f(s)}) + {f(eps)}) = {f(new)}"
        )
    elif name == "adam":
        b1, b2, eps, t = config.beta1, config.beta2, config.eps, event.t
        m, v = state["m"], state["v"]
        m_hat = m / (1.0 - b1**t)
        v_hat = v / (1.0 - b2**t)
        lines += [
            f"m = beta1 x m_prev + (1 - beta1) x g = {f(b1)} x {prev('m')} + "
            f"{f(1.0 - b1)} x {f(g)} = {f(m)}",
            f"v = beta2 x v_prev + (1 - beta2) x g^2 = {f(b2)} x {prev('v')} + "
            f"{f(1.0 - b2)} x {f(g)}^2 = {f(v)}",
            f"m_hat = m / (1 - beta1^t) = {f(m)} / (1 - {f(b1)}^{t}) = {f(m_hat)}",
            f"v_hat = v / (1 - beta2^t) = {f(v)} / (1 - {f(b2)}^{t}) = {f(v_hat)}",
        ]
        new = p - lr * m_hat / (np.sqrt(v_hat) + eps)
        lines.append(
            f"new = W - lr x m_hat / (sqrt(v_hat) + eps) = {f(p)} - {f(lr)} x "
            f"{f(m_hat)} / (sqrt({f(v_hat)}) + {f(eps)}) = {f(new)}"
        )
    else:
        msg = f"No written-out form for optimizer {name!r}."
        raise ValueError(msg)
    recorded = float(event.after[index])
    same = "matches" if float(new) == recorded else "DIFFERS FROM"
    lines.append(f"recorded after = {explain.fmt(recorded, 10)} ({same} the formula)")
    return UpdateExpansion(label, tuple(lines), float(new), recorded)


def parse_dropout(text: str, n_hidden: int) -> list[float]:
    """Return one dropout rate per hidden layer from ``"0.2"`` or ``"0.2, 0.1"``.

    Raises
    ------
    ConfigError
        If the text is not numbers, or gives neither one value nor one per
        hidden layer.
    """
    parts = [p for p in text.replace(";", ",").split(",") if p.strip()] or ["0"]
    try:
        rates = [float(p) for p in parts]
    except ValueError:
        msg = (
            f"Dropout {text!r} is not a number; give one rate for all hidden "
            "layers (e.g. 0.2) or one per hidden layer (e.g. 0.2, 0.1)."
        )
        raise ConfigError(msg) from None
    if len(rates) == 1:
        return rates * n_hidden
    if len(rates) != n_hidden:
        msg = (
            f"Dropout gives {len(rates)} rates but the network has {n_hidden} "
            "hidden layers; give one rate for all or one per hidden layer."
        )
        raise ConfigError(msg)
    return rates


class TrainingTab(Tab):
    """Train a new run live; show the cursor step's gradients and updates.

    The settings form builds a :class:`TrainingConfig`; Train records a new
    session in a background thread (:class:`ui.training_job.TrainingJob`),
    opens it as soon as it has a step and follows it with a periodic callback
    on the server thread, which is the only place widgets are updated from.
    """

    title = "Training cycle"
    index = 4
    help = (
        "Set the training settings and press Train: the new run is recorded and "
        "shown live (Stop keeps what ran). Below, the cursor step's gradients; "
        "pick a weight to see its update written out."
    )
    watches = ("session", "events", "op", "data", "design")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.job: TrainingJob | None = None
        self._poll: Any = None
        self._following: str | None = None
        self._curve_key: tuple[int, int] = (0, -1)
        self._defaults_from: int = 0
        self._loss_for: int = 0
        self._syncing = False
        text = {"sizing_mode": "stretch_width", "stylesheets": [_CSS]}

        # Settings form.  No widget has bounds: the browser would silently
        # clamp or revert a value outside them and the run would use another
        # value than the one typed.  Train checks every field instead (with the
        # engine's own TrainingConfig checks) and refuses with a message.
        self.epochs = pn.widgets.IntInput(label="Epochs", value=10, width=110)
        self.lr = pn.widgets.FloatInput(
            label="Learning rate", value=0.01, step=0.001, width=120
        )
        self.full_batch = pn.widgets.Checkbox(label="Full batch", value=True)
        self.batch_size = pn.widgets.IntInput(
            label="Batch size", value=32, width=110, disabled=True
        )
        self.optimizer = pn.widgets.Select(
            label="Optimizer", options=list(OPTIMIZERS), value="adam", width=120
        )
        self.momentum = pn.widgets.FloatInput(label="momentum", value=0.9, width=100)
        self.rho = pn.widgets.FloatInput(label="rho", value=0.9, width=100)
        self.beta1 = pn.widgets.FloatInput(label="beta1", value=0.9, width=100)
        self.beta2 = pn.widgets.FloatInput(label="beta2", value=0.999, width=100)
        self.eps = pn.widgets.FloatInput(label="eps", value=1e-8, width=100)
        self.loss = pn.widgets.Select(
            label="Loss",
            options=["mse", "binary_cross_entropy", "categorical_cross_entropy"],
            value="mse",
            width=240,
        )
        self.l2 = pn.widgets.FloatInput(label="L2", value=0.0, width=100)
        self.dropout = pn.widgets.TextInput(
            label="Dropout (one for all hidden layers, or one per layer)",
            value="0",
            width=260,
        )
        self.seed = pn.widgets.IntInput(label="Seed", value=0, width=100)
        self.run_title = pn.widgets.TextInput(label="Title of the new session")
        self.description = pn.widgets.TextAreaInput(label="Description", height=60)
        self.train_button = pn.widgets.Button(label="Train", color="primary", width=100)
        self.stop_button = pn.widgets.Button(
            label="Stop", color="warning", width=100, disabled=True
        )
        self.train_button.on_click(self._on_train_click)
        self.stop_button.on_click(self._on_stop_click)
        self.optimizer.param.watch(self._on_optimizer_change, "value")
        self.full_batch.param.watch(self._on_full_batch_change, "value")
        self._on_optimizer_change()

        # Run progress and messages.
        self.help_pane = pn.pane.HTML(f"<p><i>{html.escape(self.help)}</i></p>", **text)
        self.progress = pn.pane.HTML("<p>No run started in this tab.</p>", **text)
        self.message = pn.pane.HTML("", **text)
        self.fit_note = pn.pane.HTML("", **text)
        self.bar = pn.indicators.Progress(
            label="Progress", value=0, max=1, width=300, visible=False
        )

        # Loss curve, grown in place.
        self.curve_source = ColumnDataSource({"step": [], "loss": []})
        self.curve_figure = figure(
            height=220,
            sizing_mode="stretch_width",
            title="Loss per step",
            x_axis_label="step",
            y_axis_label="loss",
            tools="pan,wheel_zoom,box_zoom,reset,save",
        )
        self.curve_figure.line(
            "step", "loss", source=self.curve_source, line_width=1.5, color="#4c78a8"
        )
        self.cursor_line = Span(
            location=0, dimension="height", line_color="#f0a500", line_width=2
        )
        self.curve_figure.add_layout(self.cursor_line)
        self.curve_pane = pn.pane.Bokeh(self.curve_figure, sizing_mode="stretch_width")

        # Gradients and the chosen weight's update at the cursor step.
        self.gradients = pn.pane.HTML("", **text)
        # Counted from 1, as everywhere on screen; the event's layer is one less.
        self.pick_layer = pn.widgets.IntInput(label="Layer", value=1, start=1, width=80)
        self.pick_param = pn.widgets.Select(
            label="Parameter", options=["W", "b"], value="W", width=80
        )
        # W[i, j] joins input/unit i of the previous layer to unit j, from 1.
        self.pick_i = pn.widgets.IntInput(
            label="from input/unit i (W)", value=1, start=1, width=150
        )
        self.pick_j = pn.widgets.IntInput(label="to unit j", value=1, start=1, width=90)
        for w in (self.pick_layer, self.pick_param, self.pick_i, self.pick_j):
            w.param.watch(self._on_pick_change, "value")
        self.update_pane = pn.pane.HTML("", **text)
        # Fork: continue the open session from the cursor with the form's settings.
        self.fork_button = pn.widgets.Button(
            label="Fork from this step",
            description=(
                "Continue the open run from the cursor's step with the settings "
                "above (and the picked parameter set to the value beside)"
            ),
            width=180,
        )
        self.fork_value = pn.widgets.FloatInput(
            label="Set the picked parameter to (fork only)", value=None, width=240
        )
        self.fork_button.on_click(self._on_fork_click)
        # The family of the open run: its parent, its siblings, its forks.
        self.family = pn.widgets.Select(
            label="Family of this run", options={}, width=420, visible=False
        )
        self.family_open = pn.widgets.Button(label="Open", width=70, visible=False)
        self.family_open.on_click(self._on_family_open)
        self._family_of: Any = None
        # Any gradient or update of the step (whole arrays), as a .npy file.
        self.array_download = ArrayDownload(
            state=self.state, kinds=["gradient_computed", "parameters_updated"]
        )

        self._optimizer_row = pn.Row(
            self.momentum, self.rho, self.beta1, self.beta2, self.eps
        )
        self._layout = pn.Column(
            self.help_pane,
            pn.Row(
                self.epochs,
                self.lr,
                self.full_batch,
                self.batch_size,
                self.seed,
            ),
            pn.Row(self.optimizer, self._optimizer_row),
            pn.Row(self.loss, self.l2, self.dropout),
            pn.Row(self.run_title, self.description),
            pn.Row(self.train_button, self.stop_button, self.bar),
            pn.Row(self.fork_button, self.fork_value),
            pn.Row(self.family, self.family_open),
            self.message,
            self.fit_note,
            self.progress,
            self.curve_pane,
            pn.pane.HTML("<h3>Gradients at the cursor step</h3>", **text),
            self.gradients,
            self.array_download,
            pn.pane.HTML("<h3>One parameter's update, written out</h3>", **text),
            pn.Row(self.pick_layer, self.pick_param, self.pick_i, self.pick_j),
            self.update_pane,
            sizing_mode="stretch_width",
        )
        if pn.state.curdoc is not None and pn.state.curdoc.session_context:
            pn.state.on_session_destroyed(self._on_session_destroyed)

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout

    # -- the form -----------------------------------------------------------

    def _on_optimizer_change(self, *_: Any) -> None:
        used = SETTINGS_OF.get(self.optimizer.value, ())
        for name in ("momentum", "rho", "beta1", "beta2", "eps"):
            getattr(self, name).visible = name in used

    def _on_full_batch_change(self, *_: Any) -> None:
        self.batch_size.disabled = self.full_batch.value

    def _fill_defaults(self) -> None:
        """Start the form from the open session's settings, once per session."""
        session = self.state.session
        if session is None or id(session) == self._defaults_from:
            return
        first = self._defaults_from == 0
        self._defaults_from = id(session)
        if not first:
            return
        c = session.config
        self.epochs.value = c.epochs
        self.lr.value = c.lr
        self.full_batch.value = c.batch_size is None
        if c.batch_size is not None:
            self.batch_size.value = c.batch_size
        self.optimizer.value = c.optimizer
        for name in ("momentum", "rho", "beta1", "beta2", "eps", "l2"):
            getattr(self, name).value = getattr(c, name)
        self.seed.value = c.seed
        hidden = [layer.dropout for layer in session.spec.layers[:-1]]
        if hidden and len(set(hidden)) > 1:
            self.dropout.value = ", ".join(f"{r:g}" for r in hidden)
        else:
            self.dropout.value = f"{hidden[0] if hidden else 0.0:g}"

    def _base(self) -> tuple[NetworkSpec, Any]:
        """Return the network and the data the next run uses."""
        session = self.state.session
        spec = self.state.design or (session.spec if session else None)
        data = self.state.data or (session.dataset if session else None)
        if spec is None or data is None:
            msg = (
                "Nothing to train yet: build a network on tab 1 and choose a "
                "dataset on tab 2 (or open a session to reuse its own)."
            )
            raise ConfigError(msg)
        # Tab 1 makes the design follow a new dataset; this covers a design set
        # without it: the inputs come from the data and are no control here.
        fitted, note = fit_design(spec, data)
        if note and spec.n_in != data.n_features:
            self.state.design = spec = fitted
            self.fit_note.object += f"<p>{html.escape(note)}</p>"
        return spec, data

    def build_run(self) -> tuple[NetworkSpec, TrainingConfig, Any]:
        """Return the network, settings and data the form describes.

        Raises
        ------
        ConfigError
            If a setting is invalid or network, loss and data do not fit.
        """
        spec, data = self._base()
        self._update_loss_choice()
        config = self._form_config(self.loss.value)
        rates = parse_dropout(self.dropout.value, len(spec.layers) - 1)
        layers = [
            replace(layer, dropout=rate)
            for layer, rate in zip(spec.layers[:-1], rates, strict=True)
        ]
        spec = NetworkSpec(spec.n_in, (*layers, spec.layers[-1]), spec.initial_params)
        normalize_initial_values(self.state.initial_values, spec)
        return spec, config, data

    def _form_config(self, loss: str) -> TrainingConfig:
        """Return the training settings of the form, with ``loss``."""
        for w in (self.epochs, self.lr, self.seed, self.l2):
            if w.value is None:
                raise ConfigError(f"{w.name} is empty; enter a number.")
        if not self.full_batch.value and self.batch_size.value is None:
            raise ConfigError(
                "Batch size is empty; enter a whole number >= 1 or tick Full batch."
            )
        settings = {
            name: getattr(self, name).value
            for name in ("momentum", "rho", "beta1", "beta2", "eps")
        }
        for name, value in settings.items():
            if value is None:
                raise ConfigError(f"{name} is empty; enter a number.")
        batch = None if self.full_batch.value else self.batch_size.value
        return TrainingConfig(
            loss=loss,
            optimizer=self.optimizer.value,
            lr=float(self.lr.value),
            epochs=int(self.epochs.value),
            batch_size=None if batch is None else int(batch),
            seed=int(self.seed.value),
            l2=float(self.l2.value),
            **{k: float(v) for k, v in settings.items()},
        )

    def fork_changes(self) -> tuple[dict[str, Any], list[float] | None, dict]:
        """Return what the form changes for a fork of the open session.

        The settings that differ from the session's (among those a fork may
        change), the dropout rates if they differ, and the picked parameter
        with its new value if one is given.

        Raises
        ------
        ConfigError
            If a setting is invalid.
        """
        session = self.state.session
        if session is None:
            raise ConfigError("Open a session first: a fork continues an open run.")
        old = session.config
        form = self._form_config(old.loss)
        changes = {
            key: getattr(form, key)
            for key in FORK_SETTINGS
            if key != "train_metrics" and getattr(form, key) != getattr(old, key)
        }
        rates = [*parse_dropout(self.dropout.value, len(session.spec.layers) - 1), 0.0]
        dropout = rates if rates != [x.dropout for x in session.spec.layers] else None
        edits = {}
        if self.fork_value.value is not None:
            layer, name = (self.pick_layer.value or 1) - 1, self.pick_param.value
            i, j = ((v or 1) - 1 for v in (self.pick_i.value, self.pick_j.value))
            index = (i, j) if name == "W" else (j,)
            edits[(layer, name, index)] = float(self.fork_value.value)
        return changes, dropout, edits

    def fork_run(self) -> bool:
        """Fork the open run from the cursor's step; False (and a message) if not."""
        if self.busy():
            return False
        session, step = self.state.session, self.state.step
        try:
            changes, dropout, edits = self.fork_changes()
            assert session is not None
            title = self.run_title.value.strip()
            path = session_path(self.state.sessions_dir, f"{session.path.stem}-fork")
            job = ForkJob(
                session,
                step,
                path,
                changes=changes,
                dropout=dropout,
                edits=edits,
                title=title,
            )
        except (ConfigError, SessionError) as err:
            self._show_error(str(err))
            return False
        self.start_job(job)
        return True

    # -- running -------------------------------------------------------------

    def _on_fork_click(self, *_: Any) -> None:
        self.fork_run()

    def _on_train_click(self, *_: Any) -> None:
        self.start_run()

    def _on_stop_click(self, *_: Any) -> None:
        if self.job is not None:
            self.job.stop()
            self.progress.object = "<p>Stopping after the current step…</p>"

    def start_run(self) -> bool:
        """Check the form and start a recorded run; False (with a message) if not."""
        if self.busy():
            return False
        try:
            spec, config, data = self.build_run()
            title = self.run_title.value.strip()
            path = session_path(self.state.sessions_dir, title or data.name)
            job = TrainingJob(
                spec,
                config,
                data,
                path,
                title=title,
                description=self.description.value,
                initial_values=self.state.initial_values,
            )
        except (ConfigError, SessionError) as err:
            self._show_error(str(err))
            return False
        self.start_job(job)
        return True

    def busy(self) -> bool:
        """Return True (and say so) while a run is training."""
        if self.job is not None and not self.job.done:
            self._show_error(
                "A run is already training; press Stop or wait for it to end "
                "before starting another."
            )
            return True
        return False

    def start_job(self, job: TrainingJob) -> None:
        """Start ``job`` and follow it: open its file, show its progress."""
        self.message.object = ""
        self.job = job
        self._following = None
        job.start()
        self.train_button.disabled = True
        self.stop_button.disabled = False
        self.bar.max = max(job.total_steps, 1)
        self.bar.value = 0
        self.bar.visible = True
        self.progress.object = (
            f"<p>Training started: {job.total_steps} steps planned.</p>"
        )
        if self._poll is None:
            self._poll = pn.state.add_periodic_callback(self.poll, period=POLL_MS)

    def poll(self) -> None:
        """Follow the running job: open its file, grow the slider, show progress.

        Runs on the server thread (periodic callback), so it may update panes.
        """
        job = self.job
        if job is None:
            self._stop_polling()
            return
        done = job.done  # read first: all the run wrote is then readable below
        if self._following is None:
            self._try_open(job)
        elif self._is_following():
            try:
                self.state.refresh()
            except SessionError as err:
                self.message.object = _error(str(err))
        self._update_progress(job)
        self._update_curve()
        if done:
            if self._following is None and job.status != "failed":
                self._try_open(job)  # a run stopped before its first step has none
            self._finish(job)

    def _is_following(self) -> bool:
        session = self.state.session
        return session is not None and str(session.path) == self._following

    def _try_open(self, job: TrainingJob) -> None:
        if not job.path.exists():
            return
        try:
            session = Session(job.path)
        except SessionError:
            return  # the header is still being written; look again next tick
        if session.n_steps < 1:
            session.close()
            return
        old = self.state.session
        self.state.set_session(session)
        if old is not None:
            old.close()
        self._following = str(job.path)

    def _finish(self, job: TrainingJob) -> None:
        self._stop_polling()
        self.train_button.disabled = False
        self.stop_button.disabled = True
        if job.status == "failed":
            self._show_error(job.message)
        elif job.status == "diverged":
            session = self.state.session
            div = session.divergence if self._is_following() and session else None
            text = div.message if div is not None else "Training diverged."
            self._show_error(text)

    def _stop_polling(self) -> None:
        if self._poll is not None:
            self._poll.stop()
            self._poll = None

    def _on_session_destroyed(self, *_: Any) -> None:
        self._stop_polling()
        if self.job is not None:
            self.job.stop()

    def _show_error(self, text: str) -> None:
        self.message.object = _error(text)

    def _update_progress(self, job: TrainingJob) -> None:
        session = self.state.session if self._is_following() else None
        n = session.n_steps if session is not None else job.step
        parts = [f"Step {n} of {job.total_steps}"]
        if session is not None and n:
            spe = session.plan.steps_per_epoch
            at = session.config.start_step + n - 1  # a fork continues its parent's
            parts.append(f"epoch {at // spe + 1} of {session.config.epochs}")
            loss = self._last_loss(session)
            if loss is not None:
                parts.append(f"loss {explain.fmt(loss)}")
        status = job.status if job.done else "running"
        self.bar.value = min(n, self.bar.max)
        self.progress.object = (
            f"<p class='gn-progress'><b>{html.escape(status)}</b>: "
            f"{html.escape(', '.join(parts))}"
            f" — file {html.escape(job.path.name)}</p>"
        )

    def _update_family(self) -> None:
        """List the open run's parent, siblings and forks (once per session)."""
        session = self.state.session
        if session is self._family_of:
            return
        self._family_of = session
        folders = [self.state.sessions_dir]
        runs = family(session, folders) if session is not None else []
        options = {
            f"{how}: {title} ({path.name})": str(path) for path, title, how in runs
        }
        self.family.options = options
        if session is not None and options:
            self.family.value = str(session.path)
        self.family.visible = self.family_open.visible = len(runs) > 1

    def _on_family_open(self, *_: Any) -> None:
        target = self.family.value
        session = self.state.session
        if target and (session is None or target != str(session.path)):
            self.state.open(target)

    def _last_loss(self, session: Session) -> float | None:
        series = session.series()
        return float(series.loss[-1]) if len(series.loss) else None

    # -- the open session's views --------------------------------------------

    def _update(self) -> None:
        self._update_family()
        self._fill_defaults()
        self._update_loss_choice()
        self._update_curve()
        self.cursor_line.location = self.state.step
        self._follow_operation()
        self._update_gradients()
        self.array_download.update()
        self._update_expansion()

    def _follow_operation(self) -> None:
        """Pick the parameter whose update the cursor's operation is."""
        event = self.state.event
        if not isinstance(event, ev.ParametersUpdated):
            return
        self._syncing = True
        try:
            self.pick_layer.value = event.layer + 1
            self.pick_param.value = event.name
        finally:
            self._syncing = False

    def _update_loss_choice(self) -> None:
        session = self.state.session
        data = self.state.data or (session.dataset if session else None)
        # A new dataset picks its fitting loss; the user's choice stays otherwise.
        if data is not None and id(data) != self._loss_for:
            own = session is not None and data is session.dataset
            self._loss_for = id(data)
            self.loss.value = fitting_loss(data.task)
            notes = [f"Dataset {data.name} ({data.task}): loss {self.loss.value}."]
            size = self.batch_size.value
            if not self.full_batch.value and size is not None and size > data.n_train:
                self.full_batch.value = True
                notes.append(
                    f"Batch size {size} is more than its {data.n_train} training "
                    "rows: Full batch is ticked."
                )
            if not own:
                self.fit_note.object = f"<p>{html.escape(' '.join(notes))}</p>"

    def _update_curve(self) -> None:
        session = self.state.session
        if session is None:
            return
        key = (id(session), session.n_steps)
        if key == self._curve_key:
            return
        series = session.series()
        x, y = series.step, series.loss
        shown = len(self.curve_source.data["step"])
        same_run = key[0] == self._curve_key[0]
        if same_run and len(x) <= MAX_CURVE_POINTS and 0 < shown <= len(x):
            if len(x) > shown:
                self.curve_source.stream(
                    {"step": x[shown:].tolist(), "loss": y[shown:].tolist()}
                )
        else:
            xs, ys = decimate(x, y, MAX_CURVE_POINTS)
            self.curve_source.data = {"step": xs.tolist(), "loss": ys.tolist()}
        self._curve_key = key

    def _update_gradients(self) -> None:
        grads = [
            e
            for e in self.state.events_of(ev.GradientComputed)
            if e.name in ("dW", "db")
        ]
        if not grads:
            self.gradients.object = "<p>No gradients in this step.</p>"
            return
        by_layer: dict[int, dict[str, np.ndarray]] = {}
        for e in grads:
            by_layer.setdefault(e.layer, {})[e.name] = e.value
        event = self.state.event
        now = event.layer if isinstance(event, ev.GradientComputed) else None
        blocks = []
        for layer in sorted(by_layer):
            g = by_layer[layer]
            dW, db = g.get("dW"), g.get("db")
            if dW is None or db is None:
                continue
            grid = heat_grid(dW, db, selected=None, highlight=layer == now)
            blocks.append(
                f"<h4>Layer {layer + 1} (W {dW.shape[0]} x {dW.shape[1]}): "
                f"|dW| = {explain.fmt(_norm(dW))}, |db| = {explain.fmt(_norm(db))}"
                f'</h4><div class="gn-scroll">{grid}</div>'
            )
        self.gradients.object = "".join(blocks)

    def _on_pick_change(self, *_: Any) -> None:
        if self.visible and not self._syncing:
            self._update_expansion()

    def _update_expansion(self) -> None:
        updates = self.state.events_of(ev.ParametersUpdated)
        session = self.state.session
        if not updates or session is None:
            self.update_pane.object = "<p>No parameter update in this step.</p>"
            return
        shown = self.pick_layer.value or 1
        layer, name = shown - 1, self.pick_param.value
        event = next((u for u in updates if u.layer == layer and u.name == name), None)
        if event is None:
            self.update_pane.object = _error(
                f"Layer {shown} does not exist; choose 1 to {len(updates) // 2}."
            )
            return
        picked = (self.pick_i.value, self.pick_j.value)
        i, j = (0 if v is None else v - 1 for v in picked)
        index = (i, j) if name == "W" else (j,)
        if any(not 0 <= k < n for k, n in zip(index, event.before.shape, strict=True)):
            shape = event.before.shape
            where = (
                f"i from 1 to {shape[0]} and j from 1 to {shape[1]}"
                if name == "W"
                else f"j from 1 to {shape[0]}"
            )
            self.update_pane.object = _error(
                f"{name} of layer {shown} has shape {shape}; choose {where}."
            )
            return
        previous = None
        if session.config.optimizer not in ("gd", "sgd"):
            try:
                before = session.state_before(self.state.step)
                previous = {
                    k: float(v[index]) for k, v in before.opt_state[layer][name].items()
                }
            except SessionError:
                previous = None
        expansion = expand_update(event, index, session.config, previous)
        self.update_pane.object = f"<pre>{html.escape(str(expansion))}</pre>"


def _norm(a: np.ndarray) -> float:
    return float(math.sqrt(float(np.sum(np.asarray(a, dtype=np.float64) ** 2))))


def _error(text: str) -> str:
    return f'<p class="gn-error">{html.escape(text)}</p>'
