"""Wire-format helpers shared by the codecs (DESIGN §4): value dtypes, index widths, bit packing.

Conventions (no header: the receiver knows ``d``, the segments and the compressor's config):

* values are IEEE floats of ``value_bits`` (16, 32 or 64), little-endian; a value beyond the
  largest finite one of its width saturates there (``to_wire``: +-65504 for 16 bits) instead of
  becoming inf, and a received value that is not finite is malformed (``check_finite``);
* indices are either bit-packed to ``ceil(log2 d)`` bits each (``index_bits=packed``) or
  stored in the smallest unsigned integer type that holds ``d - 1`` (``index_bits=uint``);
* bit-packed fields are little-endian in bit order and padded with zero bits to a whole
  byte; a payload whose padding bits are not zero is malformed.

Every reported size is ``8 * len(payload)``.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import PayloadError
from ..lazy import torch


VALUE_BITS = (16, 32, 64)
INDEX_BITS = ("packed", "uint")
_FLOAT_NP = {16: np.dtype("<f2"), 32: np.dtype("<f4"), 64: np.dtype("<f8")}


def float_np(bits: int) -> np.dtype:
    return _FLOAT_NP[bits]


def float_torch(bits: int) -> torch.dtype:
    return getattr(torch, f"float{bits}")


def to_wire(t: torch.Tensor, bits: int) -> torch.Tensor:
    """``t`` cast to the wire float of ``bits``, saturating: a magnitude beyond its largest finite
    value becomes that value (where the plain cast gives inf), every finite cast stays bit for bit
    the same, NaN stays NaN."""
    dt = float_torch(bits)
    top = torch.finfo(dt).max
    if torch.finfo(t.dtype).max > top:
        t = t.clamp(-top, top)
    return t.to(dt)


def check_finite(what: str, field: str, values: torch.Tensor) -> None:
    """PayloadError naming the field when a received float is NaN or infinite."""
    bad = ~torch.isfinite(values)
    if bool(bad.any()):
        raise PayloadError(f"{what}: payload {field} {float(values[bad][0])} is not finite (a finite float is allowed)")


def packed_width(d: int) -> int:
    """Bits per bit-packed index into a vector of d entries: ceil(log2 d) (0 when d == 1)."""
    return max(0, math.ceil(math.log2(d))) if d > 1 else 0


def uint_dtype(d: int) -> np.dtype:
    """Smallest little-endian unsigned integer type holding every index 0..d-1."""
    for dt in ("<u1", "<u2", "<u4", "<u8"):
        if d - 1 <= np.iinfo(dt).max:
            return np.dtype(dt)
    raise ValueError(f"d={d} too large")


def nbytes(nbits: int) -> int:
    return (nbits + 7) // 8


def pack_uint(values: np.ndarray, width: int) -> bytes:
    """Bit-pack non-negative integers (< 2**width) at ``width`` bits each; zero-padded to a byte."""
    values = np.asarray(values, dtype=np.uint64).ravel()
    if width == 0 or values.size == 0:
        return b""
    shifts = np.arange(width, dtype=np.uint64)
    bits = ((values[:, None] >> shifts) & np.uint64(1)).astype(np.uint8)
    return np.packbits(bits.ravel(), bitorder="little").tobytes()


def unpack_uint(buf: bytes, count: int, width: int) -> np.ndarray:
    """Inverse of ``pack_uint``: ``count`` integers of ``width`` bits; PayloadError when the
    buffer has the wrong size or non-zero padding."""
    if len(buf) != nbytes(count * width):
        raise PayloadError(f"bit field of {len(buf)} bytes, expected {nbytes(count * width)}")
    if width == 0 or count == 0:
        return np.zeros(count, dtype=np.int64)
    bits = np.unpackbits(np.frombuffer(buf, dtype=np.uint8), bitorder="little")
    if bits[count * width:].any():
        raise PayloadError("non-zero padding bits")
    bits = bits[:count * width].reshape(count, width).astype(np.uint64)
    return (bits << np.arange(width, dtype=np.uint64)).sum(axis=1).astype(np.int64)


def _bits_of(values: np.ndarray, width: int) -> np.ndarray:
    values = np.asarray(values, dtype=np.uint64).ravel()
    shifts = np.arange(width, dtype=np.uint64)
    return ((values[:, None] >> shifts) & np.uint64(1)).astype(np.uint8).ravel()


def index_field_bits(groups, mode: str) -> int:
    """Size in bits of the index field for ``groups = [(count, d_s), ...]`` (one per tensor)."""
    if mode == "packed":
        return 8 * nbytes(sum(c * packed_width(ds) for c, ds in groups))
    return sum(c * 8 * uint_dtype(ds).itemsize for c, ds in groups)


def pack_indices(groups, mode: str) -> bytes:
    """Indices of several tensors, ``groups = [(idx, d_s), ...]``: one bit stream padded once
    (``packed``) or each group in its smallest unsigned type (``uint``)."""
    if mode == "uint":
        return b"".join(np.asarray(idx).astype(uint_dtype(ds)).tobytes() for idx, ds in groups)
    streams = [_bits_of(idx, packed_width(ds)) for idx, ds in groups if packed_width(ds)]
    if not streams:
        return b""
    return np.packbits(np.concatenate(streams), bitorder="little").tobytes()


def unpack_indices(buf: bytes, groups, mode: str) -> list[np.ndarray]:
    """Inverse of ``pack_indices`` for ``groups = [(count, d_s), ...]``: distinct in-range
    indices per group, or PayloadError."""
    if len(buf) * 8 != index_field_bits(groups, mode):
        raise PayloadError(f"index field of {len(buf)} bytes, expected {index_field_bits(groups, mode) // 8}")
    out = []
    if mode == "uint":
        at = 0
        for c, ds in groups:
            dt = uint_dtype(ds)
            out.append(np.frombuffer(buf, dtype=dt, count=c, offset=at).astype(np.int64))
            at += c * dt.itemsize
    else:
        bits = np.unpackbits(np.frombuffer(buf, dtype=np.uint8), bitorder="little")
        at = 0
        for c, ds in groups:
            w = packed_width(ds)
            field = bits[at:at + c * w].reshape(c, w).astype(np.uint64)
            out.append((field << np.arange(w, dtype=np.uint64)).sum(axis=1).astype(np.int64))
            at += c * w
        if bits[at:].any():
            raise PayloadError("non-zero padding bits")
    for idx, (c, ds) in zip(out, groups):
        if idx.size and idx.max() >= ds:
            raise PayloadError(f"index {int(idx.max())} out of range for {ds} entries")
        if idx.size > 1 and np.unique(idx).size != idx.size:
            raise PayloadError("repeated index")
    return out


class Reader:
    """Consumes a payload field by field; ``done()`` checks nothing is left over."""

    def __init__(self, payload, what: str):
        self.buf, self.at, self.what = bytes(payload), 0, what

    def take(self, n: int) -> bytes:
        if n < 0 or self.at + n > len(self.buf):
            raise PayloadError(f"{self.what}: payload of {len(self.buf)} bytes is truncated")
        out = self.buf[self.at:self.at + n]
        self.at += n
        return out

    def floats(self, count: int, bits: int) -> np.ndarray:
        dt = float_np(bits)
        return np.frombuffer(self.take(count * dt.itemsize), dtype=dt).copy()

    def done(self) -> None:
        if self.at != len(self.buf):
            raise PayloadError(f"{self.what}: payload of {len(self.buf)} bytes, expected {self.at}")
