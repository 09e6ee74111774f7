"""Describe a fully connected network and compute its forward and backward passes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine._types import Array
from engine.activations import Activation, get_activation
from engine.errors import ConfigError
from engine.initializers import default_initializer, get_initializer
from engine.losses import Loss

__all__ = ["LayerSpec", "NetworkSpec", "Params", "Trace", "backward", "forward"]

MAX_PARAMS = 10_000_000
"""The most weights and biases a network may have (a session file holds them all)."""

Params = list[dict[str, Array]]
"""Per-layer parameters: ``params[l] = {"W": (n_in, n_out), "b": (n_out,)}``."""


@dataclass(frozen=True)
class LayerSpec:
    """Describe one dense layer.

    Parameters
    ----------
    n_out : int
        Number of units.
    activation : str
        Registry name of the activation (``"linear"`` means identity).
    initializer : str or None
        Registry name of the weight initializer; None picks He for (leaky)
        ReLU and Xavier otherwise.
    init_scale : float or None
        Bound of ``uniform`` or standard deviation of ``normal``.
    dropout : float
        Probability of dropping each unit of this layer while training
        (inverted dropout); 0 turns it off.  Not allowed on the output layer.
    """

    n_out: int
    activation: str = "relu"
    initializer: str | None = None
    init_scale: float | None = None
    dropout: float = 0.0

    @property
    def initializer_name(self) -> str:
        """Return the initializer used, resolving the default."""
        if self.initializer is None:
            return default_initializer(get_activation(self.activation).name)
        return self.initializer

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready fields."""
        return {
            "n_out": self.n_out,
            "activation": self.activation,
            "initializer": self.initializer,
            "init_scale": self.init_scale,
            "dropout": self.dropout,
        }


