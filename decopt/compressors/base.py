"""The codec interface every compressor implements (DESIGN §4)."""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError, PayloadError
from ..lazy import torch
from ..rng import Key
from . import wire


class Compressor:
    """Maps rows of a matrix (one message per row) to what the receiver decodes, and back.

    * ``compress(V, key, rows)`` -> ``(V_hat, bits)``: the decoded messages, exactly as a
      receiver reconstructs them, and the exact wire size of each row in bits (computed from
      a formula, no bytes are materialized). This is the in-memory path of the stacked backend.
    * ``compress_split(V, key, rows)`` -> ``(sent, received, bits)``: what the sender keeps
      and what the receiver gets; the same tensor unless a channel adds receiver-only noise.
    * ``encode(V, key, rows)`` -> one ``bytes`` payload per row (the real wire format);
      ``8 * len(payload) == bits``.
    * ``decode(payload, d, dtype=None, key=None, row=None)`` -> the received row (float64 by default);
      ``decode(encode(v)) == compress(v)`` bit for bit. ``key``/``row`` (the message's key and
      the row id it was keyed on, which the receiver always knows) are needed only by codecs
      that derive something from the shared key instead of sending it (shared rand-k masks,
      channel noise and erasures). A payload whose float fields (``float_fields``: norms,
      scales, values) hold a NaN or inf is a PayloadError naming the field; ``check_finite=False``
      skips that check (a transport passing on what a diverging sender of the same job sent).

    Finite input never gives a non-finite message: floats that do not fit the wire width
    saturate at its largest finite value (``wire.to_wire``).
    * ``compress_sparse`` / ``decode_sparse``: the same, as ``SparseRows`` (indices and values)
      for codecs that keep a few entries per row (top-k, rand-k); the dense result otherwise.

    ``rows`` are the global ids (agents or edges) that key the randomness, so every rank and
    both endpoints of an edge draw the same numbers. ``delta(d)`` is the advertised
    contraction ``E||Q(x) - x||^2 <= (1 - delta) ||x||^2``; it is <= 0 for unbiased
    rescaled compressors that are not contractive (the bound still holds as written).

    Subclasses implement the vectorized *plan* (the wire-level quantities of all rows) and
    the per-row pack/unpack; the shared ``values`` reconstruction makes both paths identical.
    """

    name = "base"
    unbiased = False
    needs_key = False          # decode needs (key, row)
    float_fields: dict = {}    # plan entry -> its name: the floats a payload carries (checked finite)

    # --- advertised properties -----------------------------------------------------------
    def delta(self, d: int) -> float:
        """Advertised contraction: E||Q(x) - x||^2 <= (1 - delta) ||x||^2."""
        raise NotImplementedError

    # --- what subclasses implement ---------------------------------------------------------
    def plan(self, V: torch.Tensor, key: Key, rows) -> dict:
        """Wire-level content of every row of V (vectorized over rows, no Python row loop)."""
        raise NotImplementedError

    def bits(self, plan: dict) -> np.ndarray:
        """Exact payload size per row in bits (int64, shape (n,))."""
        raise NotImplementedError

    def values(self, plan: dict, d: int, dtype: torch.dtype, device) -> torch.Tensor:
        """The decoded rows, shape (n, d)."""
        raise NotImplementedError

    def support(self, plan: dict, d: int, device) -> torch.Tensor | None:
        """Entries actually transmitted per row (bool (n, d)); None means all of them."""
        return None

    def pack(self, plan: dict, i: int) -> bytes:
        raise NotImplementedError

    def unpack(self, payload: bytes, d: int, key: Key | None, row: int | None) -> dict:
        """A one-row plan from a payload; PayloadError when malformed."""
        raise NotImplementedError

    def fixed_bits(self, n: int, per_row: int) -> np.ndarray:
        """``per_row`` bits for each of n rows, for codecs whose sizes do not depend on the data:
        one cached read-only array per (n, per_row), so that a network recognises a repeated
        round of the same sizes and counts it instead of re-adding arrays (``StackedNetwork.broadcast``)."""
        cache = self.__dict__.setdefault("_fixed_bits", {})
        if (n, per_row) not in cache:
            bits = np.full(n, per_row, dtype=np.int64)
            bits.flags.writeable = False
            cache[n, per_row] = bits
        return cache[n, per_row]

    # --- the public codec ------------------------------------------------------------------
    def compress(self, V: torch.Tensor, key: Key, rows) -> tuple[torch.Tensor, np.ndarray]:
        p = self.plan(V, key, rows)
        return self.values(p, V.shape[1], V.dtype, V.device), self.bits(p)

    def compress_split(self, V: torch.Tensor, key: Key, rows):
        Vhat, bits = self.compress(V, key, rows)
        return Vhat, Vhat, bits

    def encode(self, V: torch.Tensor, key: Key, rows) -> list[bytes]:
        p = self.plan(V, key, rows)
        return [self.pack(p, i) for i in range(V.shape[0])]

    def decode(self, payload: bytes, d: int, dtype: torch.dtype | None = None,
               key: Key | None = None, row: int | None = None, check_finite: bool = True) -> torch.Tensor:
        return self.values(self.received(payload, d, key, row, check_finite), d, dtype or torch.float64, "cpu")[0]

    def received(self, payload: bytes, d: int, key: Key | None, row: int | None,
                 check_finite: bool = True) -> dict:
        """The one-row plan of a payload (checked; its floats finite unless ``check_finite=False``)."""
        if not isinstance(payload, (bytes, bytearray, memoryview)):
            raise PayloadError(f"{self.name}: payload must be bytes, got {type(payload).__name__}")
        if self.needs_key and (key is None or row is None):
            raise ValueError(f"{self.name}: decode needs the message key and row")
        plan = self.unpack(bytes(payload), d, key, row)
        if check_finite:
            self.check_finite(plan)
        return plan

    def check_finite(self, plan: dict) -> None:
        """PayloadError naming the field when a float of a received plan is NaN or infinite."""
        for entry, field in self.float_fields.items():
            values = plan[entry]
            for v in values if isinstance(values, list) else [values]:
                wire.check_finite(self.name, field, v)

    def decoded(self, plan: dict, d: int, dtype: torch.dtype, device, sparse: bool = False):
        """The rows a plan decodes to (``values``); sparsifiers give ``SparseRows`` when ``sparse``."""
        return self.values(plan, d, dtype, device)

    def compress_encode(self, V: torch.Tensor, key: Key, rows, which, sparse: bool = False):
        """A message round with remote receivers from one plan: the decoded rows and their bits
        (``compress``, or ``compress_sparse`` when ``sparse``) and the payloads of the rows at
        positions ``which`` (``encode``): the selection or randomness is computed once."""
        p = self.plan(V, key, rows)
        return (self.decoded(p, V.shape[1], V.dtype, V.device, sparse), self.bits(p),
                [self.pack(p, int(i)) for i in which])

    def compress_sparse(self, V: torch.Tensor, key: Key, rows):
        """``compress`` with the decoded rows as ``SparseRows`` where the codec keeps a few
        entries per row; this default (dense codecs) is ``compress``."""
        return self.compress(V, key, rows)

    def decode_sparse(self, payload: bytes, d: int, dtype: torch.dtype | None = None,
                      key: Key | None = None, row: int | None = None, check_finite: bool = True):
        """``decode`` as a one-row ``SparseRows`` where the codec keeps a few entries per row; this
        default (dense codecs) is ``decode``."""
        return self.decode(payload, d, dtype, key, row, check_finite)


