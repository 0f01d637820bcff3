"""Chunk-by-chunk encoding with a causal Zipformer (issue 23).

:func:`encode_streaming` is the reference loop around :meth:`Zipformer.streaming_forward`: it cuts
whole utterances into chunks of ``encoder.chunk_shift`` fbank frames (2 x ``chunk_size[0]`` 50 Hz
frames) plus ``encoder.right_padding`` (13) look-ahead frames, carries the states and joins the
outputs. In eval mode the result equals ``encoder(x, x_lens)`` (simulated streaming with the same
chunk size and left context) on every valid frame.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gmot.models.zipformer.encoder import Zipformer, output_lengths

__all__ = ["encode_streaming"]


def encode_streaming(encoder: Zipformer, x: Tensor, x_lens: Tensor) -> tuple[Tensor, Tensor]:
    """Encode whole utterances chunk by chunk.

    Args:
        encoder: a causal :class:`Zipformer` in eval mode.
        x: (B, T, num_features) fbank at 100 Hz (zero-padded past each length).
        x_lens: (B,) valid frames per utterance, each in [9, T].
    Returns:
        out (B, T', output_dim) at 25 Hz with T' = ((T - 7) // 2 + 1) // 2 and out_lens (B,),
        as :meth:`Zipformer.forward` returns them (frames past out_lens are not defined).
    """
    if x.dim() != 3 or x.shape[-1] != encoder.num_features:
        raise ValueError(f"x must be (B, T, {encoder.num_features}), got {tuple(x.shape)}")
    if x_lens.shape != (x.shape[0],):
        raise ValueError(f"x_lens must be ({x.shape[0]},), got {tuple(x_lens.shape)}")
    x_lens = x_lens.to(device=x.device, dtype=torch.int64)
    if int(x_lens.min()) < 9 or int(x_lens.max()) > x.shape[1]:
        raise ValueError(
            f"x_lens must lie in [9, T={x.shape[1]}], got min {int(x_lens.min())} "
            f"max {int(x_lens.max())}"
        )
    shift, width = encoder.chunk_shift, encoder.chunk_input_frames
    t50 = (x.shape[1] - 7) // 2
    num_chunks = max(1, -(-t50 // (shift // 2)))
    total = (num_chunks - 1) * shift + width
    x = torch.nn.functional.pad(x, (0, 0, 0, max(0, total - x.shape[1])))
    states = encoder.get_init_states(x.shape[0], x.device)
    outs = []
    for c in range(num_chunks):
        start = c * shift
        lens = (x_lens - start).clamp(min=0, max=width)
        out, _, states = encoder.streaming_forward(x[:, start : start + width], lens, states)
        outs.append(out)
    t_out = (t50 + 1) // 2
    return torch.cat(outs, dim=1)[:, :t_out], output_lengths(x_lens)
