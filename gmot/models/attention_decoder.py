"""A small transformer attention-decoder head (training loss with label smoothing; n-best scoring).

Teacher forcing: the input is ``[sos] + y`` and the target ``y + [eos]`` (sos/eos id 1). The
decoder attends to the encoder output (projected to ``attention_dim``) with padded frames masked.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

IGNORE_ID = -1


def _sinusoidal(length: int, dim: int, device: torch.device) -> Tensor:
    pos = torch.arange(length, device=device, dtype=torch.float32).unsqueeze(1)
    div = torch.exp(
        torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim)
    )
    pe = torch.zeros(length, dim, device=device)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div[: pe[:, 1::2].shape[1]])
    return pe


def label_smoothing_loss(logits: Tensor, targets: Tensor, smoothing: float) -> Tensor:
    """Sum over non-ignored positions of the label-smoothed cross entropy.

    logits (N, U, V) (any float dtype; computed in float32), targets (N, U) int64 with
    ``IGNORE_ID`` (-1) for padding. The smoothed target puts ``1 - smoothing`` on the label and
    ``smoothing / (V - 1)`` on every other class. Returns a scalar (sum).
    """
    if logits.shape[:2] != targets.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} differ")
    V = logits.shape[-1]
    logp = logits.float().log_softmax(-1)
    mask = targets != IGNORE_ID
    tgt = targets.clamp(min=0)
    nll = -logp.gather(-1, tgt.unsqueeze(-1)).squeeze(-1)
    if smoothing > 0:
        other = -(logp.sum(-1) + nll)  # -(sum of log-probs over the classes except the label)
        loss = (1.0 - smoothing) * nll + smoothing / (V - 1) * other
    else:
        loss = nll
    return (loss * mask).sum()


class AttentionDecoder(nn.Module):
    """Transformer decoder head.

    Args:
      vocab_size: output vocabulary (``V``); ``sos_eos_id`` must be < V.
      encoder_dim: dimension ``D`` of the encoder output it attends to.
      attention_dim, num_heads, feedforward_dim, num_layers, dropout: transformer sizes.
      sos_eos_id: the id used both as start and end symbol (1).
      label_smoothing: smoothing of the training loss (0.1).
    """

    def __init__(
        self,
        vocab_size: int,
        encoder_dim: int,
        attention_dim: int = 256,
        num_heads: int = 4,
        feedforward_dim: int = 1024,
        num_layers: int = 2,
        dropout: float = 0.1,
        sos_eos_id: int = 1,
        label_smoothing: float = 0.1,
    ) -> None:
        super().__init__()
        if not 0 <= sos_eos_id < vocab_size:
            raise ValueError(f"sos_eos_id={sos_eos_id} out of range [0, {vocab_size})")
        if attention_dim % num_heads != 0:
            raise ValueError(f"attention_dim {attention_dim} not divisible by {num_heads} heads")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.vocab_size = vocab_size
        self.sos_eos_id = sos_eos_id
        self.label_smoothing = label_smoothing
        self.attention_dim = attention_dim
        self.memory_proj = nn.Linear(encoder_dim, attention_dim)
        self.embed = nn.Embedding(vocab_size, attention_dim)
        layer = nn.TransformerDecoderLayer(
            attention_dim,
            num_heads,
            feedforward_dim,
            dropout=dropout,
            batch_first=True,
            norm_first=True,
        )
        self.layers = nn.TransformerDecoder(layer, num_layers, norm=nn.LayerNorm(attention_dim))
        self.output = nn.Linear(attention_dim, vocab_size)

    def _pad(self, token_ids: list[list[int]], device: torch.device) -> tuple[Tensor, Tensor]:
        """ys_in (N, U+1) = [sos]+y padded with eos; ys_out (N, U+1) = y+[eos] padded with -1."""
        U = max((len(y) for y in token_ids), default=0) + 1
        N = len(token_ids)
        ys_in = torch.full((N, U), self.sos_eos_id, dtype=torch.int64)
        ys_out = torch.full((N, U), IGNORE_ID, dtype=torch.int64)
        for n, y in enumerate(token_ids):
            if any((t < 0 or t >= self.vocab_size) for t in y):
                raise ValueError(f"token_ids[{n}] has ids outside [0, {self.vocab_size}): {y}")
            ys_in[n, 1 : len(y) + 1] = torch.tensor(y, dtype=torch.int64)
            ys_out[n, : len(y)] = torch.tensor(y, dtype=torch.int64)
            ys_out[n, len(y)] = self.sos_eos_id
        return ys_in.to(device), ys_out.to(device)

    def _logits(self, encoder_out: Tensor, encoder_out_lens: Tensor, ys_in: Tensor) -> Tensor:
        if encoder_out.ndim != 3:
            raise ValueError(f"encoder_out must be (N, T, D); got {tuple(encoder_out.shape)}")
        if encoder_out_lens.shape != (encoder_out.shape[0],):
            raise ValueError(
                f"encoder_out_lens must be ({encoder_out.shape[0]},); "
                f"got {tuple(encoder_out_lens.shape)}"
            )
        T = encoder_out.shape[1]
        mem = self.memory_proj(encoder_out)
        mem_pad = torch.arange(T, device=mem.device)[None, :] >= encoder_out_lens[:, None]
        U = ys_in.shape[1]
        x = self.embed(ys_in) * math.sqrt(self.attention_dim)
        x = x + _sinusoidal(U, self.attention_dim, x.device).to(x.dtype)
        causal = torch.triu(torch.ones(U, U, dtype=torch.bool, device=x.device), diagonal=1)
        y = self.layers(x, mem, tgt_mask=causal, memory_key_padding_mask=mem_pad)
        return self.output(y)

    def forward(
        self, encoder_out: Tensor, encoder_out_lens: Tensor, token_ids: list[list[int]]
    ) -> Tensor:
        """Label-smoothed cross entropy summed over all output positions (incl. eos); scalar.

        encoder_out (N, T, D), encoder_out_lens (N,), token_ids N lists of ids (no sos/eos).
        """
        if len(token_ids) != encoder_out.shape[0]:
            raise ValueError(f"{len(token_ids)} token lists for {encoder_out.shape[0]} utterances")
        ys_in, ys_out = self._pad(token_ids, encoder_out.device)
        logits = self._logits(encoder_out, encoder_out_lens, ys_in)
        return label_smoothing_loss(logits, ys_out, self.label_smoothing)

    @torch.no_grad()
    def score(
        self, encoder_out: Tensor, encoder_out_lens: Tensor, token_ids: list[list[int]]
    ) -> Tensor:
        """Log-likelihoods ``log p(y_n + [eos] | encoder_out[n])`` (N,) float32 (for rescoring).

        Row n of ``encoder_out`` (N, T, D) belongs to hypothesis ``token_ids[n]``.
        """
        if len(token_ids) != encoder_out.shape[0]:
            raise ValueError(f"{len(token_ids)} hypotheses for {encoder_out.shape[0]} rows")
        ys_in, ys_out = self._pad(token_ids, encoder_out.device)
        logp = self._logits(encoder_out, encoder_out_lens, ys_in).float().log_softmax(-1)
        mask = ys_out != IGNORE_ID
        tok = logp.gather(-1, ys_out.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        return (tok * mask).sum(-1)
