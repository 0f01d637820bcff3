"""Corpus layouts: how stage 1 of prepare.sh reads a corpus directory into cut manifests.

A recipe names its corpus's layout in ``prepare.sh`` (``corpus_layout``, default ``aishell``);
``local/prepare_manifests.py --layout NAME`` runs it. A layout is a module that defines

- ``prepare_cuts(corpus_dir, out_dir, corpus, splits) -> {split: number of cuts}``: write
  ``<out_dir>/<corpus>_cuts_<split>.jsonl.gz`` for each of ``splits`` (a subset of
  :data:`gmot.data.manifests.SPLITS`; :func:`gmot.data.manifests.write_split_cuts` does the
  lhotse part), reporting what it skipped and raising ``FileNotFoundError`` with a hint when the
  corpus is not there;
- ``inputs(corpus_dir) -> str``: one line naming what the manifests depend on (file counts,
  content fingerprints). ``prepare.sh`` records it in the stage-1 marker, so a corpus that changed
  after stage 1 stops the next run instead of leaving stale manifests.

Layouts here: ``aishell`` (AISHELL-1's ``data_aishell/`` tree; also what the synthetic hsk corpus
is written in). A corpus in another layout needs one new module: ``gmot/data/layouts/<name>.py``
(found by its name, nothing to register), or a ``.py`` file kept with the recipe and named by its
path.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from pathlib import Path
from types import ModuleType

REQUIRED = ("prepare_cuts", "inputs")


def available() -> list[str]:
    """The layouts of this package, by name."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def get_layout(name: str) -> ModuleType:
    """The layout module ``name``: a module of this package, or (a name ending in ``.py`` or
    containing ``/``) the Python file at that path. Raises ValueError for an unknown name or a
    module that lacks a function of :data:`REQUIRED`."""
    if name.endswith(".py") or "/" in name:
        path = Path(name)
        if not path.is_file():
            raise ValueError(f"corpus layout file {path} not found")
        spec = importlib.util.spec_from_file_location(f"gmot_layout_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    elif name in available():
        module = importlib.import_module(f"{__name__}.{name}")
    else:
        raise ValueError(
            f"unknown corpus layout {name!r}: known are {', '.join(available())}, or give the "
            "path of a .py file (see gmot.data.layouts)"
        )
    missing = [f for f in REQUIRED if not callable(getattr(module, f, None))]
    if missing:
        raise ValueError(f"corpus layout {name!r} does not define {', '.join(missing)}()")
    return module
