"""Encode arrays and plain values to bytes and back, refusing anything hostile.

A *bundle* is how a session file stores a group of arrays (a dataset, a
keyframe): a 4-byte little-endian header length, a UTF-8 JSON header, then the
raw little-endian array bytes one after another.  The header is

    {"arrays": [{"name": "W0", "dtype": "<f8", "shape": [2, 8], "offset": 0}, ...],
     "extra": {...any JSON...}}

so ``np.frombuffer(blob, dtype, count, offset=4 + header_len + offset)`` reads an
array without glassnet.  Nothing is unpickled or evaluated; dtypes come from a
short allow-list and every size is checked before memory is allocated.
"""

from __future__ import annotations

import json
import math
import struct
import sys
from typing import Any

import numpy as np

from sessions.errors import SessionFormatError

__all__ = ["MAX_ARRAY_BYTES", "decode_bundle", "encode_bundle", "from_json", "to_json"]

MAX_ARRAY_BYTES = 1 << 30
"""The largest array a session may declare (1 GiB); larger is refused unread."""

_MAX_HEADER_BYTES = 16 << 20
_MAX_DIMS = 8
_DTYPES = {"<f8": np.float64, "<i8": np.int64, "|b1": np.bool_}
_KINDS = {
    np.dtype(np.float64): "<f8",
    np.dtype(np.int64): "<i8",
    np.dtype(np.bool_): "|b1",
}


def encode_bundle(arrays: dict[str, np.ndarray], extra: Any = None) -> bytes:
    """Return the bytes of a bundle holding ``arrays`` and the JSON value ``extra``."""
    entries = []
    chunks = []
    offset = 0
    for name, arr in arrays.items():
        arr = np.asarray(arr)
        if arr.dtype not in _KINDS:
            arr = arr.astype(np.int64 if arr.dtype.kind in "iu" else np.float64)
        if arr.dtype.byteorder in "<|" or (
            arr.dtype.byteorder == "=" and sys.byteorder == "little"
        ):
            raw = arr.tobytes(order="C")  # already little-endian: one copy
        else:
            raw = arr.astype(arr.dtype.newbyteorder("<")).tobytes(order="C")
        entries.append(
            {
                "name": name,
                "dtype": _KINDS[arr.dtype],
                "shape": list(arr.shape),
                "offset": offset,
            }
        )
        chunks.append(raw)
        offset += len(raw)
    header = to_json({"arrays": entries, "extra": extra}).encode()
    return struct.pack("<I", len(header)) + header + b"".join(chunks)


def decode_bundle(
    blob: object,
    what: str,
    expected: dict[str, tuple[int, ...]] | None = None,
) -> tuple[dict[str, np.ndarray], Any]:
    """Return the arrays and extra value of a bundle; ``what`` names it in errors.

    ``expected`` maps every array name the bundle must hold, and nothing else,
    to its shape; those arrays must also be float64.

    Raises
    ------
    SessionFormatError
        If the blob is not bytes or is truncated, its header is not valid JSON,
        it declares an unknown dtype, an impossible shape, an array twice, an
        array that does not fit, or arrays other than ``expected``.
    """
    if not isinstance(blob, bytes):
        raise SessionFormatError(
            f"{what} is stored as {type(blob).__name__}, not bytes."
        )
    if len(blob) < 4:
        raise SessionFormatError(f"{what} is truncated: {len(blob)} bytes.")
    (n_header,) = struct.unpack_from("<I", blob)
    if n_header > min(_MAX_HEADER_BYTES, len(blob) - 4):
        raise SessionFormatError(
            f"{what} declares a {n_header}-byte header but holds {len(blob)} bytes."
        )
    try:
        header = from_json(blob[4 : 4 + n_header].decode())
        entries = header["arrays"]
        extra = header.get("extra")
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise SessionFormatError(f"{what} has an unreadable header: {err}.") from err
    if not isinstance(entries, list):
        raise SessionFormatError(f"{what} has an unreadable header: no array list.")
    data = memoryview(blob)[4 + n_header :]
    arrays = {}
    for entry in entries:
        name = _entry_name(entry, what)
        if name in arrays:
            raise SessionFormatError(f"{what} holds the array {name!r} twice.")
        arrays[name] = _read_array(entry, data, what)
    if expected is not None:
        _check_expected(arrays, expected, what)
    return arrays, extra


