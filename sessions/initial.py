"""Initial values set by hand: check them, apply them, keep them in the meta."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from engine.errors import ConfigError
from engine.network import NetworkSpec, Params

__all__ = [
    "InitialValue",
    "apply_initial_values",
    "initial_values_from_meta",
    "normalize_initial_values",
    "to_meta",
]

InitialValue = tuple[int, str, tuple[int, ...], float]
"""One hand-set value: ``(layer, "W" or "b", index, value)``."""


def normalize_initial_values(
    values: Mapping[Any, Any] | Iterable[Any] | None, spec: NetworkSpec
) -> list[InitialValue]:
    """Return hand-set values as checked ``(layer, name, index, value)`` tuples.

    ``values`` is a mapping ``{(layer, "W" or "b", index): value}`` (the app's
    ``initial_values``) or a list of ``{"layer", "param", "index", "value"}``
    dicts (the ``initial_values`` meta key).  ``index`` is ``(i, j)`` for ``W``
    and ``i`` or ``(i,)`` for ``b``.

    Raises
    ------
    ConfigError
        If a layer, name or index does not exist in ``spec`` or a value is not
        a finite number.
    """
    if not values:
        return []
    if isinstance(values, Mapping):
        items = [(*_key(key), value) for key, value in values.items()]
    else:
        items = []
        for entry in values:
            try:
                items.append(
                    (entry["layer"], entry["param"], entry["index"], entry["value"])
                )
            except (KeyError, TypeError) as err:
                msg = (
                    f"A hand-set initial value must hold layer, param, index and "
                    f"value; got {entry!r}."
                )
                raise ConfigError(msg) from err
    sizes = spec.sizes
    out: list[InitialValue] = []
    for layer, name, index, value in items:
        if not isinstance(layer, int | np.integer) or not 0 <= layer < len(spec.layers):
            msg = (
                f"Hand-set initial value for layer {layer!r}: the network has "
                f"layers 0 to {len(spec.layers) - 1}."
            )
            raise ConfigError(msg)
        layer = int(layer)
        if name not in ("W", "b"):
            msg = f"Hand-set initial value names {name!r}; use 'W' or 'b'."
            raise ConfigError(msg)
        shape = (sizes[layer], sizes[layer + 1]) if name == "W" else (sizes[layer + 1],)
        idx = tuple(int(i) for i in np.atleast_1d(np.asarray(index, dtype=np.int64)))
        if len(idx) != len(shape) or not all(
            0 <= i < n for i, n in zip(idx, shape, strict=True)
        ):
            msg = (
                f"Hand-set initial value {name}[{layer}]{list(idx)} is outside "
                f"its shape {shape}; use an index inside it."
            )
            raise ConfigError(msg)
        try:
            number = float(value)
        except (TypeError, ValueError) as err:
            msg = f"Hand-set initial value {name}[{layer}]{list(idx)} is {value!r}, "
            raise ConfigError(msg + "not a number.") from err
        if not math.isfinite(number):
            msg = f"Hand-set initial value {name}[{layer}]{list(idx)} must be finite."
            raise ConfigError(msg)
        out.append((layer, name, idx, number))
    return out


def apply_initial_values(params: Params, values: list[InitialValue]) -> Params:
    """Return ``params`` with the hand-set values written over the drawn ones.

    The arrays given are never changed; changed layers get new arrays.
    """
    out: Params = [dict(p) for p in params]
    for layer, name, index, value in values:
        if out[layer][name] is params[layer][name]:
            out[layer][name] = params[layer][name].copy()
        out[layer][name][index] = value
    return out


def to_meta(values: list[InitialValue]) -> list[dict[str, Any]]:
    """Return the JSON-ready ``initial_values`` meta entry."""
    return [
        {"layer": layer, "param": name, "index": list(index), "value": value}
        for layer, name, index, value in values
    ]


def initial_values_from_meta(
    meta: Mapping[str, Any], spec: NetworkSpec
) -> list[InitialValue]:
    """Return the hand-set values a session's meta records (none for old files)."""
    return normalize_initial_values(meta.get("initial_values"), spec)


def _key(key: Any) -> tuple[Any, Any, Any]:
    try:
        layer, name, index = key
    except (TypeError, ValueError) as err:
        msg = (
            f"A hand-set initial value is keyed {key!r}; use "
            "(layer, 'W' or 'b', index)."
        )
        raise ConfigError(msg) from err
    return layer, name, index
