"""Per-cut cache of PLM token features, stored with a lhotse array writer.

Each cut gets a custom array field ``plm_feats`` (an ``lhotse.array.Array`` of shape ``(Lt, D)``
float32, read back with ``cut.load_custom("plm_feats")``) and ``cut.custom["plm_tokens"]`` (the
``Lt`` token strings). The arrays are written with lhotse's ``NumpyFilesWriter`` by default: h5py
(needed by ``NumpyHdf5Writer``) is not a dependency of this project, the ``.npy`` files are
lossless float32, need no extra package, are read with random access by any worker process and can
be inspected with plain numpy. ``LilcomChunkyWriter`` (``storage_type="lilcom_chunky"``) is the
compact alternative: one file, about 4x smaller, but lossy (lilcom keeps ~8 bits per value).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from gmot.plm.teacher import PLMTeacher

log = logging.getLogger(__name__)

STORAGE_TYPES = ("numpy_files", "lilcom_chunky", "numpy_hdf5")


def cut_text(cut, remove_spaces: bool = True) -> str:
    """The transcript of ``cut`` (supervision texts joined); spaces removed by default, since the
    ASR transcripts are Chinese characters and word-segmentation spaces are not part of them."""
    text = " ".join((s.text or "") for s in cut.supervisions)
    if remove_spaces:
        text = "".join(text.split())
    return text.strip()


def _writer(storage_type: str, storage_path: Path):
    from lhotse.features.io import LilcomChunkyWriter, NumpyFilesWriter, NumpyHdf5Writer

    if storage_type == "numpy_files":
        return NumpyFilesWriter(storage_path)
    if storage_type == "lilcom_chunky":
        return LilcomChunkyWriter(storage_path.with_suffix(".lca"), mode="wb")
    if storage_type == "numpy_hdf5":
        try:
            import h5py  # noqa: F401
        except ImportError as e:
            raise ImportError("storage_type='numpy_hdf5' needs h5py (pip install h5py)") from e
        return NumpyHdf5Writer(storage_path.with_suffix(".h5"), mode="w")
    raise ValueError(f"storage_type must be one of {STORAGE_TYPES}, got {storage_type!r}")


def compute_and_store(
    cuts: Iterable,
    teacher: PLMTeacher,
    storage_path: str | Path,
    *,
    storage_type: str = "numpy_files",
    batch_size: int = 32,
    remove_spaces: bool = True,
    progress: bool = True,
    desc: str = "PLM",
):
    """Run ``teacher`` on every cut's transcript and attach the features.

    Args:
        cuts: a lhotse ``CutSet`` (or iterable of cuts).
        teacher: the frozen PLM.
        storage_path: where the arrays go (a folder for ``numpy_files``; a file stem otherwise).
        storage_type: ``"numpy_files"`` (default, lossless), ``"lilcom_chunky"`` (lossy, compact)
            or ``"numpy_hdf5"`` (needs h5py).
        batch_size: transcripts per PLM forward pass.
        remove_spaces: drop whitespace from the transcripts before the PLM sees them.

    Returns ``(cuts_out, stats)``: an eager ``CutSet`` of the cuts that got features (each with
    ``plm_feats`` ``(Lt, D)`` and ``custom["plm_tokens"]``) and a dict of statistics
    (``num_cuts``, ``num_skipped``, ``skipped_examples``, ``num_tokens``, ``tokens_min/mean/max``,
    ``chars_per_token``). Cuts with an empty transcript (or one the PLM turns into no tokens) are
    skipped and reported in the log, never silently.
    """
    from lhotse import CutSet

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    storage_path = Path(storage_path)
    storage_path.parent.mkdir(parents=True, exist_ok=True)
    cuts = list(cuts)
    out, skipped, tok_lens, n_chars = [], [], [], 0
    with _writer(storage_type, storage_path) as writer:
        bar = tqdm(total=len(cuts), desc=desc, unit="cut", disable=not progress)
        for s in range(0, len(cuts), batch_size):
            batch = cuts[s : s + batch_size]
            texts = [cut_text(c, remove_spaces) for c in batch]
            good = [i for i, t in enumerate(texts) if t]
            skipped += [(batch[i].id, "empty transcript") for i, t in enumerate(texts) if not t]
            results = []
            if good:
                try:
                    feats, lens, toks = teacher.encode([texts[i] for i in good])
                    results = list(zip(good, feats.cpu().numpy(), lens.tolist(), toks))
                except ValueError:  # one bad text: fall back to one by one to name it
                    for i in good:
                        try:
                            f1, l1, t1 = teacher.encode([texts[i]])
                            results.append((i, f1[0].cpu().numpy(), int(l1[0]), t1[0]))
                        except ValueError as e:
                            skipped.append((batch[i].id, str(e)))
            for i, f, n, tk in results:
                cut = batch[i]
                arr = writer.store_array(cut.id, np.ascontiguousarray(f[:n], dtype=np.float32))
                cut = cut.with_custom("plm_feats", arr).with_custom("plm_tokens", list(tk))
                out.append(cut)
                tok_lens.append(n)
                n_chars += len(texts[i])
            bar.update(len(batch))
        bar.close()
    if skipped:
        log.warning(
            "%s: skipped %d of %d cuts with no PLM targets, e.g. %s",
            desc,
            len(skipped),
            len(cuts),
            "; ".join(f"{cid}: {why}" for cid, why in skipped[:5]),
        )
    lens_arr = np.asarray(tok_lens) if tok_lens else np.zeros(1)
    stats = {
        "num_cuts": len(out),
        "num_skipped": len(skipped),
        "skipped_examples": skipped[:5],
        "num_tokens": int(lens_arr.sum()) if tok_lens else 0,
        "tokens_min": int(lens_arr.min()),
        "tokens_mean": float(lens_arr.mean()),
        "tokens_max": int(lens_arr.max()),
        "chars_per_token": float(n_chars / max(1, int(lens_arr.sum()))) if tok_lens else 0.0,
    }
    return CutSet.from_cuts(out), stats


def load(cut) -> tuple[np.ndarray, list[str]]:
    """``(feats (Lt, D) float32, tokens)`` cached for ``cut``; clear error when it has none."""
    if not cut.has_custom("plm_feats"):
        raise KeyError(f"cut {cut.id!r} has no 'plm_feats' (run local/compute_plm_targets.py)")
    feats = np.asarray(cut.load_custom("plm_feats"), dtype=np.float32)
    tokens = list(cut.custom.get("plm_tokens", []))
    if feats.ndim != 2 or (tokens and len(tokens) != feats.shape[0]):
        raise ValueError(
            f"cut {cut.id!r}: plm_feats shape {feats.shape} does not match {len(tokens)} tokens"
        )
    return feats, tokens
