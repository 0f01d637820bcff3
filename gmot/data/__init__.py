"""Data: token tables, cut manifests and corpus layouts (gmot.data.layouts), the ASR data module.

Generic: a corpus's name and paths come from the recipe (corpora gmot synthesises itself live in
:mod:`gmot.corpora`, which this package never imports)."""

from gmot.data.datamodule import AsrDataModule
from gmot.data.dataset import AsrDataset
from gmot.data.filters import CutFilter, frames_after_subsampling
from gmot.data.layouts.aishell import check_aishell_layout, prepare_aishell_cuts
from gmot.data.manifests import DropReport
from gmot.data.tokens import OOVError, TokenTable

__all__ = [
    "AsrDataModule",
    "AsrDataset",
    "CutFilter",
    "DropReport",
    "OOVError",
    "TokenTable",
    "check_aishell_layout",
    "frames_after_subsampling",
    "prepare_aishell_cuts",
]