@dataclass(frozen=True)
class NetworkSpec:
    """Describe a whole network: input width, layers, optional starting values.

    Parameters
    ----------
    n_in : int
        Number of input features.
    layers : tuple of LayerSpec
        Hidden layers then the output layer; one layer alone is logistic or
        linear regression.
    initial_params : list of dict or None
        Starting ``{"W", "b"}`` per layer, set by hand instead of drawn.

    Raises
    ------
    ConfigError
        For an impossible network; the message names the layer and the fix.
    """

    n_in: int
    layers: tuple[LayerSpec, ...]
    initial_params: list[dict[str, Any]] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.layers, str | bytes) or not hasattr(self.layers, "__iter__"):
            msg = f"layers must be a sequence of LayerSpec; got {self.layers!r}."
            raise ConfigError(msg)
        object.__setattr__(self, "layers", tuple(self.layers))
        _check_whole_number("n_in (the number of input features)", self.n_in)
        if not self.layers:
            msg = "A network needs at least an output layer; layers is empty."
            raise ConfigError(msg)
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, LayerSpec):
                msg = f"layers[{i}] must be a LayerSpec; got {layer!r}."
                raise ConfigError(msg)
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            where = "The output layer" if i == last else f"Hidden layer {i + 1}"
            if (
                not isinstance(layer.n_out, int | np.integer)
                or isinstance(layer.n_out, bool)
                or layer.n_out < 1
            ):
                msg = (
                    f"{where} has {layer.n_out!r} units. Remove the layer or give it "
                    "at least 1 unit."
                )
                raise ConfigError(msg)
            act = get_activation(layer.activation)
            get_initializer(layer.initializer_name, layer.init_scale)
            if (
                not isinstance(layer.dropout, int | float | np.floating)
                or isinstance(layer.dropout, bool)
                or not 0.0 <= layer.dropout < 1.0
            ):
                msg = (
                    f"{where} has dropout {layer.dropout!r}; it is the probability "
                    "of dropping a unit and must be in [0, 1)."
                )
                raise ConfigError(msg)
            if i == last and layer.dropout:
                msg = (
                    "Dropout on the output layer would drop predictions; "
                    "use it on hidden layers only."
                )
                raise ConfigError(msg)
            if act.name == "softmax" and layer.n_out < 2:
                msg = (
                    f"{where} uses softmax with 1 unit, which always outputs 1. "
                    "Use sigmoid for one output, or give softmax one unit per class."
                )
                raise ConfigError(msg)
        if self.n_params > MAX_PARAMS:
            msg = (
                f"The network has {self.n_params:,} weights and biases (sizes "
                f"{'-'.join(map(str, self.sizes))}); glassnet records every one of "
                f"them and allows at most {MAX_PARAMS:,}. Use fewer or smaller layers."
            )
            raise ConfigError(msg)
        if self.initial_params is not None:
            object.__setattr__(
                self, "initial_params", _check_params(self, self.initial_params)
            )

    @property
    def sizes(self) -> tuple[int, ...]:
        """Return the widths from input to output, e.g. (2, 8, 8, 1)."""
        return (self.n_in, *(layer.n_out for layer in self.layers))

    @property
    def n_params(self) -> int:
        """Return the number of weights and biases."""
        s = self.sizes
        return sum(s[i] * s[i + 1] + s[i + 1] for i in range(len(s) - 1))

    def activations(self) -> list[Activation]:
        """Return one fresh activation object per layer."""
        return [get_activation(layer.activation) for layer in self.layers]

    def init_params(self, rng: np.random.Generator) -> Params:
        """Return the starting parameters: given by hand, or drawn with ``rng``."""
        if self.initial_params is not None:
            return [
                {"W": p["W"].copy(), "b": p["b"].copy()} for p in self.initial_params
            ]
        sizes = self.sizes
        params: Params = []
        for i, layer in enumerate(self.layers):
            init = get_initializer(layer.initializer_name, layer.init_scale)
            W = init.sample(sizes[i], sizes[i + 1], rng)
            params.append({"W": W, "b": np.zeros(sizes[i + 1])})
        return params

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready description (hand-set values as nested lists)."""
        out: dict[str, Any] = {
            "n_in": self.n_in,
            "layers": [layer.to_dict() for layer in self.layers],
        }
        if self.initial_params is not None:
            out["initial_params"] = [
                {"W": p["W"].tolist(), "b": p["b"].tolist()}
                for p in self.initial_params
            ]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NetworkSpec:
        """Rebuild a spec from :meth:`to_dict` output (validated again)."""
        try:
            layers = tuple(LayerSpec(**layer) for layer in data["layers"])
            # n_in as stored: a text or a fraction is refused, not rounded.
            return cls(data["n_in"], layers, data.get("initial_params"))
        except (KeyError, TypeError) as err:
            msg = f"Not a valid network description: {err}."
            raise ConfigError(msg) from err


@dataclass
class Trace:
    """Hold every intermediate array of one forward (and backward) pass.

    Lists are indexed by layer.  ``a_prev[l]`` is the input of layer ``l``
    (``X`` for ``l = 0``); ``a_act[l]`` is ``g(z[l])`` before dropout and
    ``a[l]`` after it (the same array without dropout); ``masks[l]`` is the
    boolean keep-mask or None.  ``grads`` lists ``(layer, name, value)`` in the
    order the backward pass computed them, and ``param_grads[l]`` the ``dW``
    and ``db`` of layer ``l`` among them as ``{"W": dW, "b": db}``.
    ``out_parts`` holds what the output activation's ``forward_parts`` gave
    besides ``a`` (for a fused loss).
    """

    a_prev: list[Array]
    z: list[Array]
    a_act: list[Array]
    a: list[Array]
    masks: list[np.ndarray | None]
    grads: list[tuple[int | None, str, Array]] = field(default_factory=list)
    param_grads: list[dict[str, Array]] = field(default_factory=list)
    out_parts: tuple[Array, Array] | None = None

    @property
    def y_hat(self) -> Array:
        """Return the network output, shape (batch_size, n_outputs)."""
        return self.a[-1]


def forward(
    params: Params,
    X: Array,
    activations: list[Activation],
    keep_probs: list[float] | None = None,
    rng: np.random.Generator | None = None,
) -> Trace:
    """Run the forward pass, drawing dropout masks with ``rng`` when training.

    Parameters
    ----------
    params : list of dict
        ``{"W": (n_in, n_out), "b": (n_out,)}`` per layer.
    X : ndarray of shape (batch_size, n_features)
    activations : list of Activation
        One per layer.
    keep_probs : list of float or None
        Per-layer probability of keeping a unit; None (or all 1) means no
        dropout, which is what prediction and evaluation use.
    rng : numpy.random.Generator or None
        Draws the masks; needed only when some keep probability is below 1.
    """
    tr = Trace([], [], [], [], [])
    a = X
    last = len(params) - 1
    for i, (p, act) in enumerate(zip(params, activations, strict=True)):
        tr.a_prev.append(a)
        z = _weighted_sum(a, p["W"], p["b"])
        if i == last:
            a, tr.out_parts = act.forward_parts(z)
        else:
            a = act.forward(z)
        tr.z.append(z)
        tr.a_act.append(a)
        mask = None
        if keep_probs is not None and keep_probs[i] < 1.0:
            assert rng is not None
            mask = rng.random(a.shape) < keep_probs[i]
            a = a * mask / keep_probs[i]
        tr.masks.append(mask)
        tr.a.append(a)
    return tr


_BLOCK_WORK = 1 << 18
"""Largest rows x n_in x n_out multiplied in one call (see ``_weighted_sum``)."""


def _weighted_sum(a: Array, W: Array, b: Array) -> Array:
    """Return ``a @ W + b``, multiplying at most ``_BLOCK_WORK`` row-products at once.

    OpenBLAS runs a product of ``2**18`` or more multiply-adds on all its
    threads, whose workers then spin for a while; on a busy machine they take
    the CPU from the next steps (a whole-set evaluation after each epoch made
    training 3x slower).  Blocks of rows stay on one thread.  Every caller (a
    training step, an evaluation, a replay) goes through here, so the same
    rows always get the same blocks and the same bits.
    """
    n = a.shape[0]
    # One block: fewer than _BLOCK_WORK products, or a single row.
    if n * W.size < _BLOCK_WORK or n == 1:
        # The sum added in place: the same numbers, one array fewer.
        z = np.matmul(a, W)
        z += b
        return z
    rows = max(1, (_BLOCK_WORK - 1) // W.size)
    z = np.empty((n, W.shape[1]), dtype=np.result_type(a, W))
    for start in range(0, n, rows):
        np.matmul(a[start : start + rows], W, out=z[start : start + rows])
    z += b
    return z


def backward(
    tr: Trace,
    params: Params,
    y: Array,
    activations: list[Activation],
    loss: Loss,
    keep_probs: list[float] | None = None,
    l2: float = 0.0,
    fused: bool = False,
    dy_hat_wanted: bool = True,
) -> Trace:
    """Run the backward pass on a forward trace, appending to ``tr.grads``.

    ``dW`` includes the L2 term ``l2 * W``.  With ``fused`` the output layer's
    ``dz`` is ``(y_hat - y) / n`` instead of going through ``dy_hat`` and the
    activation's backward rule; ``dy_hat`` is then only computed (and listed)
    if ``dy_hat_wanted``.
    """
    grads = tr.grads
    n_layers = len(params)
    param_grads: Params = [{}] * n_layers  # each replaced below
    tr.param_grads = param_grads
    da = tr.y_hat  # replaced before use unless fused
    if dy_hat_wanted or not fused or tr.masks[-1] is not None:
        da = loss.backward(tr.y_hat, y)
        grads.append((None, "dy_hat", da))
    for i in range(n_layers - 1, -1, -1):
        mask = tr.masks[i]
        if mask is not None:
            assert keep_probs is not None
            grads.append((i, "da", da))
            da = da * mask / keep_probs[i]
        if fused and i == n_layers - 1:
            # NOTE: for sigmoid + binary cross-entropy and softmax + categorical
            # cross-entropy the chain rule collapses to dz = (y_hat - y) / n
            # (divided by every output for the element-wise binary loss).
            scale = y.size if loss.name == "binary_cross_entropy" else y.shape[0]
            dz = np.subtract(tr.y_hat, y)
            dz /= scale
        else:
            dz = activations[i].backward(tr.z[i], tr.a_act[i], da)
        grads.append((i, "dz", dz))
        W = params[i]["W"]
        dW = tr.a_prev[i].T @ dz
        if l2:
            dW = dW + l2 * W
        db = np.add.reduce(dz, axis=0)
        grads.append((i, "dW", dW))
        grads.append((i, "db", db))
        param_grads[i] = {"W": dW, "b": db}
        if i > 0:
            da = dz @ W.T
            grads.append((i, "da_prev", da))
    return tr


def _check_whole_number(what: str, value: Any) -> None:
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
        msg = f"{what} must be a whole number >= 1; got {value!r}."
        raise ConfigError(msg)


def _check_params(spec: NetworkSpec, given: list[dict[str, Any]]) -> Params:
    """Return hand-set parameters as float arrays after checking their shapes."""
    sizes = spec.sizes
    if len(given) != len(spec.layers):
        msg = (
            f"initial_params has {len(given)} layer{'' if len(given) == 1 else 's'} "
            f"but the network has {len(spec.layers)}; give W and b for every layer."
        )
        raise ConfigError(msg)
    out: Params = []
    for i, p in enumerate(given):
        try:
            if any(np.iscomplexobj(p[key]) for key in ("W", "b")):
                raise TypeError("complex numbers are not weights")
            W = np.array(p["W"], dtype=np.float64)
            b = np.array(p["b"], dtype=np.float64)
        except (KeyError, TypeError, ValueError) as err:
            msg = f"initial_params[{i}] must hold numeric 'W' and 'b': {err}."
            raise ConfigError(msg) from err
        for key, arr, shape in (
            ("W", W, (sizes[i], sizes[i + 1])),
            ("b", b, (sizes[i + 1],)),
        ):
            if arr.shape != shape:
                msg = (
                    f"initial_params[{i}][{key!r}] has shape {arr.shape}; layer {i} "
                    f"needs {shape}."
                )
                raise ConfigError(msg)
            if not np.isfinite(arr).all():
                msg = f"initial_params[{i}][{key!r}] holds a non-finite value."
                raise ConfigError(msg)
        out.append({"W": W, "b": b})
    return out
