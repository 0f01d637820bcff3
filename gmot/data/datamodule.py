"""AsrDataModule: lazy cut manifests -> filtered, bucketed, DDP-aware DataLoaders.

Typical use::

    parser = argparse.ArgumentParser(); AsrDataModule.add_arguments(parser)
    args = parser.parse_args(); dm = AsrDataModule(args)
    train_dl = dm.train_dataloader(dm.train_cuts(), sampler_state_dict=ckpt.get("sampler"))
    for epoch in ...: train_dl.sampler.set_epoch(epoch); for batch in train_dl: ...

Batches are dicts (see :mod:`gmot.data.dataset`); a batch whose cuts were all unreadable is
skipped by the loader (reported in the log). ``loader.sampler.state_dict()`` resumes exactly
when ``--num-workers 0``; with workers the sampler runs ahead by the prefetched batches
(lhotse semantics), so a resume may skip up to ``num_workers * prefetch_factor`` batches.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from gmot.data.dataset import AsrDataset
from gmot.data.filters import CutFilter
from gmot.data.manifests import cuts_path
from gmot.data.tokens import TokenTable


def _str2bool(v: str | bool) -> bool:
    if isinstance(v, bool):
        return v
    if v.lower() in ("true", "1", "yes", "y"):
        return True
    if v.lower() in ("false", "0", "no", "n"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean, got {v!r}")


class _SkipNone(torch.utils.data.DataLoader):
    """DataLoader that drops ``None`` batches (all cuts unreadable)."""

    def __iter__(self):
        for b in super().__iter__():
            if b is not None:
                yield b


class AsrDataModule:
    """Builds train/valid/test DataLoaders from ``args`` (see :meth:`add_arguments`)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        lang = Path(getattr(args, "lang_dir", "data/lang_char"))
        self.tokens: TokenTable | None = getattr(args, "token_table", None)
        if self.tokens is None and (lang / "tokens.txt").is_file():
            self.tokens = TokenTable.load(lang / "tokens.txt")
        self.filters: dict[str, CutFilter] = {}

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        g = parser.add_argument_group("data", "data loading and augmentation (gmot.data)")
        g.add_argument("--corpus", default="hsk", help="manifest prefix: hsk or aishell")
        g.add_argument("--manifest-dir", type=Path, default=Path("data/manifests"))
        g.add_argument("--lang-dir", type=Path, default=Path("data/lang_char"))
        g.add_argument(
            "--max-duration", type=float, default=200.0, help="seconds of audio per batch"
        )
        g.add_argument("--bucketing-sampler", type=_str2bool, default=True)
        g.add_argument("--num-buckets", type=int, default=30)
        g.add_argument("--shuffle", type=_str2bool, default=True)
        g.add_argument("--drop-last", type=_str2bool, default=True)
        g.add_argument("--num-workers", type=int, default=2)
        g.add_argument("--on-the-fly-feats", type=_str2bool, default=True)
        g.add_argument("--enable-spec-aug", type=_str2bool, default=True)
        g.add_argument(
            "--spec-aug-time-warp-factor", type=int, default=80, help="<1 disables warping"
        )
        g.add_argument("--enable-musan", type=_str2bool, default=False)
        g.add_argument(
            "--musan-cuts",
            type=Path,
            default=None,
            help="default: <manifest-dir>/musan_cuts.jsonl.gz",
        )
        g.add_argument("--speed-perturb", type=_str2bool, default=False)
        g.add_argument("--min-utt-duration", type=float, default=1.0)
        g.add_argument("--max-utt-duration", type=float, default=12.0)
        g.add_argument(
            "--oov", default="skip", choices=["skip", "unk"], help="cuts with OOV characters"
        )
        g.add_argument("--seed", type=int, default=42)

    # manifests -----------------------------------------------------------------------------------
    def _load(self, split: str):
        from lhotse import load_manifest_lazy

        return load_manifest_lazy(cuts_path(self.args.manifest_dir, self.args.corpus, split))

    def train_cuts(self):
        return self._load("train")

    def dev_cuts(self):
        return self._load("dev")

    def test_cuts(self):
        return self._load("test")

    def filter_cuts(self, cuts, name: str):
        """Lazily filter ``cuts`` (durations, empty text, OOV, too short); drops are logged."""
        a = self.args
        f = CutFilter(
            self.tokens,
            min_duration=getattr(a, "min_utt_duration", 1.0),
            max_duration=getattr(a, "max_utt_duration", 12.0),
            oov=getattr(a, "oov", "skip"),
            what=f"{name} cuts",
        )
        self.filters[name] = f
        return cuts.filter(f)

    def report_filters(self) -> dict[str, str]:
        """Log and return the drop summaries of all filters seen so far (main process only)."""
        return {k: f.report() for k, f in self.filters.items()}

    # loaders -------------------------------------------------------------------------------------
    def _dist(self) -> tuple[int, int]:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_world_size(), torch.distributed.get_rank()
        return 1, 0

    def _sampler(self, cuts, *, shuffle: bool, drop_last: bool, bucketing: bool):
        from lhotse.dataset import DynamicBucketingSampler, SimpleCutSampler

        world_size, rank = self._dist()
        a = self.args
        if bucketing:
            return DynamicBucketingSampler(
                cuts,
                max_duration=a.max_duration,
                shuffle=shuffle,
                num_buckets=a.num_buckets,
                drop_last=drop_last,
                seed=a.seed,
                world_size=world_size,
                rank=rank,
                buffer_size=getattr(a, "bucket_buffer_size", 20000),
            )
        return SimpleCutSampler(
            cuts,
            max_duration=a.max_duration,
            shuffle=shuffle,
            drop_last=drop_last,
            seed=a.seed,
            world_size=world_size,
            rank=rank,
        )

    def _loader(self, dataset, sampler, num_workers: int):
        _, rank = self._dist()

        def init_fn(worker_id: int) -> None:
            torch.manual_seed(self.args.seed + 1000 * rank + worker_id)
            torch.set_num_threads(1)

        return _SkipNone(
            dataset,
            sampler=sampler,
            batch_size=None,
            num_workers=num_workers,
            persistent_workers=False,
            worker_init_fn=init_fn if num_workers > 0 else None,
        )

    def _require_tokens(self) -> TokenTable:
        if self.tokens is None:
            raise FileNotFoundError(
                f"token table {Path(self.args.lang_dir) / 'tokens.txt'} not found; run "
                "./prepare.sh --stage 2 --stop-stage 2"
            )
        return self.tokens

    def train_dataloader(self, cuts, sampler_state_dict: dict | None = None):
        """Shuffled, filtered, augmented training loader; restores the sampler state if given."""
        from lhotse.dataset import SpecAugment

        a = self.args
        tokens = self._require_tokens()
        cuts = self.filter_cuts(cuts, "train")
        spec = None
        if a.enable_spec_aug:
            spec = SpecAugment(
                time_warp_factor=a.spec_aug_time_warp_factor,
                num_frame_masks=10,
                features_mask_size=27,
                num_feature_masks=2,
                frames_mask_size=100,
            )
        cut_mix = None
        if a.enable_musan:
            from lhotse import load_manifest
            from lhotse.dataset import CutMix

            musan = a.musan_cuts or Path(a.manifest_dir) / "musan_cuts.jsonl.gz"
            if not Path(musan).is_file():
                raise FileNotFoundError(
                    f"--enable-musan: {musan} not found; run ./prepare.sh --stage 4 --stop-stage 4 "
                    "--musan-dir <local MUSAN copy>"
                )
            cut_mix = CutMix(
                load_manifest(musan), p=0.5, snr=(10, 20), preserve_id=True, seed=a.seed
            )
        sampler = self._sampler(
            cuts, shuffle=a.shuffle, drop_last=a.drop_last, bucketing=a.bucketing_sampler
        )
        if sampler_state_dict is not None:
            logging.info("restoring sampler state")
            sampler.load_state_dict(sampler_state_dict)
        ds = AsrDataset(
            tokens,
            on_the_fly_feats=a.on_the_fly_feats,
            speed_perturb=a.speed_perturb,
            spec_augment=spec,
            cut_mix=cut_mix,
            seed=a.seed,
            sampler=sampler,
        )
        return self._loader(ds, sampler, a.num_workers)

    def valid_dataloader(self, cuts):
        """Unshuffled, unaugmented loader for validation (filtered like training)."""
        a = self.args
        cuts = self.filter_cuts(cuts, "valid")
        sampler = self._sampler(cuts, shuffle=False, drop_last=False, bucketing=a.bucketing_sampler)
        ds = AsrDataset(self._require_tokens(), on_the_fly_feats=a.on_the_fly_feats, seed=a.seed)
        return self._loader(ds, sampler, min(a.num_workers, 2))

    def test_dataloader(self, cuts):
        """Unshuffled loader over all cuts (no duration filter: every test utterance is scored;
        unreadable audio is still reported and skipped)."""
        a = self.args
        sampler = self._sampler(cuts, shuffle=False, drop_last=False, bucketing=False)
        ds = AsrDataset(self._require_tokens(), on_the_fly_feats=a.on_the_fly_feats, seed=a.seed)
        return self._loader(ds, sampler, a.num_workers)
