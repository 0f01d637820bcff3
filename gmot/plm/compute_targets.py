"""CLI: compute and cache PLM token features for a corpus' train/dev/test cuts.

Reads ``<manifest-dir>/<corpus>_cuts_{split}.jsonl.gz``, runs the PLM on each cut's transcript,
stores ``(Lt, D)`` float32 arrays under ``<output-dir>/<corpus>_plm_feats_{split}/`` and writes
``<output-dir>/<corpus>_cuts_{split}.jsonl.gz`` with the ``plm_feats`` custom array and
``custom["plm_tokens"]`` attached, plus ``<output-dir>/<corpus>_plm_info.json`` (PLM name, layer,
dim, per-split token statistics, timing). Re-runnable: a split whose output manifest exists is
skipped unless ``--force``.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from pathlib import Path

import torch

from gmot.plm.cache import STORAGE_TYPES, compute_and_store
from gmot.plm.teacher import PLMTeacher

log = logging.getLogger("compute_plm_targets")


def get_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--corpus", required=True, help="corpus name, e.g. hsk or aishell")
    p.add_argument("--manifest-dir", type=Path, default=Path("data/manifests"))
    p.add_argument("--output-dir", type=Path, default=Path("data/plm"))
    p.add_argument(
        "--plm-model",
        required=True,
        help="local transformers model directory or hub name (e.g. bert-base-chinese)",
    )
    p.add_argument("--layer", type=int, default=-1, help="hidden_states index (0 = embeddings)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="cpu")
    p.add_argument("--splits", nargs="+", default=["train", "dev", "test"])
    p.add_argument(
        "--storage-type",
        choices=STORAGE_TYPES,
        default="numpy_files",
        help="lhotse writer: numpy_files (lossless, default), lilcom_chunky (lossy, compact), "
        "numpy_hdf5 (needs h5py)",
    )
    p.add_argument("--text-prefix", default="", help='e.g. "passage: " for E5 models')
    p.add_argument(
        "--expand-to-chars",
        action="store_true",
        help="one vector per character (copy of the covering word piece's vector)",
    )
    p.add_argument(
        "--drop-empty-tokens",
        action="store_true",
        help="drop tokens covering no character (the lone '▁' piece of XLM-R/E5 vocabularies)",
    )
    p.add_argument("--keep-spaces", action="store_true", help="do not strip spaces from texts")
    p.add_argument("--force", action="store_true", help="recompute existing outputs")
    p.add_argument("--num-threads", type=int, default=0, help="torch CPU threads (0 = default)")
    return p


def main(argv: list[str] | None = None) -> int:
    from lhotse import CutSet

    args = get_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s [%(name)s] %(message)s"
    )
    if args.num_threads > 0:
        torch.set_num_threads(args.num_threads)
    inputs = {s: args.manifest_dir / f"{args.corpus}_cuts_{s}.jsonl.gz" for s in args.splits}
    missing = [str(p) for p in inputs.values() if not p.is_file()]
    if missing:
        raise SystemExit(
            f"missing manifest(s): {', '.join(missing)} (run the manifest stage of prepare.sh)"
        )
    args.output_dir.mkdir(parents=True, exist_ok=True)
    todo = {
        s: p
        for s, p in inputs.items()
        if args.force or not (args.output_dir / f"{args.corpus}_cuts_{s}.jsonl.gz").is_file()
    }
    for s in inputs:
        if s not in todo:
            log.info("%s: %s exists, skipping (use --force to recompute)", s, args.output_dir)
    if not todo:
        return 0
    teacher = PLMTeacher(
        args.plm_model,
        layer=args.layer,
        device=args.device,
        batch_size=args.batch_size,
        text_prefix=args.text_prefix,
        expand_to_chars=args.expand_to_chars,
        drop_empty_tokens=args.drop_empty_tokens,
    )
    log.info(
        "PLM %s: layer %d of %d, dim %d",
        teacher.name,
        teacher.layer,
        teacher.num_layers,
        teacher.dim,
    )
    info_path = args.output_dir / f"{args.corpus}_plm_info.json"
    info = json.loads(info_path.read_text()) if info_path.is_file() else {}
    info.update(
        {
            "plm_model": teacher.name,
            "layer": teacher.layer,
            "num_layers": teacher.num_layers,
            "dim": teacher.dim,
            "storage_type": args.storage_type,
            "text_prefix": args.text_prefix,
            "expand_to_chars": args.expand_to_chars,
            "drop_empty_tokens": args.drop_empty_tokens,
        }
    )
    info.setdefault("splits", {})
    for split, src in todo.items():
        dst = args.output_dir / f"{args.corpus}_cuts_{split}.jsonl.gz"
        storage = args.output_dir / f"{args.corpus}_plm_feats_{split}"
        for old in (storage, storage.with_suffix(".lca"), storage.with_suffix(".h5")):
            if old.is_dir():
                shutil.rmtree(old)
            elif old.is_file():
                old.unlink()
        t0 = time.perf_counter()
        cuts = CutSet.from_file(src)
        out, stats = compute_and_store(
            cuts,
            teacher,
            storage,
            storage_type=args.storage_type,
            batch_size=args.batch_size,
            remove_spaces=not args.keep_spaces,
            desc=f"{args.corpus} {split}",
        )
        tmp = dst.with_name(dst.name + ".tmp.jsonl.gz")
        out.to_file(tmp)
        tmp.replace(dst)
        stats["seconds"] = round(time.perf_counter() - t0, 2)
        log.info(
            "%s: %d cuts (%d skipped), %d PLM tokens, per cut min/mean/max %d/%.1f/%d, "
            "%.2f chars per token, %.1f s -> %s",
            split,
            stats["num_cuts"],
            stats["num_skipped"],
            stats["num_tokens"],
            stats["tokens_min"],
            stats["tokens_mean"],
            stats["tokens_max"],
            stats["chars_per_token"],
            stats["seconds"],
            dst,
        )
        info["splits"][split] = {k: v for k, v in stats.items() if k != "skipped_examples"}
        info_path.write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", "utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
