"""AsrDataModule: lazy cut manifests -> filtered, bucketed, DDP-aware DataLoaders.

Typical use::

    parser = argparse.ArgumentParser(); AsrDataModule.add_arguments(parser)
    args = parser.parse_args(); dm = AsrDataModule(args)
    train_dl = dm.train_dataloader(dm.train_cuts(), sampler_state_dict=ckpt.get("sampler"))
    for epoch in ...: train_dl.sampler.set_epoch(epoch); for batch in train_dl: ...

Batches are dicts (see :mod:`gmot.data.dataset`); a batch whose cuts were all unreadable is
skipped by the loader (reported in the log).

Resuming: ``loader.sampler.state_dict()`` is the state of the sampler in the main process, which
with ``--num-workers N > 0`` runs ahead of training by the batches the DataLoader has prefetched
(up to ``N * prefetch_factor``). :meth:`ResumableLoader.consumed_sampler_state` is the state as of
the last batch the loader has handed out (whatever the number of workers): restoring it resumes
with exactly the next batch.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
from pathlib import Path
from typing import Any

import torch

from gmot.cli import add_lang_dir_argument, str2bool
from gmot.data.dataset import AsrDataset
from gmot.data.filters import CutFilter
from gmot.data.manifests import cuts_path
from gmot.data.pitch import input_dim
from gmot.data.tokens import TokenTable


class _TrackedSampler:
    """Iterates a sampler for a :class:`ResumableLoader` and records the sampler's state after
    each batch it draws (the DataLoader draws indices in the main process, ahead of training)."""

    def __init__(self, sampler, loader: ResumableLoader) -> None:
        self.sampler = sampler
        self.loader = loader

    def __iter__(self):
        loader = self.loader
        loader._drawn = 0
        loader._states = {}
        for batch in self.sampler:
            loader._drawn += 1
            if hasattr(self.sampler, "state_dict"):
                loader._states[loader._drawn] = copy.deepcopy(self.sampler.state_dict())
            yield batch

    def __len__(self) -> int:
        return len(self.sampler)


class ResumableLoader(torch.utils.data.DataLoader):
    """DataLoader over a lhotse sampler (``batch_size=None``) that drops ``None`` batches (all
    cuts unreadable) and knows the sampler state as of the batches it has handed out.

    ``consumed`` counts the sampler batches whose result has been handed out (or dropped as
    ``None``) in the current pass; :meth:`consumed_sampler_state` is the sampler's
    ``state_dict()`` right after it drew that many batches, i.e. what a resumed loader needs to
    continue with the next batch, however far the workers have prefetched.

    ``cut_filter`` (set by the train and valid loaders of :class:`AsrDataModule`) reports at the
    end of each complete pass what it dropped in it, every pass unless ``report_every_pass`` is
    False (then only when the drops changed); None (the test loader): nothing to report.
    """

    cut_filter: CutFilter | None = None
    report_every_pass: bool = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.consumed = 0
        self._drawn = 0
        self._states: dict[int, dict] = {}
        self._start_state: dict | None = None

    @property
    def _index_sampler(self):
        # DataLoader iterates this (batch_size=None: the sampler itself) in the main process
        return _TrackedSampler(self.sampler, self)

    def __iter__(self):
        if hasattr(self.sampler, "state_dict"):
            self._start_state = copy.deepcopy(self.sampler.state_dict())
        self.consumed = 0
        it = super().__iter__()  # created now: the caller may depend on when (RNG draw)
        return self._drop_none(it)

    def _drop_none(self, it):
        for b in it:
            self.consumed += 1
            for k in [k for k in self._states if k < self.consumed]:
                del self._states[k]
            if b is not None:
                yield b
        if self.cut_filter is not None:  # a complete pass: report what the filter dropped in it
            self.cut_filter.end_pass(log_if_same=self.report_every_pass)

    def consumed_sampler_state(self) -> dict | None:
        """The sampler's state right after the last batch handed out (None: no ``state_dict``).

        Before the first batch of a pass this is the sampler's state when the pass began; when no
        pass has started, its current state.
        """
        if not hasattr(self.sampler, "state_dict"):
            return None
        if self.consumed == 0:
            st = self._start_state if self._start_state is not None else self.sampler.state_dict()
            return copy.deepcopy(st)
        if self.consumed not in self._states:
            raise RuntimeError(
                f"sampler state after batch {self.consumed} of this pass was not recorded"
            )
        return copy.deepcopy(self._states[self.consumed])


def _add_augmentation_arguments(g) -> None:
    """The training-augmentation flags of :meth:`AsrDataModule.add_arguments` (into its group)."""
    a = g.add_argument
    a(
        "--enable-spec-aug",
        type=str2bool,
        default=True,
        help="SpecAugment (time warp, frequency and time masks) on training batches.",
    )
    a(
        "--spec-aug-time-warp-factor",
        type=int,
        default=80,
        help="SpecAugment time-warp factor in frames; < 1 disables warping.",
    )
    a(
        "--freq-warp",
        type=float,
        default=0.0,
        help="Frequency warping of training features (gmot.data.augment.FrequencyWarp): each "
        "utterance's log-mel spectrum is stretched along frequency by a factor drawn from "
        "[1 - W, 1 + W], moving formants as another vocal tract would (VTLP-like; works on "
        "precomputed features). 0 = off; e.g. 0.1.",
    )
    a(
        "--enable-musan",
        type=str2bool,
        default=False,
        help="Mix MUSAN noise into training cuts (needs prepare.sh stage 4).",
    )
    a(
        "--musan-cuts",
        type=Path,
        default=None,
        help="MUSAN cuts (default: <manifest-dir>/musan_cuts.jsonl.gz).",
    )
    a(
        "--speed-perturb",
        type=str2bool,
        default=False,
        help="Add speed-perturbed copies (0.9x, 1.1x) of the training cuts.",
    )


def _encoder_subsampling(spec: Any) -> tuple[int, int]:
    """(time_pool, output_downsampling_factor) of the encoder ``--encoder-config`` names (a
    name, a dict or its JSON; None: the published Zipformer's (1, 2)), for the filter of cuts
    too short for their tokens."""
    if spec is None:
        return 1, 2
    from gmot.models.zipformer.config import get_config

    if isinstance(spec, str) and spec.lstrip().startswith("{"):
        spec = json.loads(spec)
    try:
        cfg = get_config(spec)
    except (TypeError, ValueError):  # not a Zipformer config: the published factors
        return 1, 2
    return cfg.time_pool, cfg.output_downsampling_factor


class AsrDataModule:
    """Builds train/valid/test DataLoaders from ``args`` (see :meth:`add_arguments`)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        lang = Path(args.lang_dir)
        # Not a flag, so a parsed Namespace has none: a caller may put a TokenTable on ``args``
        # as ``token_table`` instead of having ``<lang_dir>/tokens.txt`` read (none in gmot does).
        self.tokens: TokenTable | None = getattr(args, "token_table", None)
        if self.tokens is None and (lang / "tokens.txt").is_file():
            self.tokens = TokenTable.load(lang / "tokens.txt")
        self.filters: dict[str, CutFilter] = {}

    @property
    def num_features(self) -> int:
        """Model input features per frame: 80 fbank bins, plus 3 with ``--pitch 1``."""
        return input_dim(bool(getattr(self.args, "pitch", False)))

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        g = parser.add_argument_group("data", "data loading and augmentation (gmot.data)")
        a = g.add_argument
        a(
            "--corpus",
            default=None,
            help="Corpus name: the prefix of the cut manifests <corpus>_cuts_<split>.jsonl.gz "
            "(the recipe's scripts set it, e.g. hsk or aishell).",
        )
        a(
            "--manifest-dir",
            type=Path,
            default=Path("data/manifests"),
            help="Directory of <corpus>_cuts_{train,dev,test}.jsonl.gz (prepare.sh stage 1).",
        )
        add_lang_dir_argument(g)
        a(
            "--max-duration",
            type=float,
            default=200.0,
            help="Seconds of audio per batch (per process under DDP).",
        )
        a(
            "--bucketing-sampler",
            type=str2bool,
            default=True,
            help="1: DynamicBucketingSampler (similar durations per batch); 0: SimpleCutSampler.",
        )
        a("--num-buckets", type=int, default=30, help="Duration buckets of the bucketing sampler.")
        a("--shuffle", type=str2bool, default=True, help="Shuffle training cuts every epoch.")
        a(
            "--drop-last",
            type=str2bool,
            default=True,
            help="Drop the last incomplete training batch (keeps DDP ranks in step).",
        )
        a(
            "--num-workers",
            type=int,
            default=2,
            help="DataLoader worker processes (fbank is computed in them); a --start-batch "
            "resume continues exactly after the last trained batch with any number.",
        )
        a(
            "--on-the-fly-feats",
            type=str2bool,
            default=True,
            help="1: compute 80-bin fbank on the fly (default); 0: read precomputed features.",
        )
        a(
            "--pitch",
            type=str2bool,
            default=False,
            help="1: append 3 pitch features (voicing, log F0, its slope; gmot.data.pitch) to the "
            "80 fbank bins, 83 model inputs, for tonal languages; precomputed features must "
            "then hold them too (local/compute_fbank.py --pitch 1). Decoding takes it from "
            "the checkpoint.",
        )
        _add_augmentation_arguments(g)
        a(
            "--min-utt-duration",
            type=float,
            default=1.0,
            help="Training cuts shorter than this (seconds) are dropped, with a log line.",
        )
        a(
            "--max-utt-duration",
            type=float,
            default=12.0,
            help="Training cuts longer than this (seconds) are dropped, with a log line.",
        )
        a(
            "--oov",
            default="skip",
            choices=["skip", "unk"],
            help="Training cuts with characters missing from tokens.txt: skip them or map the "
            "characters to <unk>.",
        )
        a(
            "--seed",
            type=int,
            default=42,
            help="Seed of sampling and augmentation (per epoch and batch).",
        )

    # manifests -----------------------------------------------------------------------------------
    def _load(self, split: str):
        from lhotse import load_manifest_lazy

        if not self.args.corpus:
            raise ValueError(
                f"--corpus is not set, so the {split} cuts cannot be found: pass --corpus NAME "
                "(the recipe's scripts in egs/<corpus>/ASR/zipformer_gmot set it)"
            )
        return load_manifest_lazy(cuts_path(self.args.manifest_dir, self.args.corpus, split))

    def train_cuts(self):
        return self._load("train")

    def dev_cuts(self):
        return self._load("dev")

    def test_cuts(self):
        return self._load("test")

    def filter_cuts(self, cuts, name: str):
        """Lazily filter ``cuts`` (durations, empty text, OOV, too short); drops are logged, and
        the loaders report per pass what was dropped (:meth:`CutFilter.end_pass`)."""
        a = self.args
        time_pool, out_factor = _encoder_subsampling(getattr(a, "encoder_config", None))
        f = CutFilter(
            self.tokens,
            min_duration=a.min_utt_duration,
            max_duration=a.max_utt_duration,
            oov=a.oov,
            what=f"{name} cuts",
            time_pool=time_pool,
            output_downsampling_factor=out_factor,
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
                # not a flag (a parsed Namespace has none): a caller may set
                # args.bucket_buffer_size; none in gmot does, so it is lhotse's 20000 cuts
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

        return ResumableLoader(
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

        from gmot.data.augment import FrequencyWarp

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
            freq_warp=FrequencyWarp(a.freq_warp) if getattr(a, "freq_warp", 0) else None,
            cut_mix=cut_mix,
            seed=a.seed,
            sampler=sampler,
            num_features=self.num_features,
        )
        loader = self._loader(ds, sampler, a.num_workers)
        loader.cut_filter = self.filters["train"]  # reported at the end of every epoch
        return loader

    def valid_dataloader(self, cuts):
        """Unshuffled, unaugmented loader for validation (filtered like training)."""
        a = self.args
        cuts = self.filter_cuts(cuts, "valid")
        sampler = self._sampler(cuts, shuffle=False, drop_last=False, bucketing=a.bucketing_sampler)
        ds = AsrDataset(
            self._require_tokens(),
            on_the_fly_feats=a.on_the_fly_feats,
            seed=a.seed,
            num_features=self.num_features,
        )
        loader = self._loader(ds, sampler, min(a.num_workers, 2))
        loader.cut_filter = self.filters["valid"]
        loader.report_every_pass = False  # the same dev set every time: report changes only
        return loader

    def test_dataloader(self, cuts):
        """Unshuffled loader over all cuts (no duration filter: every test utterance is scored;
        unreadable audio is still reported and skipped)."""
        a = self.args
        sampler = self._sampler(cuts, shuffle=False, drop_last=False, bucketing=False)
        ds = AsrDataset(
            self._require_tokens(),
            on_the_fly_feats=a.on_the_fly_feats,
            seed=a.seed,
            num_features=self.num_features,
        )
        return self._loader(ds, sampler, a.num_workers)
