"""Training diagnostics: does the model's loss depend on the audio at all?

A transducer's prediction network is a language model over the training transcripts. Early in
training (or when the data are small and repetitive) it can lower the loss on its own while the
encoder still ignores the audio; greedy decoding then emits a memorised word or two and blanks.
:func:`audio_dependence` measures this directly: the same transcripts are scored with their own
audio, with another utterance's audio, and with content-free features. If the three losses are
close, the encoder contributes little and no decoding knob will help; train longer first.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["audio_dependence", "mismatch_order"]


def mismatch_order(lens: Tensor) -> list[int]:
    """A derangement of the batch that pairs every utterance with one of similar length.

    Args:
      lens: (B,) feature lengths in frames, B >= 2.
    Returns:
      perm (list of B ints) with ``perm[i] != i``: utterance ``i``'s transcript is scored with the
      audio of utterance ``perm[i]``; neighbours in duration order are paired (cyclic shift of the
      duration-sorted order), so the lengths of the swapped audio stay close to the originals.
    """
    if lens.ndim != 1 or lens.shape[0] < 2:
        raise ValueError(f"need lens of shape (B,) with B >= 2; got {tuple(lens.shape)}")
    order = torch.argsort(lens, stable=True).tolist()
    perm = [0] * len(order)
    for k, i in enumerate(order):
        perm[i] = order[(k + 1) % len(order)]
    return perm


@torch.no_grad()
def audio_dependence(
    model: nn.Module,
    features: Tensor,
    feature_lens: Tensor,
    token_ids: list[list[int]],
    *,
    prune_range: int = 5,
) -> dict[str, dict[str, float]]:
    """Per-frame losses of ``model``'s heads for the same transcripts under three inputs.

    Args:
      model: an :class:`gmot.models.asr_model.AsrModel` (put in eval mode by the caller).
      features: (B, T, F) fbank, zero padded; feature_lens (B,) valid frames; B >= 2.
      token_ids: B lists of token ids, the transcripts.
      prune_range: pruned RNN-T range, as in training.
    Returns:
      ``{"own": ..., "other": ..., "constant": ...}``, each a dict head -> loss per encoder
      frame (nats; ``simple``/``pruned`` for the transducer, ``ctc``):
        own      - every transcript with its own audio (the ordinary validation loss);
        other    - with the audio of another utterance of similar length (:func:`mismatch_order`);
        constant - with content-free features: each frame replaced by the utterance's mean
                   feature vector (same length and level, no phonetic content).
      A model that uses the audio has ``own`` clearly below the other two. Losses that are
      infinite (a CTC transcript longer than the swapped audio) are reported as ``inf``.
    """
    if features.ndim != 3 or feature_lens.shape != (features.shape[0],):
        raise ValueError(
            f"features must be (B, T, F) with feature_lens (B,); got {tuple(features.shape)} "
            f"and {tuple(feature_lens.shape)}"
        )
    B, T, _ = features.shape
    perm = mismatch_order(feature_lens)
    mask = (torch.arange(T)[None, :] < feature_lens[:, None]).unsqueeze(-1)  # (B, T, 1)
    mean = (features * mask).sum(1, keepdim=True) / feature_lens.view(B, 1, 1)  # (B, 1, F)
    inputs = {
        "own": (features, feature_lens),
        "other": (features[perm], feature_lens[perm]),
        "constant": (torch.where(mask, mean.expand_as(features), features), feature_lens),
    }
    out: dict[str, dict[str, float]] = {}
    for name, (x, x_lens) in inputs.items():
        res = model(x, x_lens, token_ids, compute_gmot=False, prune_range=prune_range)
        frames = float(res["info"]["frames"])
        out[name] = {
            k: float(v) / frames for k, v in res.items() if k in ("simple", "pruned", "ctc")
        }
    return out
