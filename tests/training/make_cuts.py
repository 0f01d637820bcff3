"""A tiny synthetic lhotse corpus for the end-to-end train.py tests.

Sine-wave audio (one pitch per character, 0.25 s each) with short Chinese texts, PLM-like
targets as lhotse arrays (``plm_feats``, ``custom["plm_tokens"]``), a tokens.txt.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import soundfile as sf

CHARS = "你好我是中国人学生老师"
PLM_DIM = 16
SR = 16000


def make_corpus(root: Path, n_train: int = 8, n_dev: int = 2, seed: int = 0) -> dict[str, Path]:
    """Write wavs, ``cuts_train.jsonl.gz``, ``cuts_dev.jsonl.gz`` and ``lang/tokens.txt`` under
    ``root``; returns their paths."""
    from lhotse import CutSet, MonoCut, NumpyFilesWriter, Recording, SupervisionSegment

    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    plm_table = nrng.standard_normal((len(CHARS), PLM_DIM)).astype(np.float32)
    root = Path(root)
    (root / "wav").mkdir(parents=True, exist_ok=True)
    out = {}
    writer = NumpyFilesWriter(root / "plm")
    for split, n in (("train", n_train), ("dev", n_dev)):
        cuts = []
        for i in range(n):
            text = "".join(rng.choice(CHARS) for _ in range(rng.randint(2, 4)))
            t = np.arange(int(0.25 * SR)) / SR
            pieces = [np.zeros(int(0.1 * SR))]
            for ch in text:
                f = 200.0 + 90.0 * CHARS.index(ch)
                pieces.append(0.3 * np.sin(2 * np.pi * f * t))
            pieces.append(np.zeros(int(0.1 * SR)))
            audio = np.concatenate(pieces).astype(np.float32)
            audio += 0.01 * nrng.standard_normal(audio.shape).astype(np.float32)
            path = root / "wav" / f"{split}-{i}.wav"
            sf.write(path, audio, SR)
            rec = Recording.from_file(path, recording_id=f"{split}-{i}")
            sup = SupervisionSegment(
                id=rec.id, recording_id=rec.id, start=0.0, duration=rec.duration, text=text
            )
            cut = MonoCut(
                id=rec.id, start=0.0, duration=rec.duration, channel=0, recording=rec,
                supervisions=[sup],
            )  # fmt: skip
            plm = plm_table[[CHARS.index(c) for c in text]]
            cut.custom = {"plm_feats": writer.store_array(cut.id, plm)}
            cut.custom["plm_tokens"] = list(text)
            cuts.append(cut)
        p = root / f"cuts_{split}.jsonl.gz"
        CutSet.from_cuts(cuts).to_file(p)
        out[split] = p
    (root / "lang").mkdir(exist_ok=True)
    lines = ["<blk> 0", "<sos/eos> 1", "<unk> 2"] + [f"{c} {i + 3}" for i, c in enumerate(CHARS)]
    (root / "lang" / "tokens.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    out["lang"] = root / "lang"
    return out
