"""A tiny learnable synthetic ASR task for the training tests (no audio, no lhotse).

Each token id has a fixed random 80-dim "fbank" pattern; an utterance is its tokens' patterns,
``FRAMES_PER_TOKEN`` frames each, plus noise, so a tiny model can learn it in a few steps.
PLM-like targets are fixed random vectors per token (dim ``PLM_DIM``).
A deterministic sampler with ``state_dict``/``load_state_dict``/``set_epoch`` mimics lhotse's.
"""

from __future__ import annotations

import os
import random
import time
from typing import Any

import torch

VOCAB = 12  # 0 blank, 1 sos/eos, 2 unk, 3..11 "characters"
PLM_DIM = 16
FRAMES_PER_TOKEN = 14


def make_utterances(n: int = 8, seed: int = 0) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    patterns = torch.randn(VOCAB, 80, generator=g)
    plm = torch.randn(VOCAB, PLM_DIM, generator=g)
    utts = []
    for i in range(n):
        L = 2 + i % 3
        y = torch.randint(3, VOCAB, (L,), generator=g).tolist()
        feats = patterns[y].repeat_interleave(FRAMES_PER_TOKEN, 0)
        feats = torch.cat([torch.zeros(6, 80), feats, torch.zeros(6, 80)])
        feats = feats + 0.3 * torch.randn(feats.shape, generator=g)
        utts.append(
            {
                "id": f"utt{i}",
                "feats": feats,
                "y": y,
                "plm": plm[y].clone(),
                "tokens": [str(t) for t in y],
            }
        )
    return utts


def collate(utts: list[dict]) -> dict:
    B = len(utts)
    T = max(u["feats"].shape[0] for u in utts)
    Lt = max(len(u["y"]) for u in utts)
    feats = torch.zeros(B, T, 80)
    plm = torch.zeros(B, Lt, PLM_DIM)
    for b, u in enumerate(utts):
        feats[b, : u["feats"].shape[0]] = u["feats"]
        plm[b, : len(u["y"])] = u["plm"]
    return {
        "features": feats,
        "feature_lens": torch.tensor([u["feats"].shape[0] for u in utts]),
        "token_ids": [list(u["y"]) for u in utts],
        "texts": [" ".join(u["tokens"]) for u in utts],
        "cut_ids": [u["id"] for u in utts],
        "plm_feats": plm,
        "plm_lens": torch.tensor([len(u["y"]) for u in utts]),
        "plm_tokens": [u["tokens"] for u in utts],
    }


class SyntheticSampler:
    """Shuffles utterance indices into batches per epoch; resumable at batch granularity."""

    def __init__(self, n: int, batch_size: int, seed: int = 0, world_size: int = 1, rank: int = 0):
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.world_size, self.rank = world_size, rank
        self.epoch = 0
        self.pos = 0  # batches already yielded in this epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.pos = 0

    def batches(self) -> list[list[int]]:
        idx = list(range(self.n))
        random.Random(self.seed + self.epoch).shuffle(idx)
        out = [idx[i : i + self.batch_size] for i in range(0, self.n, self.batch_size)]
        return [b[self.rank :: self.world_size] for b in out]

    def __iter__(self):
        bs = self.batches()
        while self.pos < len(bs):
            self.pos += 1
            yield bs[self.pos - 1]
        self.pos = 0

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "pos": self.pos}

    def load_state_dict(self, st: dict) -> None:
        self.epoch, self.pos = int(st["epoch"]), int(st["pos"])


class SyntheticLoader:
    def __init__(self, utts: list[dict], sampler: SyntheticSampler):
        self.utts, self.sampler = utts, sampler

    def __iter__(self):
        delay = float(os.environ.get("SYNTHETIC_BATCH_DELAY", "0"))  # to make kill tests robust
        nan_at = os.environ.get("SYNTHETIC_NAN_AT")  # "rank:epoch:pos": poison that batch
        for b in self.sampler:
            time.sleep(delay)
            batch = collate([self.utts[i] for i in b])
            s = self.sampler
            if nan_at == f"{s.rank}:{s.epoch}:{s.pos}":
                batch["features"][0, 10, :] = float("nan")
            yield batch


def data_factory(params: Any, sampler_state: dict | None, world_size: int, rank: int):
    """``data_factory`` for :func:`gmot.training.train.main` (picklable, module level)."""
    utts = make_utterances(int(getattr(params, "synthetic_n", 8)))
    sampler = SyntheticSampler(len(utts), 4, seed=params.seed, world_size=world_size, rank=rank)
    if sampler_state is not None:
        sampler.load_state_dict(sampler_state)
    return SyntheticLoader(utts, sampler), SyntheticLoader(utts[:4], SyntheticSampler(4, 4))


def write_tokens(path) -> None:
    lines = ["<blk> 0", "<sos/eos> 1", "<unk> 2"] + [f"{t} {t}" for t in range(3, VOCAB)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
