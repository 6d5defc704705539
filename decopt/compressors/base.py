"""The codec interface every compressor implements (DESIGN §4)."""
from __future__ import annotations

import numpy as np
import torch

from ..rng import Key


class Compressor:
    """Maps rows of a matrix (one message per row) to what the receiver decodes, and back.

    * ``compress(V, key, rows)`` -> ``(V_hat, bits)``: the decoded messages, exactly as a
      receiver reconstructs them, and the exact wire size of each row in bits. This is the
      in-memory path of the stacked backend.
    * ``encode(V, key, rows)`` -> one ``bytes`` payload per row (the real wire format).
    * ``decode(payload, d, dtype)`` -> the row; ``decode(encode(v)) == compress(v)`` exactly.

    ``rows`` are the global ids (agents or edges) that key the randomness, so every rank and
    both endpoints of an edge draw the same numbers.
    """

    name = "base"
    unbiased = False

    def delta(self, d: int) -> float:
        """Advertised contraction: E||Q(x) - x||^2 <= (1 - delta) ||x||^2."""
        raise NotImplementedError

    def compress(self, V: torch.Tensor, key: Key, rows) -> tuple[torch.Tensor, np.ndarray]:
        raise NotImplementedError

    def encode(self, V: torch.Tensor, key: Key, rows) -> list[bytes]:
        raise NotImplementedError

    def decode(self, payload: bytes, d: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        raise NotImplementedError
