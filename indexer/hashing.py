"""A deterministic stand-in text encoder: hashed bag of words (`--text-model hash:384`).

It exists for tests and scale benchmarks, where MiniLM's ~300 texts/s on two cores would dominate every
number. Each lower-cased word token is hashed (BLAKE2b, so the result never depends on Python's per-process
hash seed) to a signed dimension; counts are damped with log(1 + tf) and the row is L2-normalised. Texts that
share words get similar vectors, nothing more: it is not a semantic model and is never a default. An index built
with it records `hash:<dim>` as its encoder like any other, and search responses say it is not semantic.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from indexer.encoders import Modality, normalise
from indexer.errors import EncoderUnavailableError

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
MIN_DIM, MAX_DIM = 8, 4096


class HashingEncoder:
    modality: Modality = "text"

    def __init__(self, dim: int = 384):
        if not MIN_DIM <= dim <= MAX_DIM:
            raise EncoderUnavailableError(f"hash encoder dimension must be within {MIN_DIM}..{MAX_DIM}, got {dim}")
        self.dim = dim
        self.id = f"hash:{dim}"
        self._slots: dict[str, tuple[int, float]] = {}  # token -> (dimension, sign); vocabularies are small

    @classmethod
    def from_id(cls, model_id: str) -> HashingEncoder:
        _, _, dim = model_id.partition(":")
        if not dim.isdigit():
            raise EncoderUnavailableError(f"hash encoder id must be 'hash:<dim>', e.g. 'hash:384', got '{model_id}'")
        return cls(int(dim))

    def _slot(self, token: str) -> tuple[int, float]:
        slot = self._slots.get(token)
        if slot is None:
            digest = int.from_bytes(hashlib.blake2b(token.encode("utf-8"), digest_size=8).digest(), "little")
            slot = (digest % self.dim, 1.0 if (digest >> 63) & 1 else -1.0)
            self._slots[token] = slot
        return slot

    def encode(self, batch: Sequence[Any]) -> np.ndarray:
        out = np.zeros((len(batch), self.dim), dtype=np.float32)
        for row, text in enumerate(batch):
            for token, count in Counter(_TOKEN.findall(str(text).lower())).items():
                dim, sign = self._slot(token)
                out[row, dim] += sign * np.log1p(count)
        return normalise(out)
