"""Turn trainer states, step summaries and small events into stored bytes and back."""

from __future__ import annotations

import dataclasses
import struct
import sys
from typing import Any

import numpy as np

from engine import events as ev
from engine.network import NetworkSpec
from engine.trainer import TrainerState
from sessions.codec import decode_bundle, encode_bundle, from_json, to_json
from sessions.errors import SessionFormatError

__all__ = [
    "KeyframeEncoder",
    "decode_event",
    "decode_state",
    "decode_summary",
    "encode_event",
    "encode_state",
    "encode_summary",
]


def encode_state(state: TrainerState, state_names: tuple[str, ...]) -> bytes:
    """Return a keyframe: the parameters, optimizer state and dropout generator.

    Arrays are named ``W0``, ``b0`` (parameters of layer 0) and ``W0.m``,
    ``b0.m`` (optimizer state ``m`` of them); only ``state_names`` are kept,
    since Adam's ``m_hat`` and ``v_hat`` follow from ``m`` and ``v``.
    """
    return encode_bundle(_state_arrays(state, state_names), _state_extra(state))


class KeyframeEncoder:
    """Encode the keyframes of one run: :func:`encode_state`'s bytes, faster.

    Every keyframe of a run holds arrays of the same names, shapes and
    dtypes, so the JSON describing them is written once; each keyframe then
    only writes its ``extra`` and copies its arrays.  A state whose arrays
    differ from the first one's is encoded the slow way.
    """

    def __init__(self, state_names: tuple[str, ...]) -> None:
        self.state_names = state_names
        self._layout: list[tuple[int, ...]] | None = None
        self._prefix = ""

    def encode(self, state: TrainerState) -> bytes:
        """Return the keyframe of ``state``."""
        arrays = list(_state_arrays(state, self.state_names).values())
        layout = [a.shape for a in arrays]
        fast = _LITTLE and all(a.dtype == np.float64 for a in arrays)
        if not fast or (self._layout is not None and layout != self._layout):
            return encode_state(state, self.state_names)
        if self._layout is None:
            full = encode_state(state, self.state_names)
            (n,) = struct.unpack_from("<I", full)
            text = full[4 : 4 + n].decode()
            # The header is {"arrays":[...],"extra":EXTRA}: keep what precedes EXTRA.
            self._prefix = text[: text.rindex(',"extra":') + len(',"extra":')]
            self._layout = layout
            return full
        header = (self._prefix + to_json(_state_extra(state)) + "}").encode()
        return b"".join(
            [struct.pack("<I", len(header)), header, *(a.tobytes() for a in arrays)]
        )


_LITTLE = sys.byteorder == "little"


def _state_arrays(
    state: TrainerState, state_names: tuple[str, ...]
) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    for i, (p, s) in enumerate(zip(state.params, state.opt_state, strict=True)):
        for name in ("W", "b"):
            arrays[f"{name}{i}"] = p[name]
            for key in state_names:
                arrays[f"{name}{i}.{key}"] = s[name][key]
    return arrays


def _state_extra(state: TrainerState) -> dict[str, Any]:
    extra: dict[str, Any] = {
        "step": state.step,
        "seq": state.seq,
        "dropout_rng": state.dropout_rng,
    }
    if state.epoch_sums is not None:
        extra["epoch_sums"] = list(state.epoch_sums)
    return extra