def _check_expected(
    arrays: dict[str, np.ndarray], expected: dict[str, tuple[int, ...]], what: str
) -> None:
    missing = sorted(set(expected) - set(arrays))
    extra = sorted(set(arrays) - set(expected))
    if missing or extra:
        msg = (
            f"{what} does not fit the network: it lacks {missing or 'nothing'} and "
            f"has {extra or 'nothing'} besides."
        )
        raise SessionFormatError(msg)
    for name, shape in expected.items():
        arr = arrays[name]
        if arr.shape != shape or arr.dtype != np.float64:
            msg = (
                f"{what}: array {name!r} is {arr.dtype} of shape {arr.shape}; the "
                f"recorded network needs float64 of shape {shape}."
            )
            raise SessionFormatError(msg)


def to_json(value: Any) -> str:
    """Return compact JSON; non-finite floats are written as NaN / Infinity."""
    return _ENCODER.encode(value)


def from_json(text: str) -> Any:
    """Parse JSON written by :func:`to_json` (only plain JSON values come back).

    Raises
    ------
    ValueError
        For text that is not JSON, or nests deeper than Python can parse (the
        error is then a :class:`SessionFormatError`).
    """
    try:
        return json.loads(text)
    except RecursionError:
        raise SessionFormatError("A stored JSON value is nested too deeply.") from None


def check_shape(shape: Any, itemsize: int, what: str) -> tuple[int, ...]:
    """Return ``shape`` as a tuple after checking it declares a sane size."""
    if (
        not isinstance(shape, list)
        or len(shape) > _MAX_DIMS
        or not all(
            isinstance(n, int) and not isinstance(n, bool) and 0 <= n for n in shape
        )
    ):
        raise SessionFormatError(f"{what} declares an invalid shape {shape!r}.")
    size = math.prod(shape) * itemsize
    if size > MAX_ARRAY_BYTES:
        raise SessionFormatError(
            f"{what} declares an array of shape {tuple(shape)} ({size} bytes); "
            f"glassnet refuses arrays above {MAX_ARRAY_BYTES} bytes."
        )
    return tuple(shape)


def _entry_name(entry: Any, what: str) -> str:
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise SessionFormatError(f"{what} has an array entry without a name.")
    return str(entry["name"])


def _read_array(entry: dict[str, Any], data: memoryview, what: str) -> np.ndarray:
    where = f"{what}, array {entry['name']!r}"
    name = entry.get("dtype")
    # A dtype that is not text (a list, a dict) is unknown, not unhashable.
    dtype = _DTYPES.get(name) if isinstance(name, str) else None
    if dtype is None:
        raise SessionFormatError(
            f"{where} has dtype {entry.get('dtype')!r}; only {sorted(_DTYPES)} "
            "are allowed."
        )
    itemsize = np.dtype(dtype).itemsize
    shape = check_shape(entry.get("shape"), itemsize, where)
    offset = entry.get("offset")
    nbytes = math.prod(shape) * itemsize
    if not isinstance(offset, int) or offset < 0 or offset + nbytes > len(data):
        raise SessionFormatError(
            f"{where} does not fit in the stored bytes (offset {offset!r}, "
            f"{nbytes} bytes, {len(data)} available): the file is damaged."
        )
    arr: np.ndarray = np.frombuffer(
        data, dtype=dtype, count=math.prod(shape), offset=offset
    )
    # NOTE: the bytes sit at any address in the blob; NumPy's SIMD loops and
    # matrix products may round differently on unaligned memory, so a run
    # replayed from the file would differ in the last bit from the recording.
    # A fresh (aligned) copy computes exactly as the recorded arrays did.
    out = arr.reshape(shape).copy()
    out.flags.writeable = False
    return out


def _default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"cannot store a {type(value).__name__} as JSON")


# One encoder for every call: json.dumps builds a new one whenever it is given
# options, which cost more than encoding a step's small metric dict.
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=True, default=_default)
