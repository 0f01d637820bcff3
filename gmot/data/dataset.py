"""Map-style lhotse dataset: a CutSet batch -> the gmot batch dict.

Batch keys: ``features`` (B, T, 80) float32 log-mel fbank at 100 Hz (padded with log(1e-10)),
``feature_lens`` (B,) int64 frames, ``token_ids`` list[list[int]], ``texts`` list[str],
``cut_ids`` list[str]; when the cuts carry PLM targets (custom array ``plm_feats``):
``plm_feats`` (B, Lt, Dp) float32 zero-padded, ``plm_lens`` (B,) int64, ``plm_tokens``
list[list[str]].

Randomness (speed perturbation, MUSAN mixing, frequency warping, SpecAugment) is drawn from a
generator seeded by (seed, epoch, the batch's cut ids), so batches are identical whatever the
number of workers and the global RNG state of the caller is left untouched. Cuts whose audio
cannot be read are reported (count and examples) and left out of the batch; an all-bad batch
yields ``None``.
"""

from __future__ import annotations

import contextlib
import logging
import random

import numpy as np
import torch

from gmot.data.filters import cut_text
from gmot.data.manifests import DropReport
from gmot.data.pitch import feature_kind
from gmot.data.seeding import hash_str
from gmot.data.tokens import TokenTable

LOG_EPS = float(np.log(1e-10))


@contextlib.contextmanager
def _seeded(seed: int):
    """Seed python/numpy/torch RNGs for a block and restore the previous states afterwards."""
    py, nps, th = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    try:
        yield
    finally:
        random.setstate(py)
        np.random.set_state(nps)
        torch.random.set_rng_state(th)


class AsrDataset(torch.utils.data.Dataset):
    """Turns a CutSet (one sampler batch) into tensors; see the module docstring.

    Args:
        tokens: the token table (OOV characters map to ``<unk>``; filter beforehand to drop).
        on_the_fly_feats: compute features from audio (default) or load precomputed ones.
        speed_perturb: factors 0.9/1.1 each with probability 1/3 (train only).
        spec_augment: a lhotse ``SpecAugment`` or None.
        freq_warp: a :class:`gmot.data.augment.FrequencyWarp` (applied before SpecAugment) or
          None.
        cut_mix: a lhotse ``CutMix`` (MUSAN) or None.
        seed: base seed; ``sampler`` (optional) provides ``.epoch`` for the per-batch seed.
        num_features: 80 (fbank) or 83 (fbank + pitch, :mod:`gmot.data.pitch`): computed on the
          fly, or the width precomputed features must have (a clear error otherwise).
    """

    def __init__(
        self,
        tokens: TokenTable,
        *,
        on_the_fly_feats: bool = True,
        speed_perturb: bool = False,
        spec_augment=None,
        freq_warp=None,
        cut_mix=None,
        seed: int = 42,
        sampler=None,
        num_features: int = 80,
    ) -> None:
        from gmot.data.pitch import make_extractor

        self.tokens = tokens
        self.on_the_fly_feats = on_the_fly_feats
        self.speed_perturb = speed_perturb
        self.spec_augment = spec_augment
        self.freq_warp = freq_warp
        self.cut_mix = cut_mix
        self.seed = seed
        self.sampler = sampler
        self.num_features = num_features
        self.extractor = make_extractor(num_features)
        self.drops = DropReport("unreadable cuts")

    def _batch_seed(self, cuts) -> int:
        epoch = int(getattr(self.sampler, "epoch", 0) or 0)
        h = hash_str("|".join(c.id for c in cuts))
        return (self.seed * 1_000_003 + epoch * 7919 + h) % (2**31)

    def _features(self, cut) -> np.ndarray:
        if self.on_the_fly_feats:
            audio = cut.load_audio()
            if audio.ndim == 2:
                audio = audio[0]
            if audio.size == 0 or not np.isfinite(audio).all():
                raise ValueError("empty or non-finite audio")
            return self.extractor.extract(audio.astype(np.float32), cut.sampling_rate)
        return cut.load_features()

    def __getitem__(self, cuts) -> dict | None:
        from lhotse.dataset.cut_transforms import PerturbSpeed

        cuts = list(cuts)
        with _seeded(self._batch_seed(cuts)):
            if self.speed_perturb:
                from lhotse import CutSet

                ps = PerturbSpeed(
                    factors=[0.9, 1.1], p=2 / 3, randgen=random.Random(random.random())
                )
                cuts = list(ps(CutSet.from_cuts(cuts)))
            if self.cut_mix is not None:
                from lhotse import CutSet

                cuts = list(self.cut_mix(CutSet.from_cuts(cuts)))
            feats, kept = [], []
            for c in cuts:
                try:
                    f = self._features(c)
                except Exception as e:  # noqa: BLE001 - any read/decode error: skip the cut
                    self.drops.add(
                        "unreadable audio/features", f"{c.id} [{type(e).__name__}: {e}]"[:200]
                    )
                    continue
                if f.ndim != 2 or f.shape[1] != self.num_features:
                    raise ValueError(
                        f"cut {c.id}: features of shape {tuple(f.shape)}, but the model reads "
                        f"(T, {self.num_features}) ({feature_kind(self.num_features)}); "
                        "precompute them to match (local/compute_fbank.py --pitch) or use "
                        "--on-the-fly-feats 1"
                    )
                feats.append(torch.as_tensor(f, dtype=torch.float32))
                kept.append(c)
            if self.drops.total:
                logging.warning(self.drops.summary())
            if not kept:
                return None
            lens = torch.tensor([f.shape[0] for f in feats], dtype=torch.int64)
            x = torch.full((len(feats), int(lens.max()), feats[0].shape[1]), LOG_EPS)
            for i, f in enumerate(feats):
                x[i, : f.shape[0]] = f
            if self.freq_warp is not None:
                x = self.freq_warp(x)
            if self.spec_augment is not None:
                x = self.spec_augment(x)
        texts = [cut_text(c) for c in kept]
        batch = {
            "features": x,
            "feature_lens": lens,
            "token_ids": [self.tokens.encode(t, oov="unk") for t in texts],
            "texts": texts,
            "cut_ids": [c.id for c in kept],
        }
        has_plm = [c.has_custom("plm_feats") for c in kept]
        if any(has_plm):
            if not all(has_plm):
                missing = [c.id for c, h in zip(kept, has_plm) if not h][:5]
                raise ValueError(f"some cuts lack PLM targets 'plm_feats': {missing}")
            arrs = [
                torch.as_tensor(np.asarray(c.load_custom("plm_feats")), dtype=torch.float32)
                for c in kept
            ]
            for c, a in zip(kept, arrs):
                if a.ndim != 2:
                    raise ValueError(f"cut {c.id}: plm_feats must be (Lt, D), got {tuple(a.shape)}")
            plm_lens = torch.tensor([a.shape[0] for a in arrs], dtype=torch.int64)
            p = torch.zeros(len(arrs), int(plm_lens.max()), arrs[0].shape[1])
            for i, a in enumerate(arrs):
                p[i, : a.shape[0]] = a
            batch["plm_feats"] = p
            batch["plm_lens"] = plm_lens
            batch["plm_tokens"] = [list(_custom(c, "plm_tokens") or []) for c in kept]
        return batch


def _custom(cut, key: str):
    """``cut.custom[key]`` for mono cuts, or the first track's value for mixed cuts."""
    custom = getattr(cut, "custom", None)
    if custom and key in custom:
        return custom[key]
    for t in getattr(cut, "tracks", []) or []:
        v = _custom(t.cut, key)
        if v is not None:
            return v
    return None
