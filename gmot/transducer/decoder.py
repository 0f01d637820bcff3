"""Stateless transducer decoder (prediction network): embedding + optional context conv.

``Decoder(vocab_size V, decoder_dim d, blank_id, context_size k)``:
embedding (V, d) (the blank row is a learnt vector like any other), then for k > 1 a
``Conv1d(d, d, kernel_size=k, groups=d // 4, bias=False)`` over the last k symbols (left-padded
with blank when ``need_pad``), then ReLU.

Parameter count (icefall's convention): ``V * d`` (embedding) ``+ d * 4 * k`` when k > 1
(conv weight of shape (d, d / groups = 4, k), no bias). ``d`` must be divisible by 4 when k > 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Decoder(nn.Module):
    """Stateless prediction network: the last ``context_size`` symbols -> (..., decoder_dim).

    Args:
      vocab_size: number of symbols V (blank included).
      decoder_dim: output (and embedding) dimension d; divisible by 4 when context_size > 1.
      blank_id: the blank symbol, also the left padding of the context.
      context_size: symbols the output depends on (1: the last symbol only, no convolution).

    ``forward(y (N, U) int64, need_pad=True) -> (N, U, decoder_dim)``. With ``need_pad=False``
    no left padding is added: y (N, U >= context_size) gives
    (N, U - context_size + 1, decoder_dim); search passes the last ``context_size`` symbols.
    """

    def __init__(self, vocab_size: int, decoder_dim: int, blank_id: int, context_size: int):
        super().__init__()
        if vocab_size <= 0 or decoder_dim <= 0:
            raise ValueError(
                f"vocab_size and decoder_dim must be > 0, got {vocab_size}, {decoder_dim}"
            )
        if not 0 <= blank_id < vocab_size:
            raise ValueError(f"blank_id={blank_id} out of range [0, {vocab_size})")
        if context_size < 1:
            raise ValueError(f"context_size must be >= 1, got {context_size}")
        if context_size > 1 and decoder_dim % 4 != 0:
            raise ValueError(
                f"decoder_dim must be divisible by 4 when context_size > 1, got {decoder_dim}"
            )
        self.vocab_size = vocab_size
        self.decoder_dim = decoder_dim
        self.blank_id = blank_id
        self.context_size = context_size
        self.embedding = nn.Embedding(vocab_size, decoder_dim)
        if context_size > 1:
            self.conv = nn.Conv1d(
                decoder_dim,
                decoder_dim,
                kernel_size=context_size,
                padding=0,
                groups=decoder_dim // 4,
                bias=False,
            )
        else:
            self.conv = nn.Identity()

    @staticmethod
    def num_params(vocab_size: int, decoder_dim: int, context_size: int) -> int:
        """Parameter count by formula (see module docstring)."""
        conv = decoder_dim * 4 * context_size if context_size > 1 else 0
        return vocab_size * decoder_dim + conv

    def forward(self, y: Tensor, need_pad: bool = True) -> Tensor:
        """Decoder output for each position of ``y``.

        Args:
          y: (N, U) int64 symbol ids in [0, vocab_size); in training the labels with blank
            prepended (U = S + 1), in search the last ``context_size`` symbols.
          need_pad: left-pad y with ``context_size - 1`` blanks so every position has a full
            context (training); False: y already holds the context (search).
        Returns:
          (N, U, decoder_dim) with ``need_pad``, else (N, U - context_size + 1, decoder_dim)
          (N, 1, decoder_dim in search), after ReLU.
        """
        if y.ndim != 2:
            raise ValueError(f"y must have shape (N, U), got {tuple(y.shape)}")
        if y.dtype != torch.int64:
            raise TypeError(f"y must be int64, got dtype {y.dtype}")
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= self.vocab_size):
            raise ValueError(
                f"y values must lie in [0, {self.vocab_size}), got [{int(y.min())}, {int(y.max())}]"
            )
        emb = self.embedding(y)  # (N, U, d)
        if self.context_size > 1:
            x = emb.permute(0, 2, 1)  # (N, d, U)
            if need_pad:
                x = F.pad(x, (self.context_size - 1, 0))
            elif x.shape[-1] < self.context_size:
                raise ValueError(
                    f"with need_pad=False, y must have U >= context_size="
                    f"{self.context_size}, got {y.shape[1]}"
                )
            emb = self.conv(x).permute(0, 2, 1)
        return F.relu(emb)