def segments_of(segments, d: int) -> list[tuple[int, int]]:
    """(start, size) of each parameter tensor; the whole vector when segments do not cover d."""
    if not segments or sum(segments) != d or any(s <= 0 for s in segments):
        return [(0, d)]
    out, at = [], 0
    for s in segments:
        out.append((at, int(s)))
        at += int(s)
    return out


# --- config checks shared by the schemas -----------------------------------------------------
def check_value_bits(value_bits) -> None:
    from . import wire

    if value_bits not in wire.VALUE_BITS:
        raise ConfigError(f"compressor.value_bits={value_bits}: choose 16, 32 or 64 (bits per value on the wire)")


def check_kept(ratio, k, per_tensor: bool = False) -> None:
    if k is not None and k <= 0:
        raise ConfigError(f"compressor.k={k}: must be >= 1 (entries kept), or null to use compressor.ratio")
    if ratio is not None and not 0 < ratio <= 1:
        raise ConfigError(f"compressor.ratio={ratio}: must be in (0, 1] (fraction of entries kept)")
    if k is None and ratio is None:
        raise ConfigError("compressor.ratio=null: set compressor.ratio in (0, 1] or compressor.k >= 1")
    if per_tensor and k is not None:
        raise ConfigError(f"compressor.k={k}: per_tensor=true needs compressor.ratio (k counts the whole vector)")


def check_index_bits(index_bits) -> None:
    from . import wire

    if index_bits not in wire.INDEX_BITS:
        raise ConfigError(f"compressor.index_bits={index_bits}: choose packed (ceil(log2 d) bits) or uint")


def kept_counts(segs, ratio, k) -> list[int]:
    """Entries kept per segment: k (whole vector) or max(1, floor(ratio * d_s)), capped at d_s."""
    if k is not None and len(segs) == 1:
        return [min(int(k), segs[0][1])]
    return [min(ds, max(1, int(np.floor(ratio * ds + 1e-9)))) for _, ds in segs]
