"""Tiny transducer models for the decoding tests.

Uses gmot.transducer's Decoder/Joiner when that package is importable, else local modules
with the same interface (stateless decoder: embedding + causal depthwise conv over the last
``context_size`` tokens; joiner: tanh(enc_proj + dec_proj) -> output_linear).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gmot.transducer import Decoder, Joiner


class TinyTransducer(nn.Module):
    """decoder + joiner (no encoder: tests feed random encoder_out directly)."""

    def __init__(self, vocab_size=7, encoder_dim=6, decoder_dim=8, joiner_dim=8, context_size=2):
        super().__init__()
        self.decoder = Decoder(vocab_size, decoder_dim, 0, context_size)
        self.joiner = Joiner(encoder_dim, decoder_dim, joiner_dim, vocab_size)


class TableJoiner(nn.Module):
    """Joiner whose logits are a lookup ``table[t, last_token]`` (T, V, V).

    Works with :class:`OneHotDecoder` (context 1: decoder_out = one-hot of the last token) and
    encoder_out = one-hot of the frame index (C = T); both projections are identities.
    """

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.register_buffer("table", table)
        self.encoder_proj = nn.Identity()
        self.decoder_proj = nn.Identity()

    def forward(self, encoder_out, decoder_out, project_input: bool = True):
        return torch.einsum("...t,...u,tuv->...v", encoder_out, decoder_out, self.table)


class OneHotDecoder(nn.Module):
    def __init__(self, vocab_size: int, blank_id: int = 0):
        super().__init__()
        self.vocab_size, self.blank_id, self.context_size = vocab_size, blank_id, 1

    def forward(self, y: torch.Tensor, need_pad: bool = True) -> torch.Tensor:
        return F.one_hot(y.clamp(min=0), self.vocab_size).float()


class TableModel(nn.Module):
    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.decoder = OneHotDecoder(table.shape[-1])
        self.joiner = TableJoiner(table)

    def encoder_out(self) -> tuple[torch.Tensor, torch.Tensor]:
        T = self.joiner.table.shape[0]
        return torch.eye(T).unsqueeze(0), torch.tensor([T])


class LengthScorer:
    """Attention-decoder stand-in: log-likelihood = -|len(hyp) - target_len|."""

    def __init__(self, target_len: int):
        self.target_len = target_len

    def score(self, encoder_out, encoder_out_lens, token_ids):
        return torch.tensor([-abs(len(t) - self.target_len) for t in token_ids], dtype=torch.float)


class TinyAsr(nn.Module):
    """AsrModel's decoding interface: forward_encoder (``num_features``-dim input, 80 = fbank,
    2x subsampling), a transducer head, a CTC head (ctc_output -> log-probs) and an attention
    scorer; ``model_config`` holds ``num_features`` as a checkpoint's does."""

    def __init__(self, vocab_size: int = 7, dim: int = 6, num_features: int = 80):
        super().__init__()
        torch.manual_seed(0)
        self.model_config = {"num_features": num_features}
        self.enc = nn.Linear(num_features, dim)
        self.norm = nn.LayerNorm(dim)
        head = TinyTransducer(vocab_size=vocab_size, encoder_dim=dim)
        self.decoder, self.joiner = head.decoder, head.joiner
        self.ctc_lin = nn.Linear(dim, vocab_size)
        self.attention_decoder = LengthScorer(2)
        with torch.no_grad():
            self.joiner.output_linear.weight.mul_(4)
            self.ctc_lin.weight.mul_(4)

    def forward_encoder(self, x, x_lens):
        return self.norm(self.enc(x))[:, ::2] * 2, (x_lens + 1) // 2

    def ctc_output(self, encoder_out):
        return self.ctc_lin(encoder_out).log_softmax(-1)
