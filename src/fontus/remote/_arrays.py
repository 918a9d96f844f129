"""Arrays on the wire: ``{dtype, shape, data, compression}``, raw C-order little-endian bytes.

Never pickle, never object dtypes.  Encoding makes an array contiguous and
little-endian (a copy only when it is not already) and hands its buffer to the
blob writer; decoding checks dtype, shape and byte length before viewing the
received bytes as an array (read-only, no copy).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.errors import ConfigError, WireError
from ._blobs import BlobWriter
from ._limits import WireLimits

__all__ = [
    "ALLOWED_KINDS",
    "CompressionConfig",
    "available_compressions",
    "decode_array",
    "encode_array",
]

#: bool, signed and unsigned ints, floats, complex: every fixed-size numeric dtype.
ALLOWED_KINDS = "biufc"
_CODES = {"none": 0, "zstd": 1, "lz4": 2}
_NAMES = {v: k for k, v in _CODES.items()}
#: A dtype string numpy parses without evaluating anything: a type code or name, no commas.
_PLAIN_DTYPE = re.compile(r"[<>|=]?[A-Za-z][A-Za-z0-9]{0,15}")
#: Dtype strings already checked, so that the hot path skips parsing (bounded: hostile
#: input can only add valid spellings, and stops adding after this many).
_checked_dtypes: dict[str, np.dtype[Any]] = {}
_CHECKED_DTYPES_MAX = 256
_ALLOWED_KINDS = "use bool, int8-64, uint8-64, float16-64, complex64 or complex128"
#: Wire dtype string of each dtype that travels without conversion (little-endian or
#: byte-order-free); encoding looks it up instead of checking the dtype field by field.
_WIRE_DTYPES: dict[np.dtype[Any], str] = {
    dtype: dtype.str
    for dtype in (
        np.dtype(code).newbyteorder("<")
        for code in (
            "b1",
            "i1",
            "i2",
            "i4",
            "i8",
            "u1",
            "u2",
            "u4",
            "u8",
            "f2",
            "f4",
            "f8",
            "c8",
            "c16",
        )
    )
}
#: Most dimensions an array may have (numpy 1.x's own limit; numpy 2 allows 64).
MAX_NDIM = 32
#: Arrays smaller than this are never compressed: the saving cannot pay for the call.
DEFAULT_COMPRESSION_THRESHOLD = 64 * 1024


def available_compressions() -> list[str]:
    """Compressions whose libraries are installed here (``fontus[compression]``)."""
    names = []
    try:
        import zstandard  # noqa: F401

        names.append("zstd")
    except ImportError:
        pass
    try:
        import lz4.block  # noqa: F401

        names.append("lz4")
    except ImportError:
        pass
    return names


@dataclass(frozen=True)
class CompressionConfig:
    """Per-array compression used when encoding."""

    algorithm: str = "none"
    threshold_bytes: int = DEFAULT_COMPRESSION_THRESHOLD
    level: int = 1

    def __post_init__(self) -> None:
        if self.algorithm not in _CODES:
            raise ConfigError(f"compression must be one of none, zstd, lz4; got {self.algorithm!r}")
        if self.algorithm != "none" and self.algorithm not in available_compressions():
            raise ConfigError(
                f"compression {self.algorithm!r} needs its library: pip install 'fontus[compression]'"
            )
        if self.threshold_bytes < 0:
            raise ConfigError(
                f"compression threshold_bytes must be >= 0, got {self.threshold_bytes}"
            )


NO_COMPRESSION = CompressionConfig()


def _compress(algorithm: str, data: Any, level: int) -> bytes:
    if algorithm == "zstd":
        import zstandard

        return zstandard.ZstdCompressor(level=level).compress(data)
    import lz4.block

    return bytes(lz4.block.compress(data, store_size=False))


def _decompress(algorithm: str, data: Any, raw_size: int, where: str) -> bytes:
    try:
        if algorithm == "zstd":
            import zstandard

            data = bytes(data)
            # The decompressor allocates what the frame header declares: check it first.
            declared = zstandard.frame_content_size(data)  # -1 when the header does not say
            if declared not in (-1, raw_size):
                raise WireError(
                    f"{where}: zstd frame declares {declared} bytes but raw_size says {raw_size}"
                )
            out = zstandard.ZstdDecompressor().decompress(data, max_output_size=raw_size)
        else:
            import lz4.block

            out = lz4.block.decompress(data, uncompressed_size=raw_size)
    except ImportError:
        raise WireError(
            f"{where}: array is {algorithm}-compressed but the library is not installed here; "
            "pip install 'fontus[compression]'"
        ) from None
    except WireError:
        raise
    except Exception as exc:  # noqa: BLE001 - library errors become one WireError
        raise WireError(f"{where}: {algorithm} data is corrupt: {exc}") from None
    if len(out) != raw_size:
        raise WireError(
            f"{where}: {algorithm} data decompressed to {len(out)} bytes but raw_size says {raw_size}"
        )
    return bytes(out)


def _portable(dtype: np.dtype[Any]) -> bool:
    # long double (float128, complex256) differs between x86 and ARM: it never travels.
    return (
        dtype.kind in ALLOWED_KINDS
        and dtype.fields is None
        and dtype.subdtype is None
        and dtype.itemsize <= (16 if dtype.kind == "c" else 8)
    )


def normalise(array: np.ndarray) -> np.ndarray:
    """C-contiguous and little-endian (copies only when needed); refuses unsupported dtypes."""
    dtype = array.dtype
    if not _portable(dtype):
        raise WireError(
            f"array dtype {dtype} cannot travel: only bool, int8-64, uint8-64, float16-64, "
            "complex64 and complex128 are allowed"
        )
    if dtype.byteorder == ">" or (dtype.byteorder == "=" and not np.little_endian):
        array = array.astype(dtype.newbyteorder("<"))
    if not array.flags.c_contiguous:
        array = np.ascontiguousarray(array)
    return array


def encode_array(
    array: np.ndarray,
    target: Any,
    blobs: BlobWriter,
    compression: CompressionConfig = NO_COMPRESSION,
) -> None:
    """Fill the ``fontus.v1.Array`` ``target`` from ``array``."""
    wire_dtype = _WIRE_DTYPES.get(array.dtype)
    if wire_dtype is None or not array.flags.c_contiguous:
        array = normalise(array)
        wire_dtype = array.dtype.str
    target.dtype = wire_dtype
    target.shape.extend(array.shape)
    nbytes = array.nbytes
    if compression.algorithm != "none" and nbytes >= compression.threshold_bytes and nbytes:
        packed = _compress(compression.algorithm, array, compression.level)
        if len(packed) < nbytes:
            target.compression = _CODES[compression.algorithm]
            target.raw_size = nbytes
            target.blob = blobs.add(packed, len(packed))
            return
    if nbytes == 0:
        target.inline = b""
    else:
        target.blob = blobs.add(array, nbytes)


def check_dtype(dtype_str: str, where: str) -> np.dtype[Any]:
    dtype = _checked_dtypes.get(dtype_str)
    if dtype is not None:
        return dtype
    # numpy parses composite dtype strings with ast.literal_eval, which raises anything
    # (SyntaxError, RecursionError); only a plain type code or name reaches it.
    if not _PLAIN_DTYPE.fullmatch(dtype_str):
        raise WireError(
            f"{where}: dtype {dtype_str!r} is not a plain dtype string like '<f4'; "
            "structured and sub-array dtypes never travel"
        )
    if dtype_str.lstrip("<>|=").startswith("a"):
        # 'a' is numpy's deprecated alias of 'S' (bytes strings): not portable, and asking
        # numpy would print a DeprecationWarning for every such frame.
        raise WireError(f"{where}: dtype {dtype_str!r} is not allowed; {_ALLOWED_KINDS}")
    try:
        dtype = np.dtype(dtype_str)
    except (TypeError, ValueError):
        raise WireError(f"{where}: unknown dtype {dtype_str!r}") from None
    if dtype.hasobject:
        raise WireError(f"{where}: dtype {dtype_str!r} is an object dtype; objects never travel")
    if not _portable(dtype):
        raise WireError(f"{where}: dtype {dtype_str!r} is not allowed; {_ALLOWED_KINDS}")
    if dtype.byteorder == ">":
        raise WireError(
            f"{where}: dtype {dtype_str!r} is big-endian; the wire carries little-endian data"
        )
    if len(_checked_dtypes) < _CHECKED_DTYPES_MAX:
        _checked_dtypes[dtype_str] = dtype
    return dtype


def check_shape(shape: Any, itemsize: int, limits: WireLimits, where: str) -> tuple[int, ...]:
    """``shape`` (a sequence of ints, e.g. a protobuf repeated field) checked against ``limits``."""
    dims = tuple(shape[:])  # slicing a protobuf repeated field is much faster than iterating it
    if len(dims) > MAX_NDIM:
        raise WireError(f"{where}: shape has {len(dims)} dimensions, over the limit of {MAX_NDIM}")
    if dims and min(dims) < 0:
        raise WireError(f"{where}: shape {dims} has a negative dimension")
    elements = math.prod(dims)
    if elements > limits.max_array_elements:
        raise WireError(
            f"{where}: shape {dims} has {elements} elements, over the limit of {limits.max_array_elements}"
        )
    # numpy refuses a shape whose dimensions multiply past its index range even when one is 0.
    if not elements and math.prod(d for d in dims if d) > limits.max_array_elements:
        raise WireError(
            f"{where}: shape {dims} is empty but its other dimensions exceed the limit of "
            f"{limits.max_array_elements} elements"
        )
    if elements * itemsize > limits.max_array_bytes:
        raise WireError(
            f"{where}: shape {dims} needs {elements * itemsize} bytes, over the limit of {limits.max_array_bytes}"
        )
    return dims


def decode_array(
    source: Any, blobs: list[memoryview], limits: WireLimits, where: str = "array"
) -> np.ndarray:
    """A read-only array viewing the received bytes (a copy only when decompressing)."""
    dtype = check_dtype(source.dtype, where)
    shape = check_shape(source.shape, dtype.itemsize, limits, where)
    which = source.WhichOneof("data")
    data: Any
    if which == "blob":
        index = source.blob
        if index >= len(blobs):
            raise WireError(f"{where}: refers to blob {index} but the frame carries {len(blobs)}")
        data = blobs[index]
    elif which == "inline":
        data = source.inline
    else:
        data = b""
    expected = math.prod(shape) * dtype.itemsize
    code = source.compression
    if code:
        name = _NAMES.get(code)
        if name is None:
            raise WireError(f"{where}: unknown compression code {code}")
        if source.raw_size != expected:
            raise WireError(
                f"{where}: raw_size {source.raw_size} does not equal dtype x shape = {expected} bytes"
            )
        data = _decompress(name, data, expected, where)
    if len(data) != expected:
        raise WireError(
            f"{where}: {len(data)} bytes do not match dtype {dtype.str} x shape {shape} = {expected} bytes"
        )
    array = np.ndarray(shape, dtype, data)  # a view: frombuffer + reshape in one call
    if array.flags.writeable:
        array.flags.writeable = False
    return array