def decode_state(
    blob: object,
    spec: NetworkSpec,
    state_names: tuple[str, ...],
    what: str,
    epoch_sums: bool = False,
) -> TrainerState:
    """Return the trainer state stored in a keyframe of a run of ``spec``.

    ``epoch_sums`` says the keyframe must hold the epoch's running sums (a
    run whose training metrics come from its batches).

    Raises
    ------
    SessionFormatError
        If the keyframe lacks an array, holds one of the wrong shape, or its
        step, event number, dropout generator state or epoch sums are
        unreadable.
    """
    sizes = spec.sizes
    expected: dict[str, tuple[int, ...]] = {}
    for i in range(len(spec.layers)):
        for name, shape in (("W", (sizes[i], sizes[i + 1])), ("b", (sizes[i + 1],))):
            expected[f"{name}{i}"] = shape
            for key in state_names:
                expected[f"{name}{i}.{key}"] = shape
    arrays, extra = decode_bundle(blob, what, expected)
    n_layers = len(spec.layers)
    try:
        params = [{k: arrays[f"{k}{i}"] for k in ("W", "b")} for i in range(n_layers)]
        opt_state = [
            {
                k: {key: arrays[f"{k}{i}.{key}"] for key in state_names}
                for k in ("W", "b")
            }
            for i in range(n_layers)
        ]
        rng = extra["dropout_rng"]
        if not _is_pcg64_state(rng):
            raise KeyError("dropout_rng")
        step, seq = extra["step"], extra["seq"]
        if type(step) is not int or type(seq) is not int or step < 0 or seq < 0:
            raise KeyError("step")
        sums = None
        if epoch_sums:
            loss, hits = extra["epoch_sums"]
            if type(loss) is not float or type(hits) is not int or hits < 0:
                raise KeyError("epoch_sums")
            sums = (loss, hits)
        return TrainerState(
            step=step,
            seq=seq,
            params=params,
            opt_state=opt_state,
            dropout_rng=rng,
            epoch_sums=sums,
        )
    except (KeyError, TypeError, ValueError) as err:
        msg = f"{what} is incomplete (missing {err}): the file is damaged."
        raise SessionFormatError(msg) from err


def _is_pcg64_state(value: Any) -> bool:
    """Return True for the state dict of NumPy's PCG64 generator, and only that."""
    if not isinstance(value, dict) or value.get("bit_generator") != "PCG64":
        return False
    inner = value.get("state")
    return (
        isinstance(inner, dict)
        and all(
            type(inner.get(k)) is int and 0 <= inner[k] < 1 << 128
            for k in ("state", "inc")
        )
        and value.get("has_uint32") in (0, 1)
        and type(value.get("uinteger")) is int
        and 0 <= value["uinteger"] < 1 << 32
    )


def encode_summary(
    loss: float,
    data_loss: float,
    grad_norms: tuple[float, ...],
    update_ratios: tuple[float, ...],
) -> bytes:
    """Return a step summary as little-endian float64s.

    Layout: ``[loss, data_loss, grad_norm_0 .. grad_norm_{L-1},
    update_ratio_0 .. update_ratio_{L-1}]``.
    """
    n = 2 + len(grad_norms) + len(update_ratios)
    layout = _SUMMARIES.get(n)
    if layout is None:
        layout = _SUMMARIES.setdefault(n, struct.Struct(f"<{n}d"))
    return layout.pack(loss, data_loss, *grad_norms, *update_ratios)


# Compiled layouts of step summaries by their number of values (a few at most).
_SUMMARIES: dict[int, struct.Struct] = {}


def decode_summary(blob: bytes, n_layers: int) -> np.ndarray:
    """Return a step summary as a float64 array of length ``2 + 2 * n_layers``."""
    if len(blob) != 8 * (2 + 2 * n_layers):
        msg = (
            f"A step summary has {len(blob)} bytes; expected {8 * (2 + 2 * n_layers)}."
        )
        raise SessionFormatError(msg)
    return np.frombuffer(blob, dtype="<f8")


def encode_event(event: ev.Event) -> str:
    """Return a small, array-free event (session end, divergence) as JSON."""
    fields = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
    return to_json({"kind": event.kind, **fields})


def decode_event(text: str, what: str) -> ev.Event:
    """Rebuild an event stored by :func:`encode_event`.

    Raises
    ------
    SessionFormatError
        For an unknown kind or fields that do not match it.
    """
    try:
        data: dict[str, Any] = from_json(text)
        cls = ev.EVENT_TYPES[data.pop("kind")]
        if cls not in (ev.SessionEnded, ev.TrainingDiverged):
            raise KeyError(data.get("kind"))
        if cls is ev.TrainingDiverged:
            data["index"] = tuple(int(i) for i in data["index"])
        return cls(**data)
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        msg = f"{what} is not a valid stored event ({err})."
        raise SessionFormatError(msg) from err
